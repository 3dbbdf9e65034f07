//! The provider: tenants get their own realm when configured, lifetimes are clamped, and the
//! username names tenant and user, a `:` inside an id never moving the boundary between them.

use super::*;
use crate::credentials::{key_id, password_for};

fn realm(secret: &str, host: &str) -> TurnRealm {
    TurnRealm {
        secrets: SecretRing::new(secret.as_bytes().to_vec()),
        turn_uris: vec![format!("turn:{host}:3478?transport=udp")],
        stun_uris: vec![format!("stun:{host}:3478")],
    }
}

#[test]
fn tenants_get_their_own_realm_and_lifetimes_are_clamped() {
    let acme = TenantId::parse("acme").expect("valid");
    let other = TenantId::parse("other").expect("valid");
    let alice = UserId::parse("alice").expect("valid");
    let mut tenants = HashMap::default();
    tenants.insert(acme.clone(), realm("acme-secret", "turn.acme.test"));
    let service = TurnService::new(realm("default-secret", "turn.test"), tenants, 3600, 7200);
    let now = Timestamp(1_700_000_000_000);

    let servers = service.ice_servers(&acme, &alice, now, None);
    assert_eq!(
        servers.username,
        format!("1700003600:acme:alice:{}", key_id(b"acme-secret"))
    );
    assert_eq!(
        servers.password,
        password_for(b"acme-secret", &servers.username)
    );
    assert_eq!(
        servers.turn_uris,
        ["turn:turn.acme.test:3478?transport=udp"]
    );
    assert_eq!(servers.ttl_secs, 3600);

    let servers = service.ice_servers(&other, &alice, now, Some(100_000));
    assert_eq!(servers.ttl_secs, 7200, "clamped to the configured maximum");
    assert_eq!(
        servers.password,
        password_for(b"default-secret", &servers.username)
    );
    assert_eq!(servers.stun_uris, ["stun:turn.test:3478"]);
}

#[test]
fn a_colon_cannot_move_the_boundary_between_tenant_and_user() {
    let service = TurnService::new(realm("default-secret", "turn.test"), [], 3600, 7200);
    let now = Timestamp(1_700_000_000_000);
    let first = service.ice_servers(
        &TenantId::parse("acme:alice").expect("valid"),
        &UserId::parse("x").expect("valid"),
        now,
        None,
    );
    let second = service.ice_servers(
        &TenantId::parse("acme").expect("valid"),
        &UserId::parse("alice:x").expect("valid"),
        now,
        None,
    );
    let key = key_id(b"default-secret");
    assert_eq!(first.username, format!("1700003600:acme%3Aalice:x:{key}"));
    assert_eq!(second.username, format!("1700003600:acme:alice%3Ax:{key}"));
    assert_ne!(first.password, second.password);
    for servers in [&first, &second] {
        assert_eq!(
            service.password_key(&servers.username, now),
            Ok(&b"default-secret"[..]),
            "the relay finds the signing secret of {}",
            servers.username
        );
    }
}
