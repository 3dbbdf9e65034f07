//! The conformance suite for every [`SharedRateLimiter`]: the in-memory limiter, and (with the
//! `redis` feature) Redis against the server named by `SWITCHBOARD_TEST_REDIS_URL`.
//!
//! Every test uses a tenant of its own, so tests sharing one Redis server cannot touch each
//! other's budgets. Limits are slow (a few tokens a minute) so no token is refilled while a
//! test runs, whatever the machine's speed: nothing depends on timing.

use std::sync::Arc;

use switchboard_engine::ids::TenantId;
use switchboard_engine::ports::{Clock, SharedRateLimiter};
use switchboard_engine::rate_limit::{ActionClass, RateLimit};
use switchboard_engine::time::Timestamp;
use switchboard_storage::MemoryRateLimiter;

mod support;

use support::{unique_tenant, user};

/// Three tokens at once, then one every 20 seconds.
const LIMIT: RateLimit = RateLimit {
    per_minute: 3,
    burst: 3,
};

/// A clock that stands still: the memory limiter refills nothing during a test.
struct StillClock;

impl Clock for StillClock {
    fn now(&self) -> Timestamp {
        Timestamp(1_700_000_000_000)
    }
}

async fn take(
    limiter: &dyn SharedRateLimiter,
    tenant_id: &TenantId,
    name: &str,
    class: ActionClass,
) -> Result<(), u64> {
    limiter
        .try_take(tenant_id, &user(name), class, LIMIT)
        .await
        .expect("the limiter answers")
}

/// Makes limiter instances that share budgets (as the nodes of one deployment do).
trait Deployment {
    fn limiter(&self) -> Arc<dyn SharedRateLimiter>;
}

struct Memory(Arc<MemoryRateLimiter>);

impl Memory {
    fn new() -> Self {
        Self(Arc::new(MemoryRateLimiter::new(Arc::new(StillClock))))
    }
}

impl Deployment for Memory {
    fn limiter(&self) -> Arc<dyn SharedRateLimiter> {
        Arc::clone(&self.0) as Arc<dyn SharedRateLimiter>
    }
}

#[cfg(feature = "redis")]
struct Redis(String);

#[cfg(feature = "redis")]
impl Redis {
    fn from_env() -> Self {
        Self(support::redis_url())
    }
}

#[cfg(feature = "redis")]
impl Deployment for Redis {
    fn limiter(&self) -> Arc<dyn SharedRateLimiter> {
        Arc::new(switchboard_storage::RedisRateLimiter::new(&self.0, "sb").expect("a valid URL"))
    }
}

async fn a_full_budget_allows_the_burst_then_says_when_to_retry(deployment: impl Deployment) {
    let limiter = deployment.limiter();
    let tenant_id = unique_tenant("limits");
    for _ in 0..LIMIT.burst {
        assert_eq!(
            take(limiter.as_ref(), &tenant_id, "alice", ActionClass::Messages).await,
            Ok(())
        );
    }
    let retry_after_ms = take(limiter.as_ref(), &tenant_id, "alice", ActionClass::Messages)
        .await
        .expect_err("the burst is spent");
    // The next token is at most one interval (20 s) away.
    assert!(
        (1..=20_000).contains(&retry_after_ms),
        "retry after {retry_after_ms} ms"
    );
}

async fn budgets_are_per_user_class_and_tenant(deployment: impl Deployment) {
    let limiter = deployment.limiter();
    let tenant_id = unique_tenant("limits");
    let other_tenant = unique_tenant("limits");
    for _ in 0..LIMIT.burst {
        take(limiter.as_ref(), &tenant_id, "alice", ActionClass::Messages)
            .await
            .expect("within the burst");
    }
    assert!(
        take(limiter.as_ref(), &tenant_id, "alice", ActionClass::Messages)
            .await
            .is_err()
    );
    assert_eq!(
        take(limiter.as_ref(), &tenant_id, "bob", ActionClass::Messages).await,
        Ok(())
    );
    assert_eq!(
        take(limiter.as_ref(), &tenant_id, "alice", ActionClass::Signals).await,
        Ok(())
    );
    assert_eq!(
        take(
            limiter.as_ref(),
            &other_tenant,
            "alice",
            ActionClass::Messages
        )
        .await,
        Ok(())
    );
}

async fn instances_of_one_deployment_share_the_budget(deployment: impl Deployment) {
    let first = deployment.limiter();
    let second = deployment.limiter();
    let tenant_id = unique_tenant("limits");
    assert_eq!(
        take(first.as_ref(), &tenant_id, "alice", ActionClass::Messages).await,
        Ok(())
    );
    assert_eq!(
        take(second.as_ref(), &tenant_id, "alice", ActionClass::Messages).await,
        Ok(())
    );
    assert_eq!(
        take(first.as_ref(), &tenant_id, "alice", ActionClass::Messages).await,
        Ok(())
    );
    assert!(
        take(second.as_ref(), &tenant_id, "alice", ActionClass::Messages)
            .await
            .is_err(),
        "the other instance spent the rest"
    );
}

async fn a_disabled_limit_always_allows(deployment: impl Deployment) {
    let limiter = deployment.limiter();
    let tenant_id = unique_tenant("limits");
    let off = RateLimit {
        per_minute: 0,
        burst: 0,
    };
    for _ in 0..100 {
        assert_eq!(
            limiter
                .try_take(&tenant_id, &user("alice"), ActionClass::Messages, off)
                .await,
            Ok(Ok(()))
        );
    }
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Memory::new()).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Redis::from_env()).await;
                }
            )*
        }
    };
}

conformance!(
    a_full_budget_allows_the_burst_then_says_when_to_retry,
    budgets_are_per_user_class_and_tenant,
    instances_of_one_deployment_share_the_budget,
    a_disabled_limit_always_allows,
);
