//! `GET /metrics`: Prometheus metrics in the OpenMetrics text format, for operators.
//!
//! Metrics are gathered when scraped, not kept: each scrape builds a registry, asks every
//! [`MetricsSource`] the root binary wired in to register what it knows now (the TURN health
//! board and the embedded relay's refused credentials), adds the transport's own gauges, and
//! encodes it with `prometheus-client`.
//! The endpoint needs no token, like the probes; it names servers and counts, never a tenant's
//! data, and a deployment keeps it off the public listener (see `docs/deploy/nginx.conf`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::server::App;

/// Something that knows metrics and registers them, as they are at the scrape, on a registry.
pub trait MetricsSource: Send + Sync {
    /// Registers the current values on `registry`.
    fn register(&self, registry: &mut Registry);
}

/// How long searches take, by endpoint: observed by the search handlers, registered on every
/// scrape (the histogram itself lives as long as the server).
pub struct SearchLatency {
    seconds: Family<EndpointLabel, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for SearchLatency {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SearchLatency")
    }
}

/// The label of a search latency histogram: its endpoint.
type EndpointLabel = Vec<(&'static str, &'static str)>;

/// The buckets of search latency, in seconds: 0.5 ms to 4 s.
const SEARCH_SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0,
];

fn new_search_histogram() -> Histogram {
    Histogram::new(SEARCH_SECONDS_BUCKETS.iter().copied())
}

impl Default for SearchLatency {
    fn default() -> Self {
        Self::new()
    }
}

impl SearchLatency {
    /// Latency histograms, empty.
    pub fn new() -> Self {
        Self {
            seconds: Family::new_with_constructor(new_search_histogram),
        }
    }

    /// Records that a search of `endpoint` took `elapsed`.
    pub fn observe(&self, endpoint: &'static str, elapsed: std::time::Duration) {
        self.seconds
            .get_or_create(&vec![("endpoint", endpoint)])
            .observe(elapsed.as_secs_f64());
    }
}

impl MetricsSource for SearchLatency {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchboard_search_query_seconds",
            "How long searches take, from the request's parameters to its answer, by endpoint (messages, conversations, users, all, suggestions)",
            self.seconds.clone(),
        );
    }
}

/// The media type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "probes", security(()),
    responses(
        (status = 200, description = "The metrics in the OpenMetrics text format: \
            `switchboard_websocket_connections`; `switchboard_security_events_total` (labels \
            `reason`: `token_refused`, `forbidden`, `not_member`, `not_found`, `rate_limited`, \
            `too_many_connections` or `protocol_violation`, and `tenant`: the verified tenant, \
            `unknown` before a token was verified, `other` past 1000 tenants; see \
            docs/SECURITY.md); per TURN/STUN server \
            `switchboard_turn_server_up`, `switchboard_turn_server_rtt_seconds`, \
            `switchboard_turn_server_probes_total` and \
            `switchboard_turn_server_probe_failures_total` (label `uri`); and, when the \
            embedded TURN relay runs, `switchboard_turn_relay_auth_failures_total`, the \
            requests it refused for their credential (label `reason`: `malformed`, \
            `expired`, `unknown_key` or `bad_password`); and, when search is on, the \
            indexer's `switchboard_search_indexed_changes_total`, \
            `switchboard_search_commits_total`, `switchboard_search_commit_seconds` (a histogram), \
            `switchboard_search_indexing_failures_total`, `switchboard_search_checkpoint` \
            (the event-log position the index reflects), `switchboard_search_generation`, \
            `switchboard_search_lag_entries` and `switchboard_search_lag_seconds` (what the \
            index has not yet taken, and how long ago the oldest of it was stored), and \
            `switchboard_search_query_seconds` (a histogram, label `endpoint`).",
            content_type = "application/openmetrics-text", body = String),
    ))]
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut registry = Registry::default();
    let connections = Gauge::<i64>::default();
    connections.set(i64::try_from(app.connections.len()).unwrap_or(i64::MAX));
    registry.register(
        "switchboard_websocket_connections",
        "Open WebSocket connections",
        connections,
    );
    let security_events = Family::<Vec<(&'static str, String)>, Counter>::default();
    for (reason, tenant, count) in app.system.security().counts() {
        security_events
            .get_or_create(&vec![
                ("reason", reason.label().to_owned()),
                ("tenant", tenant),
            ])
            .inc_by(count);
    }
    registry.register(
        "switchboard_security_events",
        "Security events (refused tokens, access denials, rate limits, connection caps, protocol abuse) by reason and tenant (`unknown` before a token was verified)",
        security_events,
    );
    for source in &app.metrics {
        source.register(&mut registry);
    }
    if app.search.is_some() {
        app.search_latency.register(&mut registry);
    }
    let mut body = String::new();
    // Writing to a String cannot fail; a metric that could not be written would be cut short,
    // never the answer.
    if let Err(error) = encode(&mut body, &registry) {
        tracing::error!(%error, "the metrics could not be encoded");
    }
    ([(header::CONTENT_TYPE, OPENMETRICS)], body)
}
