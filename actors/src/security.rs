//! Security events: refused tokens, access denials, rate limiting, connection caps and protocol
//! abuse, each counted and logged (sampled) so that abuse leaves a trace.
//!
//! OWASP's logging guidance asks for authentication failures, access control failures, input
//! validation failures and limits being hit to be recorded with who, from where and why, and never
//! with the credential itself. One [`SecurityLog`] per node (the [`crate::system::System`]'s) takes
//! every such event: from the transport (a refused token over HTTP or WebSocket, an HTTP answer
//! of `forbidden`, `not_member` or `not_found`, a WebSocket closed with 1008 or 1009), from the
//! user limits (a request refused as `rate_limited`, a connection refused as
//! `too_many_connections`), and from a session (a WebSocket request refused as `forbidden`,
//! `not_member` or `not_found`).
//!
//! Every event increments the counter `switchboard_security_events_total` for its reason and
//! tenant ([`SecurityLog::counts`], exported at `GET /metrics`). The tenant label is the verified
//! tenant, `unknown` before a token was verified (a refused token's claims are never trusted,
//! not even as a label), and `other` once [`MAX_TENANT_LABELS`] tenants have been seen, so that
//! forged or numerous tenants cannot grow the metric without bound. Events are logged at WARN with
//! the target `switchboard::security` and the fields `reason`, `code`, `tenant`, `user` and
//! `remote_addr`, through one [`LogSampler`] per reason: at most [`LOG_BURST`] lines per reason per
//! [`LOG_INTERVAL`], each saying how many events of its reason were left out since the one before.
//! A flood therefore writes a bounded number of lines, whatever its rate. No event carries a token,
//! a password or a message body: only ids, codes and addresses.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_engine::Error;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::Clock;
use switchboard_engine::sampling::LogSampler;

/// Each reason logs at most [`LOG_BURST`] lines per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The most lines each reason logs per [`LOG_INTERVAL`].
pub const LOG_BURST: u32 = 10;

/// The most distinct tenant labels the counter keeps; later tenants are counted as `other`.
pub const MAX_TENANT_LABELS: usize = 1000;

/// Why an event is a security event: the `reason` label of `switchboard_security_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityReason {
    /// A token was missing or refused (the `code` says why: `token_expired`, ...).
    TokenRefused,
    /// An authenticated caller was refused an action their role or token does not allow.
    Forbidden,
    /// An authenticated caller asked for a conversation they are not a member of.
    NotMember,
    /// An authenticated caller asked for something their tenant does not have: what a probe for
    /// another tenant's ids looks like (another tenant's data always answers `not_found`).
    NotFound,
    /// A request was refused by the user's rate limit.
    RateLimited,
    /// A connection was refused because its user has too many open.
    TooManyConnections,
    /// A WebSocket was closed for protocol abuse (1008: too many invalid frames or a protocol
    /// violation; 1009: a frame over the hard limit).
    ProtocolViolation,
}

impl SecurityReason {
    /// Every reason, in the order the metric lists them.
    pub const ALL: [SecurityReason; 7] = [
        SecurityReason::TokenRefused,
        SecurityReason::Forbidden,
        SecurityReason::NotMember,
        SecurityReason::NotFound,
        SecurityReason::RateLimited,
        SecurityReason::TooManyConnections,
        SecurityReason::ProtocolViolation,
    ];

    /// The metric label and log field.
    pub fn label(self) -> &'static str {
        match self {
            SecurityReason::TokenRefused => "token_refused",
            SecurityReason::Forbidden => "forbidden",
            SecurityReason::NotMember => "not_member",
            SecurityReason::NotFound => "not_found",
            SecurityReason::RateLimited => "rate_limited",
            SecurityReason::TooManyConnections => "too_many_connections",
            SecurityReason::ProtocolViolation => "protocol_violation",
        }
    }

    /// The access denial an error reports to an authenticated caller, if it is one. Rate limits
    /// and connection caps are not: the user limits record those where they are decided.
    pub fn of_access_denial(error: &Error) -> Option<SecurityReason> {
        match error {
            Error::Forbidden { .. } => Some(SecurityReason::Forbidden),
            Error::NotMember => Some(SecurityReason::NotMember),
            Error::NotFound => Some(SecurityReason::NotFound),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            SecurityReason::TokenRefused => 0,
            SecurityReason::Forbidden => 1,
            SecurityReason::NotMember => 2,
            SecurityReason::NotFound => 3,
            SecurityReason::RateLimited => 4,
            SecurityReason::TooManyConnections => 5,
            SecurityReason::ProtocolViolation => 6,
        }
    }
}

