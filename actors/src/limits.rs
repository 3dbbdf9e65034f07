//! Per-user limits shared by all of a user's sessions: one rate limit per action class
//! (messages, operations, changes, receipts), which a tenant may override, and the number of
//! concurrent connections.
//!
//! Both are small maps behind a `std::sync::Mutex`: the critical sections are a hash lookup and a
//! few integer operations, never an await, so a plain mutex is cheaper than an actor hop. Rate
//! buckets that have refilled completely are forgotten when the map grows, since a fresh full
//! bucket behaves identically.

use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use switchboard_engine::Error;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::SharedRateLimiter;
use switchboard_engine::rate_limit::{ActionClass, RateLimit, RateLimits, TokenBucket};
use switchboard_engine::time::Timestamp;

use crate::security::{SecurityEvent, SecurityLog, SecurityReason};

/// How long a take waits for the shared budgets before this node's own budget decides.
const SHARED_TIMEOUT: Duration = Duration::from_millis(200);
/// After the shared budgets fail to answer, how long this node's own budgets decide alone
/// before the shared ones are asked again (so an outage costs one slow take, not every take).
const SHARED_RETRY_AFTER: Duration = Duration::from_secs(5);

/// When the bucket map holds more entries than this, full buckets are swept out.
const SWEEP_ABOVE_N_BUCKETS: usize = 10_000;

type UserKey = (TenantId, UserId);
type BucketKey = (TenantId, UserId, ActionClass);

/// The shared per-user limits.
pub struct UserLimits {
    rate_limits: RateLimits,
    tenant_rate_limits: HashMap<TenantId, RateLimits>,
    max_connections_per_user: usize,
    buckets: Mutex<HashMap<BucketKey, TokenBucket>>,
    connections: Mutex<HashMap<UserKey, usize>>,
    /// Budgets shared with the other nodes of a deployment, when there are any.
    shared: Option<Arc<dyn SharedRateLimiter>>,
    /// Takes the shared budgets could not answer (this node's budget decided instead).
    shared_failures: AtomicU64,
    /// Until when the shared budgets are not asked, after they failed to answer.
    shared_skipped_until: Mutex<Option<tokio::time::Instant>>,
    /// Where refusals are recorded as security events (every refused take and connection).
    security: Option<Arc<SecurityLog>>,
}

impl UserLimits {
    /// Limits with the given rates (and per-tenant overrides) and connection cap (0 = no cap).
    /// With `shared`, rate budgets are the deployment's (all nodes together), and this node's
    /// own budgets are only the fallback for when the shared ones cannot be asked. Every refusal
    /// is recorded in `security`, when given.
    pub fn new(
        rate_limits: RateLimits,
        tenant_rate_limits: HashMap<TenantId, RateLimits>,
        max_connections_per_user: usize,
        shared: Option<Arc<dyn SharedRateLimiter>>,
        security: Option<Arc<SecurityLog>>,
    ) -> Arc<Self> {
        Arc::new(UserLimits {
            rate_limits,
            tenant_rate_limits,
            max_connections_per_user,
            buckets: Mutex::new(HashMap::default()),
            connections: Mutex::new(HashMap::default()),
            shared,
            shared_failures: AtomicU64::new(0),
            shared_skipped_until: Mutex::new(None),
            security,
        })
    }

