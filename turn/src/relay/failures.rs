//! The credentials the embedded relay refuses: counted by reason, logged sampled.
//!
//! Anyone who can send UDP to the relay can send it refused credentials as fast as they like,
//! so one log line per refusal would let them write to the log at that rate. Every refusal is
//! counted instead, by [`RefusalReason`], in the Prometheus counter
//! `switchboard_turn_relay_auth_failures_total` ([`RelayAuthFailures::register_metrics`],
//! scraped at `GET /metrics`), and logged at WARN at most once per [`LOG_INTERVAL`] by a
//! [`LogSampler`]: the first refusal is logged, then at most one per interval, each line saying
//! how many refusals were left out of the log since the line before. A line names the reason and
//! the source address, never the password (nor the username, which the sender chose).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use switchboard_engine::ports::Clock;
use switchboard_engine::sampling::LogSampler;

use crate::credentials::CredentialError;

/// At most one log line about refused credentials per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why the relay refused a request's credential: the `reason` label of
/// `switchboard_turn_relay_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The request lacks USERNAME, REALM or NONCE beside its MESSAGE-INTEGRITY, or the username
    /// is not `<expiry>:<tenant>:<user>:<key id>`.
    Malformed,
    /// The username's expiry has passed.
    Expired,
    /// No accepted secret has the username's key id.
    UnknownKey,
    /// The MESSAGE-INTEGRITY does not match the password the username's secret gives.
    BadPassword,
}

impl RefusalReason {
    /// Every reason, in the order the metric lists them.
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::Malformed,
        RefusalReason::Expired,
        RefusalReason::UnknownKey,
        RefusalReason::BadPassword,
    ];

    /// The metric label: `malformed`, `expired`, `unknown_key` or `bad_password`.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::Expired => "expired",
            RefusalReason::UnknownKey => "unknown_key",
            RefusalReason::BadPassword => "bad_password",
        }
    }

    fn index(self) -> usize {
        match self {
            RefusalReason::Malformed => 0,
            RefusalReason::Expired => 1,
            RefusalReason::UnknownKey => 2,
            RefusalReason::BadPassword => 3,
        }
    }
}

impl From<CredentialError> for RefusalReason {
    fn from(error: CredentialError) -> Self {
        match error {
            CredentialError::Malformed => RefusalReason::Malformed,
            CredentialError::Expired => RefusalReason::Expired,
            CredentialError::UnknownKey => RefusalReason::UnknownKey,
            CredentialError::BadPassword => RefusalReason::BadPassword,
        }
    }
}

/// The relay's refused credentials: a count per reason and the sampled log.
pub struct RelayAuthFailures {
    /// One counter per [`RefusalReason`], by [`RefusalReason::index`]; monotonic, read at each
    /// scrape.
    counts: [AtomicU64; 4],
    /// Held only to decide whether to log; never across an await.
    sampler: Mutex<LogSampler>,
    clock: Arc<dyn Clock>,
}

impl RelayAuthFailures {
    /// No refusals yet; lines are sampled by `clock`'s time.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        RelayAuthFailures {
            counts: Default::default(),
            sampler: Mutex::new(LogSampler::new(LOG_INTERVAL)),
            clock,
        }
    }

    /// Counts one refusal of a request from `source`, and logs it if the sampler says so.
    pub fn record(&self, reason: RefusalReason, source: SocketAddr) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        let logged = self
            .sampler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(now);
        if let Some(n_left_out) = logged {
            tracing::warn!(
                reason = reason.label(),
                %source,
                n_refusals_not_logged_since_previous_line = n_left_out,
                "the embedded TURN relay refused a credential (sampled: at most one line every {} s; \
                 every refusal is counted in switchboard_turn_relay_auth_failures_total)",
                LOG_INTERVAL.as_secs()
            );
        }
    }

    /// How many requests were refused for `reason` so far.
    pub fn count(&self, reason: RefusalReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Registers the counter `switchboard_turn_relay_auth_failures_total`, labelled `reason`
    /// (every reason, zeros included), as it is now, on `registry` (called at every scrape).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let failures = Family::<Vec<(&'static str, &'static str)>, Counter>::default();
        for reason in RefusalReason::ALL {
            failures
                .get_or_create(&vec![("reason", reason.label())])
                .inc_by(self.count(reason));
        }
        registry.register(
            "switchboard_turn_relay_auth_failures",
            "Requests the embedded TURN relay refused for their credential, by reason",
            failures,
        );
    }
}

#[cfg(test)]
mod tests;
