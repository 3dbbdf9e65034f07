//! The in-memory [`SharedRateLimiter`]: token buckets in a map, shared by every "node" that
//! holds the same instance (tests that run several nodes in one process).
//!
//! It is the reference the Redis limiter is checked against (`tests/shared_rate_limits.rs`
//! runs one suite on both) and uses the engine's own [`TokenBucket`] arithmetic, with time
//! from the [`Clock`] it is given.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{Clock, SharedRateLimiter};
use switchboard_engine::rate_limit::{ActionClass, RateLimit, TokenBucket};

type Budgets = HashMap<(TenantId, UserId, ActionClass), TokenBucket>;

/// Budgets in memory.
pub struct MemoryRateLimiter {
    clock: Arc<dyn Clock>,
    budgets: Mutex<Budgets>,
}

impl MemoryRateLimiter {
    /// No budget used yet.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            budgets: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SharedRateLimiter for MemoryRateLimiter {
    async fn try_take(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        class: ActionClass,
        limit: RateLimit,
    ) -> Result<Result<(), u64>, StoreError> {
        if limit.is_disabled() {
            return Ok(Ok(()));
        }
        let now = self.clock.now();
        // A map of plain buckets: any state a panic could leave is still valid.
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(budgets
            .entry((tenant_id.clone(), user_id.clone(), class))
            .or_insert_with(|| TokenBucket::full(&limit, now))
            .try_take(&limit, now))
    }
}