    /// Records a refusal as a security event, and hands the error back.
    fn refused(
        &self,
        error: Error,
        reason: SecurityReason,
        code: &str,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Error {
        if let Some(security) = &self.security {
            security.record(SecurityEvent {
                reason,
                code,
                tenant_id: Some(tenant_id),
                user_id: Some(user_id),
                remote: None,
            });
        }
        error
    }

    /// Takes one token of `class` for the user: from the deployment's shared budget when there
    /// is one (falling back to this node's own if it cannot be asked within 200 ms, and for the
    /// next 5 s after that, so a Redis outage neither blocks nor unlimits anyone), else from
    /// this node's.
    ///
    /// # Errors
    /// [`Error::RateLimited`] with the time until a token is available.
    pub async fn take(
        &self,
        class: ActionClass,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<(), Error> {
        let rate_limit = self.rate_limits_of(tenant_id).get(class);
        if rate_limit.is_disabled() {
            return Ok(());
        }
        let skipping = self
            .shared_skipped_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| tokio::time::Instant::now() < until);
        if let Some(shared) = self.shared.as_ref().filter(|_| !skipping) {
            let asked = tokio::time::timeout(
                SHARED_TIMEOUT,
                shared.try_take(tenant_id, user_id, class, rate_limit),
            )
            .await;
            let reason = match asked {
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(retry_after_ms))) => {
                    return Err(self.refused(
                        Error::RateLimited { retry_after_ms },
                        SecurityReason::RateLimited,
                        class.as_str(),
                        tenant_id,
                        user_id,
                    ));
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => "no answer within 200 ms".to_owned(),
            };
            *self
                .shared_skipped_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some(tokio::time::Instant::now() + SHARED_RETRY_AFTER);
            let failures = self.shared_failures.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand, not one per request.
            if failures % 1000 == 1 {
                tracing::warn!(%reason, failures, "shared rate limits unavailable; this node's own budgets decide");
            }
        }
        self.take_from_own_budget(class, rate_limit, tenant_id, user_id, now)
    }

    fn rate_limits_of(&self, tenant_id: &TenantId) -> &RateLimits {
        self.tenant_rate_limits
            .get(tenant_id)
            .unwrap_or(&self.rate_limits)
    }

    /// Takes one token of `class`, whose rate is `rate_limit`, for the user from this node's
    /// own buckets.
    ///
    /// # Errors
    /// [`Error::RateLimited`] with the time until a token is available.
    fn take_from_own_budget(
        &self,
        class: ActionClass,
        rate_limit: RateLimit,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<(), Error> {
        if rate_limit.is_disabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > SWEEP_ABOVE_N_BUCKETS {
            buckets.retain(|(tenant_id, _, class), bucket| {
                let rate_limit = self.rate_limits_of(tenant_id).get(*class);
                !bucket.is_full_at(&rate_limit, now)
            });
        }
        let bucket = buckets
            .entry((tenant_id.clone(), user_id.clone(), class))
            .or_insert_with(|| TokenBucket::full(&rate_limit, now));
        let taken = bucket.try_take(&rate_limit, now);
        drop(buckets);
        taken.map_err(|retry_after_ms| {
            self.refused(
                Error::RateLimited { retry_after_ms },
                SecurityReason::RateLimited,
                class.as_str(),
                tenant_id,
                user_id,
            )
        })
    }

    /// Claims a connection slot for the user; the slot is released when dropped.
    ///
    /// # Errors
    /// [`Error::TooManyConnections`] if the user already holds the maximum.
    pub fn open_connection(
        self: &Arc<Self>,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<ConnectionSlot, Error> {
        let key = (tenant_id.clone(), user_id.clone());
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n_open = connections.entry(key.clone()).or_insert(0);
        if self.max_connections_per_user > 0 && *n_open >= self.max_connections_per_user {
            drop(connections);
            return Err(self.refused(
                Error::TooManyConnections {
                    limit: self.max_connections_per_user,
                },
                SecurityReason::TooManyConnections,
                "too_many_connections",
                tenant_id,
                user_id,
            ));
        }
        *n_open += 1;
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            key: Some(key),
        })
    }

    /// The number of open connections of a user.
    pub fn n_connections(&self, tenant_id: &TenantId, user_id: &UserId) -> usize {
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connections
            .get(&(tenant_id.clone(), user_id.clone()))
            .copied()
            .unwrap_or(0)
    }
}

/// One claimed connection; dropping it gives the slot back.
pub struct ConnectionSlot {
    limits: Arc<UserLimits>,
    key: Option<UserKey>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut connections = self
            .limits
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n_open) = connections.get_mut(&key) {
            *n_open = n_open.saturating_sub(1);
            if *n_open == 0 {
                connections.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests;