/// One security event. Nothing in it is secret: ids, a wire code, an address.
#[derive(Debug, Clone, Copy)]
pub struct SecurityEvent<'a> {
    /// Why.
    pub reason: SecurityReason,
    /// The wire code or close reason the caller got (`token_expired`, `too many invalid
    /// frames`, ...).
    pub code: &'a str,
    /// The caller's tenant, once their token was verified.
    pub tenant_id: Option<&'a TenantId>,
    /// The caller, once their token was verified.
    pub user_id: Option<&'a UserId>,
    /// Where the request came from, when the transport knows it.
    pub remote: Option<SocketAddr>,
}

/// The counters, by reason and tenant label (a verified tenant, `unknown`, or `other` past the
/// cap).
#[derive(Default)]
struct Counts {
    by_reason_and_tenant: HashMap<(SecurityReason, String), u64>,
    /// The tenants that have a label of their own.
    labelled_tenants: HashSet<TenantId>,
}

impl Counts {
    fn tenant_label(&mut self, tenant_id: Option<&TenantId>) -> String {
        let Some(tenant_id) = tenant_id else {
            return "unknown".to_owned();
        };
        if self.labelled_tenants.contains(tenant_id) {
            return tenant_id.to_string();
        }
        if self.labelled_tenants.len() < MAX_TENANT_LABELS {
            self.labelled_tenants.insert(tenant_id.clone());
            return tenant_id.to_string();
        }
        "other".to_owned()
    }
}

/// Counts and samples security events (see the module documentation).
pub struct SecurityLog {
    /// Events by reason and tenant label. A plain mutex: one map update per event, never held
    /// across an await.
    counts: Mutex<Counts>,
    /// One sampler per reason, by [`SecurityReason::index`].
    samplers: Mutex<[LogSampler; 7]>,
    clock: Arc<dyn Clock>,
}

impl SecurityLog {
    /// No events yet; lines are sampled by `clock`'s time.
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(SecurityLog {
            counts: Mutex::new(Counts::default()),
            samplers: Mutex::new(std::array::from_fn(|_| {
                LogSampler::with_burst(LOG_INTERVAL, LOG_BURST)
            })),
            clock,
        })
    }

    /// Counts `event` and logs it if its reason's sampler lets it through.
    pub fn record(&self, event: SecurityEvent<'_>) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let tenant = counts.tenant_label(event.tenant_id);
            *counts
                .by_reason_and_tenant
                .entry((event.reason, tenant))
                .or_default() += 1;
        }
        let now = self.clock.now();
        let logged = self.samplers.lock().unwrap_or_else(PoisonError::into_inner)
            [event.reason.index()]
        .record(now);
        if let Some(n_left_out) = logged {
            let remote_addr = event.remote.map(|remote| remote.to_string());
            tracing::warn!(
                target: "switchboard::security",
                reason = event.reason.label(),
                code = event.code,
                tenant = event.tenant_id.map(TenantId::as_str),
                user = event.user_id.map(UserId::as_str),
                remote_addr = remote_addr.as_deref(),
                n_not_logged_since_previous_line = n_left_out,
                "security event (sampled: at most {LOG_BURST} lines per reason every {} s; every event is counted in switchboard_security_events_total)",
                LOG_INTERVAL.as_secs()
            );
        }
    }

    /// Every count so far: reason, tenant label, events.
    pub fn counts(&self) -> Vec<(SecurityReason, String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<(SecurityReason, String, u64)> = counts
            .by_reason_and_tenant
            .iter()
            .map(|((reason, tenant), count)| (*reason, tenant.clone(), *count))
            .collect();
        rows.sort();
        rows
    }
}

/// One authenticated caller (a WebSocket session) as the security log sees them: refusals of
/// their requests are recorded with their tenant, user and address.
pub struct CallerSecurity {
    log: Arc<SecurityLog>,
    tenant_id: TenantId,
    user_id: UserId,
    remote: Option<SocketAddr>,
}

impl CallerSecurity {
    /// The caller `tenant_id`/`user_id`, connected from `remote`.
    pub fn new(
        log: Arc<SecurityLog>,
        tenant_id: TenantId,
        user_id: UserId,
        remote: Option<SocketAddr>,
    ) -> Arc<Self> {
        Arc::new(CallerSecurity {
            log,
            tenant_id,
            user_id,
            remote,
        })
    }

    /// Records `error`, which the caller was answered with, if it is an access denial
    /// ([`SecurityReason::of_access_denial`]); `code` is its wire code.
    pub fn refused(&self, error: &Error) {
        if let Some(reason) = SecurityReason::of_access_denial(error) {
            self.log.record(SecurityEvent {
                reason,
                code: reason.label(),
                tenant_id: Some(&self.tenant_id),
                user_id: Some(&self.user_id),
                remote: self.remote,
            });
        }
    }
}

#[cfg(test)]
mod tests;
