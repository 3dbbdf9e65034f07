//! The provider: tenants get their own realm when configured, lifetimes are clamped, and the
//! username names tenant and user.

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
