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
    );
    let (tenant_a, alice) = ids("a", "alice");
    let (tenant_b, _) = ids("b", "alice");
    let now = Timestamp(1_000);
    let take = |class, tenant_id| limits.try_take(class, tenant_id, &alice, now);
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
    let limits = UserLimits::new(RateLimits::uniform(one_a_second()), overrides, 0, None);
    let now = Timestamp(1_000);
    let admitted = |tenant_id| {
        (0..5)
            .filter(|_| {
                limits
                    .try_take(ActionClass::Messages, tenant_id, &alice, now)
                    .is_ok()
            })
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
