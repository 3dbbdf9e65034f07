//! Binds the HTTP API and the WebSocket endpoint to one listener and serves them until told to
//! stop.
//!
//! Upgraded WebSocket connections run as their own tasks, tracked in [`App::connections`] so
//! that shutdown can wait for every connection to send its "going away" close frame.

use std::future::Future;
use std::sync::Arc;

use ::http::{HeaderValue, Request};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt as _;
use switchboard_actors::system::System;
use switchboard_engine::ports::Clock;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::http;
use crate::settings::{HttpSettings, WebSocketSettings};

/// Everything request handlers share.
pub struct App {
    /// The actor system.
    pub system: Arc<System>,
    /// Verifies tokens.
    pub authenticator: Arc<Authenticator>,
    /// The wall clock (token expiry checks).
    pub clock: Arc<dyn Clock>,
    /// WebSocket limits.
    pub websocket: WebSocketSettings,
    /// HTTP limits.
    pub http: HttpSettings,
    /// Live WebSocket connection tasks.
    pub connections: TaskTracker,
    /// What `GET /metrics` reports besides the transport's own gauges.
    pub metrics: Vec<Arc<dyn crate::metrics::MetricsSource>>,
    /// One permit per recording media upload or download in progress
    /// (`max_concurrent_recording_transfers`).
    pub recording_transfers: Arc<tokio::sync::Semaphore>,
    /// Users' media: uploads, downloads, deletes.
    pub media: Arc<switchboard_actors::media::MediaService>,
    /// Message search, when `[search]` is on.
    pub search: Option<Arc<switchboard_actors::search::service::SearchService>>,
    /// How long searches take (reported at `/metrics` when search is on).
    pub search_latency: crate::metrics::SearchLatency,
    /// Signs and checks media links.
    pub media_links: Arc<crate::link_signing::MediaLinkSigner>,
}

/// Request ids for logs and the `x-request-id` response header.
#[derive(Clone, Copy, Default)]
struct MakeRandomRequestId;

impl MakeRequestId for MakeRandomRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let id = format!("{:016x}", fastrand_u64());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // A randomly keyed hasher is a dependency-free source of unpredictable request ids.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// The full router: HTTP API, health probes and the WebSocket endpoint.
pub fn router(app: Arc<App>) -> Router {
    let max_body_bytes = app.http.max_body_bytes;
    Router::new()
        .merge(http::routes())
        .fallback(http::route_not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            crate::security::record_security_events,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRandomRequestId))
        .with_state(app)
}

/// Serves until `shutdown` resolves, then stops accepting (in-flight HTTP requests finish).
///
/// # Errors
/// [`crate::Error::Io`] if serving fails.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    // Chat frames are small and latency-bound: never let Nagle's algorithm hold one back.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    // The remote address reaches handlers (and the security events) as `ConnectInfo`.
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
