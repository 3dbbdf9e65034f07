//! Known-answer tests for the credential formula (RFC 2202's HMAC-SHA1 vector, and values
//! computed independently with Python's `hmac`), expiry, tampering and secret rotation.

use super::*;

#[test]
fn hmac_sha1_matches_rfc_2202() {
    // RFC 2202, test case 1: key = 20 bytes of 0x0b, data = "Hi There".
    assert_eq!(
        password_for(&[0x0b; 20], "Hi There"),
        "thcxhlUFcmTii8C2+zeMjvFGvgA="
    );
}

#[test]
fn minted_credentials_match_independently_computed_values() {
    // python3: base64.b64encode(hmac.new(b"north", b"1700003600:acme:alice", hashlib.sha1).digest())
    let credential = mint(b"north", "acme:alice", Timestamp(1_700_000_000_123), 3600);
    assert_eq!(credential.username, "1700003600:acme:alice");
    assert_eq!(credential.password, "aTlZu9WWXB350LYUZdcNByONOJU=");
    assert_eq!(credential.ttl_secs, 3600);
    assert_eq!(credential.expires_at, Timestamp(1_700_003_600_000));
    assert_eq!(
        password_for(b"a-tenant-secret-of-at-least-32-bytes", "86400:u"),
        "qVqRvDqgVT7dC7tKNWhnaSvrXbA="
    );
}

#[test]
fn a_ring_names_its_signing_secret_in_the_username() {
    // python3: "k" + hashlib.sha256(b"north").hexdigest()[:8]
    assert_eq!(key_id(b"north"), "kdc365e79");
    let ring = SecretRing::new(b"north".to_vec());
    let credential = ring.mint("acme:alice", Timestamp(1_700_000_000_123), 3600);
    // python3: base64.b64encode(hmac.new(b"north", b"1700003600:acme:alice:kdc365e79",
    // hashlib.sha1).digest())
    assert_eq!(credential.username, "1700003600:acme:alice:kdc365e79");
    assert_eq!(credential.password, "yG4PU+tqj7I9jDy8Xls106HBrsA=");
    // The key the relay derives the password from is that secret's.
    assert_eq!(
        ring.password_key(&credential.username, Timestamp(1_700_000_000_123)),
        Ok(&b"north"[..])
    );
    // A key id no accepted secret has is refused, whatever the password.
    let renamed = credential.username.replace("kdc365e79", "k00000000");
    assert_eq!(
        ring.verify(
            &renamed,
            &password_for(b"north", &renamed),
            Timestamp(1_700_000_000_123)
        ),
        Err(CredentialError::BadPassword)
    );
}

#[test]
fn the_lifetime_is_clamped_to_a_day() {
    let now = Timestamp(1_000_000);
    assert_eq!(mint(b"s", "u", now, 0).ttl_secs, 1);
    assert_eq!(
        mint(b"s", "u", now, 10 * MAX_TTL_SECS).ttl_secs,
        MAX_TTL_SECS
    );
}

#[test]
fn verification_refuses_expired_tampered_and_malformed_credentials() {
    let ring = SecretRing::new(b"current".to_vec());
    let now = Timestamp(1_700_000_000_000);
    let credential = ring.mint("acme:alice", now, 60);
    assert_eq!(
        ring.verify(&credential.username, &credential.password, now),
        Ok(())
    );
    let at_expiry = Timestamp(now.as_millis() + 60_000);
    assert_eq!(
        ring.verify(&credential.username, &credential.password, at_expiry),
        Err(CredentialError::Expired)
    );
    let longer = credential.username.replacen("1700000060", "1700009999", 1);
    assert_eq!(
        ring.verify(&longer, &credential.password, now),
        Err(CredentialError::BadPassword),
        "a username with a later expiry does not match the password"
    );
    assert_eq!(
        ring.verify(&credential.username, "not base64!", now),
        Err(CredentialError::BadPassword)
    );
    for malformed in ["alice", ":alice", "soon:alice", "1700000060:"] {
        assert_eq!(
            ring.verify(malformed, &credential.password, now),
            Err(CredentialError::Malformed),
            "{malformed}"
        );
    }
}

#[test]
fn rotation_accepts_a_retired_secret_until_its_time() {
    let now = Timestamp(1_700_000_000_000);
    let before = SecretRing::new(b"old".to_vec());
    let issued = before.mint("acme:alice", now, 3600);
    let after = SecretRing {
        current: b"new".to_vec(),
        retired: vec![RetiredSecret {
            secret: b"old".to_vec(),
            accepted_until: Timestamp(now.as_millis() + 600_000),
        }],
    };
    assert_eq!(
        after.verify(&issued.username, &issued.password, now),
        Ok(())
    );
    let later = Timestamp(now.as_millis() + 600_000);
    assert_eq!(
        after.verify(&issued.username, &issued.password, later),
        Err(CredentialError::BadPassword),
        "the retired secret is no longer accepted"
    );
    let fresh = after.mint("acme:alice", later, 3600);
    assert_eq!(fresh.password, password_for(b"new", &fresh.username));
    assert_eq!(
        after.verify(&fresh.username, &fresh.password, later),
        Ok(())
    );
}
