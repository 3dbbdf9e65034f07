//! The Redis [`SharedRateLimiter`]: one budget per tenant, user and action class, shared by
//! every engine node, so a user's limits hold across the deployment.
//!
//! Each take is one atomic Lua script (GCRA, the generic cell rate algorithm): the key
//! `<prefix>:rl:<tenant>:<class>:<user>` (the prefix is `[cluster] key_prefix`, default `sb`) holds the budget's "theoretical arrival time" in
//! milliseconds of Redis's own clock (`TIME`), so nodes' clocks do not matter. A take is
//! allowed while that time is at most `(burst - 1)` emission intervals ahead of now, and moves
//! it one interval on; the key expires when the budget is full again. The interval is
//! `60000 / per_minute` milliseconds rounded up, so a limit is never looser than configured.
//! Connections come from a bb8 pool.

use std::time::Duration;

use async_trait::async_trait;
use bb8_redis::RedisConnectionManager;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::SharedRateLimiter;
use switchboard_engine::rate_limit::{ActionClass, RateLimit};

const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if allow_at > now then
  return allow_at - now
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1)
return 0
";

/// Budgets in Redis.
pub struct RedisRateLimiter {
    pool: bb8::Pool<RedisConnectionManager>,
    /// The deployment's key prefix.
    prefix: String,
    script: redis::Script,
}

impl RedisRateLimiter {
    /// Budgets on the Redis server at `url`, with keys under `prefix`; connects lazily.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URL is malformed.
    pub fn new(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let manager = RedisConnectionManager::new(url)
            .map_err(|error| StoreError::Unavailable(format!("invalid Redis URL: {error}")))?;
        let pool = bb8::Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_millis(500))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA),
        })
    }
}

#[async_trait]
impl SharedRateLimiter for RedisRateLimiter {
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
        let interval_ms = 60_000u64.div_ceil(u64::from(limit.per_minute));
        let burst = u64::from(limit.burst.max(1));
        let mut connection = self
            .pool
            .get()
            .await
            .map_err(|error| StoreError::Unavailable(format!("Redis: {error}")))?;
        let retry_after_ms: u64 = self
            .script
            .key(format!(
                "{}:rl:{tenant_id}:{}:{user_id}",
                self.prefix,
                class.as_str()
            ))
            .arg(interval_ms)
            .arg(burst)
            .invoke_async(&mut *connection)
            .await
            .map_err(|error| StoreError::Unavailable(format!("Redis: {error}")))?;
        Ok(if retry_after_ms == 0 {
            Ok(())
        } else {
            Err(retry_after_ms)
        })
    }
}
