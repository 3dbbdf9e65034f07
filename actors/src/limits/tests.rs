//! Per-user limits: buckets are per (tenant, user) and connection slots come back when dropped.

use super::*;

fn ids(tenant: &str, user: &str) -> (TenantId, UserId) {
    (
        TenantId::parse(tenant).expect("valid tenant"),
        UserId::parse(user).expect("valid user"),
    )
}

#[test]
fn rate_limit_is_per_user_per_tenant() {
    let limits = UserLimits::new(
        RateLimit {
            per_minute: 60,
            burst: 1,
        },
        0,
    );
    let (tenant_a, alice) = ids("a", "alice");
    let (tenant_b, _) = ids("b", "alice");
    let now = Timestamp(1_000);
    assert_eq!(limits.try_send(&tenant_a, &alice, now), Ok(()));
    assert_eq!(
        limits.try_send(&tenant_a, &alice, now),
        Err(Error::RateLimited {
            retry_after_ms: 1000
        })
    );
    assert_eq!(limits.try_send(&tenant_b, &alice, now), Ok(()));
}

#[test]
fn connection_slots_are_capped_and_released() {
    let limits = UserLimits::new(
        RateLimit {
            per_minute: 0,
            burst: 0,
        },
        2,
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
