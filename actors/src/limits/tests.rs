//! Per-user limits: buckets are per (tenant, user, action class), a tenant may have rates of its
//! own, and connection slots come back when dropped.

use switchboard_engine::rate_limit::RateLimit;

use super::*;

fn ids(tenant: &str, user: &str) -> (TenantId, UserId) {
    (
        TenantId::parse(tenant).expect("valid tenant"),
        UserId::parse(user).expect("valid user"),
    )
}

/// What `UserLimits::take` does when there is no shared budget to ask, without a runtime.
fn own_budget(
    limits: &UserLimits,
) -> impl Fn(ActionClass, &TenantId, &UserId, Timestamp) -> Result<(), Error> + '_ {
    |class, tenant_id, user_id, now| {
        let rate_limit = limits.rate_limits_of(tenant_id).get(class);
        limits.take_from_own_budget(class, rate_limit, tenant_id, user_id, now)
    }
}

fn one_a_second() -> RateLimit {
    RateLimit {
        per_minute: 60,
        burst: 1,
    }
}

#[test]
fn rate_limits_are_per_user_per_tenant_per_class() {
    let limits = UserLimits::new(
        RateLimits::uniform(one_a_second()),
        HashMap::default(),
        0,
        None,
        None,
    );
    let (tenant_a, alice) = ids("a", "alice");
    let (tenant_b, _) = ids("b", "alice");
    let now = Timestamp(1_000);
    let take = |class, tenant_id| own_budget(&limits)(class, tenant_id, &alice, now);
    assert_eq!(take(ActionClass::Messages, &tenant_a), Ok(()));
    assert_eq!(
        take(ActionClass::Messages, &tenant_a),
        Err(Error::RateLimited {
            retry_after_ms: 1000
        })
    );
    assert_eq!(
        take(ActionClass::Operations, &tenant_a),
        Ok(()),
        "another class"
    );
    assert_eq!(
        take(ActionClass::Messages, &tenant_b),
        Ok(()),
        "another tenant"
    );
}

#[test]
fn a_tenant_may_have_rates_of_its_own() {
    let (generous, alice) = ids("generous", "alice");
    let (plain, _) = ids("plain", "alice");
    let mut overrides = HashMap::default();
    overrides.insert(
        generous.clone(),
        RateLimits {
            messages: RateLimit {
                per_minute: 600,
                burst: 3,
            },
            ..RateLimits::uniform(one_a_second())
        },
    );
    let limits = UserLimits::new(
        RateLimits::uniform(one_a_second()),
        overrides,
        0,
        None,
        None,
    );
    let now = Timestamp(1_000);
    let admitted = |tenant_id| {
        (0..5)
            .filter(|_| own_budget(&limits)(ActionClass::Messages, tenant_id, &alice, now).is_ok())
            .count()
    };
    assert_eq!(admitted(&generous), 3);
    assert_eq!(admitted(&plain), 1);
}

#[test]
fn connection_slots_are_capped_and_released() {
    let limits = UserLimits::new(
        RateLimits::uniform(RateLimit {
            per_minute: 0,
            burst: 0,
        }),
        HashMap::default(),
        2,
        None,
        None,
    );
    let (tenant, alice) = ids("a", "alice");
    let first = limits.open_connection(&tenant, &alice).expect("first slot");
    let _second = limits
        .open_connection(&tenant, &alice)
        .expect("second slot");
    assert!(matches!(
        limits.open_connection(&tenant, &alice),
        Err(Error::TooManyConnections { limit: 2 })
    ));
    drop(first);
    assert_eq!(limits.n_connections(&tenant, &alice), 1);
    assert!(limits.open_connection(&tenant, &alice).is_ok());
}

/// A shared limiter whose backend is away: every call fails, and calls are counted.
struct AwayBackend(std::sync::atomic::AtomicU32);

#[async_trait::async_trait]
impl SharedRateLimiter for AwayBackend {
    async fn try_take(
        &self,
        _: &TenantId,
        _: &UserId,
        _: ActionClass,
        _: RateLimit,
    ) -> Result<Result<(), u64>, switchboard_engine::StoreError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(switchboard_engine::StoreError::Unavailable(
            "Redis: connection refused".to_owned(),
        ))
    }
}

#[tokio::test]
async fn when_the_shared_budgets_are_away_this_nodes_decide_and_they_are_not_asked_again_at_once() {
    let away = Arc::new(AwayBackend(std::sync::atomic::AtomicU32::new(0)));
    let limits = UserLimits::new(
        RateLimits::uniform(one_a_second()),
        HashMap::default(),
        0,
        Some(Arc::clone(&away) as Arc<dyn SharedRateLimiter>),
        None,
    );
    let (tenant, alice) = ids("a", "alice");
    let now = Timestamp(1_000_000);
    // This node's budget (one token) decides: the first take passes, the second does not.
    assert_eq!(
        limits
            .take(ActionClass::Messages, &tenant, &alice, now)
            .await,
        Ok(())
    );
    assert!(matches!(
        limits
            .take(ActionClass::Messages, &tenant, &alice, now)
            .await,
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(
        away.0.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "after a failure the shared budgets are left alone for a while"
    );
}

#[test]
fn every_refusal_is_a_security_event_of_its_user_and_tenant() {
    let security = crate::security::SecurityLog::new(Arc::new(crate::clock::SystemClock));
    let limits = UserLimits::new(
        RateLimits::uniform(one_a_second()),
        HashMap::default(),
        1,
        None,
        Some(Arc::clone(&security)),
    );
    let (tenant, alice) = ids("acme", "alice");
    let now = Timestamp(1_000_000);
    assert!(own_budget(&limits)(ActionClass::Messages, &tenant, &alice, now).is_ok());
    for _ in 0..3 {
        assert!(own_budget(&limits)(ActionClass::Messages, &tenant, &alice, now).is_err());
    }
    let _slot = limits
        .open_connection(&tenant, &alice)
        .expect("the first slot");
    assert!(limits.open_connection(&tenant, &alice).is_err());
    use crate::security::SecurityReason;
    assert_eq!(
        security.counts(),
        vec![
            (SecurityReason::RateLimited, "acme".to_owned(), 3),
            (SecurityReason::TooManyConnections, "acme".to_owned(), 1),
        ]
    );
}
