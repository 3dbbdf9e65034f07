//! Known-answer tests for the credential formula (RFC 2202's HMAC-SHA1 vector, and values
//! computed independently with Python's `hmac`), the username's encoding of tenant and user
//! (injective, one spelling per field, refused otherwise), expiry, tampering and secret
//! rotation.

use super::*;

fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).expect("a valid tenant id")
}

fn user(id: &str) -> UserId {
    UserId::parse(id).expect("a valid user id")
}

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
    let credential = ring.mint(
        &tenant("acme"),
        &user("alice"),
        Timestamp(1_700_000_000_123),
        3600,
    );
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
        Err(CredentialError::UnknownKey)
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
    let credential = ring.mint(&tenant("acme"), &user("alice"), now, 60);
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
    let key = key_id(b"current");
    for malformed in [
        "alice".to_owned(),
        ":alice".to_owned(),
        "soon:alice".to_owned(),
        "1700000060:".to_owned(),
        // The key id is not where it belongs, or not one.
        "1700000060:acme:alice".to_owned(),
        format!("1700000060:acme:alice:{key}:"),
        "1700000060:acme:alice:K00000000".to_owned(),
        "1700000060:acme:alice:k0000000g".to_owned(),
        // The expiry is not only digits.
        format!("+1700000060:acme:alice:{key}"),
        format!(":acme:alice:{key}"),
        // A tenant with a bare `:` reads as five fields.
        format!("1700000060:acme:alice:x:{key}"),
        // Not the encoding's spelling, or not an id the engine accepts.
        format!("1700000060:acme%3aalice:x:{key}"),
        format!("1700000060:acme%:x:{key}"),
        format!("1700000060:acme%41:x:{key}"),
        format!("1700000060:acme%25:x:{key}"),
        format!("1700000060::alice:{key}"),
        format!("1700000060:acme::{key}"),
        format!("1700000060:ac me:alice:{key}"),
    ] {
        assert_eq!(
            ring.verify(&malformed, &credential.password, now),
            Err(CredentialError::Malformed),
            "{malformed}"
        );
    }
}

#[test]
fn rotation_accepts_a_retired_secret_until_its_time() {
    let now = Timestamp(1_700_000_000_000);
    let (acme, alice) = (tenant("acme"), user("alice"));
    let before = SecretRing::new(b"old".to_vec());
    let issued = before.mint(&acme, &alice, now, 3600);
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
        Err(CredentialError::UnknownKey),
        "the retired secret is no longer accepted"
    );
    let fresh = after.mint(&acme, &alice, later, 3600);
    assert_eq!(fresh.password, password_for(b"new", &fresh.username));
    assert_eq!(
        after.verify(&fresh.username, &fresh.password, later),
        Ok(())
    );
}

#[test]
fn a_colon_in_an_id_is_percent_encoded_so_tenant_and_user_keep_their_boundary() {
    let ring = SecretRing::new(b"north".to_vec());
    let now = Timestamp(1_700_000_000_123);
    // python3: base64.b64encode(hmac.new(b"north", USERNAME.encode(), hashlib.sha1).digest())
    for (tenant_id, user_id, username, password) in [
        (
            "acme:alice",
            "x",
            "1700003600:acme%3Aalice:x:kdc365e79",
            "gq0axqZ6Z6p1G49ms9XLFOjBKx8=",
        ),
        (
            "acme",
            "alice:x",
            "1700003600:acme:alice%3Ax:kdc365e79",
            "/WNFm0F3ECRypBlx+zPdpxSPM2s=",
        ),
        (
            "acme",
            "@alice:example.org",
            "1700003600:acme:@alice%3Aexample.org:kdc365e79",
            "ttDnXm2w/37ARwYAZ+l3ssIDG0s=",
        ),
    ] {
        let credential = ring.mint(&tenant(tenant_id), &user(user_id), now, 3600);
        assert_eq!(credential.username, username);
        assert_eq!(credential.password, password);
        assert_eq!(
            SwitchboardUsername::parse(&credential.username),
            Ok(SwitchboardUsername {
                expiry_secs: 1_700_003_600,
                tenant_id: tenant(tenant_id),
                user_id: user(user_id),
                key_id: "kdc365e79".to_owned(),
            }),
            "the username reads back as the identity it was minted for"
        );
        assert_eq!(
            ring.verify(&credential.username, &credential.password, now),
            Ok(())
        );
    }
}

/// Strings chosen to collide under a careless encoding: colons at either end, percent signs,
/// and the escapes themselves spelled out.
const TRICKY: [&str; 14] = [
    "", ":", "::", "%", "%%", "%3A", "%3a", "%25", "%253A", "a:b", "a%3Ab", "a:", ":b", "a",
];

#[test]
fn the_component_encoding_round_trips_and_never_writes_a_colon() {
    for component in TRICKY.iter().copied().chain(["acme", "@alice:example.org"]) {
        let encoded = encode_username_component(component);
        assert!(!encoded.contains(':'), "{component:?} -> {encoded:?}");
        assert_eq!(
            decode_username_component(&encoded).as_deref(),
            Some(component),
            "{component:?} -> {encoded:?}"
        );
    }
    assert_eq!(encode_username_component("a:b%c"), "a%3Ab%25c");
    assert_eq!(
        encode_username_component("alice"),
        "alice",
        "ids without : stay as they are"
    );
}

#[test]
fn joined_encodings_of_distinct_pairs_are_distinct() {
    let mut seen: foldhash::HashMap<String, (&str, &str)> = foldhash::HashMap::default();
    for tenant_part in TRICKY {
        for user_part in TRICKY {
            let joined = format!(
                "{}:{}",
                encode_username_component(tenant_part),
                encode_username_component(user_part)
            );
            if let Some(earlier) = seen.insert(joined.clone(), (tenant_part, user_part)) {
                panic!(
                    "{earlier:?} and {:?} both give {joined:?}",
                    (tenant_part, user_part)
                );
            }
        }
    }
    assert_eq!(seen.len(), TRICKY.len() * TRICKY.len());
    // The pair from the issue, and its mirror image.
    assert_ne!(
        format!(
            "{}:{}",
            encode_username_component("acme:alice"),
            encode_username_component("x")
        ),
        format!(
            "{}:{}",
            encode_username_component("acme"),
            encode_username_component("alice:x")
        ),
    );
    assert_ne!(
        format!(
            "{}:{}",
            encode_username_component("a:"),
            encode_username_component("b")
        ),
        format!(
            "{}:{}",
            encode_username_component("a"),
            encode_username_component(":b")
        ),
    );
}

#[test]
fn only_the_encodings_own_spellings_decode() {
    for not_written in [
        ":", "a:b", "%", "%3", "%3a", "%2", "%41", "%%3A", "a%", "%g0",
    ] {
        assert_eq!(
            decode_username_component(not_written),
            None,
            "{not_written:?} is not something encode_username_component writes"
        );
    }
    assert_eq!(decode_username_component("%253A").as_deref(), Some("%3A"));
}
