//! JWT verification, one case per refusal code, over every supported algorithm. The keys in
//! `testdata/` were generated for these tests with openssl and protect nothing.

use expect_test::{Expect, expect};
use serde_json::json;

use super::*;

const DEV_SECRET: &str = "development-secret-of-at-least-32-bytes!";
const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn now_secs() -> u64 {
    NOW.as_secs()
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn settings(tenants: Vec<TenantKey>, audience: Option<&str>) -> AuthSettings {
    AuthSettings {
        development_secret: DEV_SECRET.to_owned(),
        audience: audience.map(str::to_owned),
        leeway_secs: 5,
        tenants,
    }
}

fn sign(algorithm: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key).expect("signing works")
}

fn hs256(secret: &str, claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        claims,
    )
}

fn claims(tenant: &str) -> Value {
    json!({"sub": "alice", "tenant": tenant, "exp": now_secs() + 60})
}

fn render(result: Result<Identity, AuthError>) -> String {
    match result {
        Ok(identity) => format!("ok {}/{}", identity.tenant_id, identity.user_id),
        Err(error) => format!("{error:?}"),
    }
}

fn check(authenticator: &Authenticator, token: &str, expect: Expect) {
    expect.assert_eq(&render(authenticator.verify(token, NOW)));
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn development_secret_accepts_any_tenant_when_none_are_configured() {
    let authenticator = Authenticator::new(&settings(vec![], None)).expect("valid settings");
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("acme")),
        expect!["ok acme/alice"],
    );
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("other")),
        expect!["ok other/alice"],
    );
}

#[test]
fn refusals_each_have_their_own_reason() {
    let authenticator = Authenticator::new(&settings(vec![], None)).expect("valid settings");
    let now = now_secs();
    check(&authenticator, "", expect!["Missing"]);
    check(&authenticator, "abc", expect!["Malformed"]);
    check(&authenticator, "a.b.c", expect!["Malformed"]);
    check(
        &authenticator,
        &unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims("acme")),
        expect!["AlgorithmNotAllowed"],
    );
    check(
        &authenticator,
        &unsigned(&json!({"alg": "NONE"}), &claims("acme")),
        expect!["AlgorithmNotAllowed"],
    );
    check(
        &authenticator,
        &hs256("another-secret-that-is-32-bytes-long!!", &claims("acme")),
        expect!["BadSignature"],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now - 10}),
        ),
        expect!["Expired"],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now - 2}),
        ),
        expect!["ok acme/alice"],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now + 60, "nbf": now + 30}),
        ),
        expect!["NotYetValid"],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now + 60, "iat": now + 30}),
        ),
        expect!["NotYetValid"],
    );
    check(
        &authenticator,
        &hs256(DEV_SECRET, &json!({"sub": "alice", "tenant": "acme"})),
        expect![[r#"InvalidClaims("exp is required")"#]],
    );
    check(
        &authenticator,
        &hs256(DEV_SECRET, &json!({"tenant": "acme", "exp": now + 60})),
        expect![[r#"InvalidClaims("sub is required and must be a string")"#]],
    );
    check(
        &authenticator,
        &hs256(DEV_SECRET, &json!({"sub": "alice", "exp": now + 60})),
        expect![[r#"InvalidClaims("tenant is required and must be a string")"#]],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "a b", "tenant": "acme", "exp": now + 60}),
        ),
        expect![[r#"InvalidClaims("sub is not a valid id")"#]],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": "soon"}),
        ),
        expect![[r#"InvalidClaims("exp must be a number")"#]],
    );
    check(
        &authenticator,
        &hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now + 60, "aud": "x"}),
        ),
        expect!["BadAudience"],
    );
}

#[test]
fn audience_is_honoured_when_present() {
    let authenticator =
        Authenticator::new(&settings(vec![], Some("chat"))).expect("valid settings");
    let now = now_secs();
    let with_audience = |audience: Value| {
        hs256(
            DEV_SECRET,
            &json!({"sub": "alice", "tenant": "acme", "exp": now + 60, "aud": audience}),
        )
    };
    check(
        &authenticator,
        &with_audience(json!("chat")),
        expect!["ok acme/alice"],
    );
    check(
        &authenticator,
        &with_audience(json!(["chat", "other"])),
        expect!["ok acme/alice"],
    );
    check(
        &authenticator,
        &with_audience(json!("other")),
        expect!["BadAudience"],
    );
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("acme")),
        expect!["ok acme/alice"],
    );
}

fn configured() -> Authenticator {
    let tenants = vec![
        TenantKey {
            tenant_id: tenant("dev"),
            verifier: TenantVerifier::DevelopmentSecret,
        },
        TenantKey {
            tenant_id: tenant("hs"),
            verifier: TenantVerifier::Hs256 {
                secret: "tenant-hs-secret-of-at-least-32-bytes".to_owned(),
            },
        },
        TenantKey {
            tenant_id: tenant("rs"),
            verifier: TenantVerifier::Rs256 {
                public_key_pem: include_str!("testdata/rsa_public.pem").to_owned(),
            },
        },
        TenantKey {
            tenant_id: tenant("es"),
            verifier: TenantVerifier::Es256 {
                public_key_pem: include_str!("testdata/ec_public.pem").to_owned(),
            },
        },
        TenantKey {
            tenant_id: tenant("ed"),
            verifier: TenantVerifier::EdDsa {
                public_key_pem: include_str!("testdata/ed_public.pem").to_owned(),
            },
        },
    ];
    Authenticator::new(&settings(tenants, None)).expect("valid settings")
}

#[test]
fn configured_tenants_use_their_own_keys() {
    let authenticator = configured();
    let rsa =
        EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa_private.pem")).expect("rsa key");
    let ec = EncodingKey::from_ec_pem(include_bytes!("testdata/ec_private.pem")).expect("ec key");
    let ed = EncodingKey::from_ed_pem(include_bytes!("testdata/ed_private.pem")).expect("ed key");
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("dev")),
        expect!["ok dev/alice"],
    );
    check(
        &authenticator,
        &hs256("tenant-hs-secret-of-at-least-32-bytes", &claims("hs")),
        expect!["ok hs/alice"],
    );
    check(
        &authenticator,
        &sign(Algorithm::RS256, &rsa, &claims("rs")),
        expect!["ok rs/alice"],
    );
    check(
        &authenticator,
        &sign(Algorithm::ES256, &ec, &claims("es")),
        expect!["ok es/alice"],
    );
    check(
        &authenticator,
        &sign(Algorithm::EdDSA, &ed, &claims("ed")),
        expect!["ok ed/alice"],
    );
    // Unknown tenants are refused once tenants are configured, even with the dev secret.
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("nobody")),
        expect!["UnknownTenant"],
    );
    // A tenant's key does not verify another tenant's tokens.
    check(
        &authenticator,
        &hs256(DEV_SECRET, &claims("hs")),
        expect!["BadSignature"],
    );
    check(
        &authenticator,
        &sign(Algorithm::RS256, &rsa, &claims("es")),
        expect!["AlgorithmNotAllowed"],
    );
}

#[test]
fn algorithm_confusion_is_refused() {
    let authenticator = configured();
    // The classic attack: sign HS256 using the RSA public key as the HMAC secret.
    let public_pem = include_str!("testdata/rsa_public.pem");
    let forged = hs256(public_pem, &claims("rs"));
    check(&authenticator, &forged, expect!["AlgorithmNotAllowed"]);
    // And an RS256 tenant never accepts alg none.
    check(
        &authenticator,
        &unsigned(&json!({"alg": "none"}), &claims("rs")),
        expect!["AlgorithmNotAllowed"],
    );
}

#[test]
fn weak_or_broken_configuration_is_refused_at_startup() {
    let weak = AuthSettings {
        development_secret: "short".to_owned(),
        ..settings(vec![], None)
    };
    assert!(matches!(
        Authenticator::new(&weak),
        Err(Error::InvalidConfig(_))
    ));
    let broken_key = settings(
        vec![TenantKey {
            tenant_id: tenant("rs"),
            verifier: TenantVerifier::Rs256 {
                public_key_pem: "not a pem".to_owned(),
            },
        }],
        None,
    );
    assert!(matches!(
        Authenticator::new(&broken_key),
        Err(Error::InvalidKey { .. })
    ));
}

#[test]
fn minted_tokens_verify() {
    let authenticator = Authenticator::new(&settings(vec![], None)).expect("valid settings");
    let token = mint_hs256(
        DEV_SECRET,
        &tenant("acme"),
        &UserId::parse("bob").expect("valid"),
        NOW,
        3600,
    )
    .expect("mints");
    check(&authenticator, &token, expect!["ok acme/bob"]);
    let later = NOW.plus_millis(3_601_000 + 5_000);
    assert_eq!(authenticator.verify(&token, later), Err(AuthError::Expired));
}

#[test]
fn roles_come_from_the_roles_claim_and_a_malformed_one_is_refused() {
    let authenticator = Authenticator::new(&settings(vec![], None)).expect("valid settings");
    let roles_of = |roles: Value| {
        let mut claims = claims("acme");
        claims["roles"] = roles;
        authenticator
            .verify_with_roles(&hs256(DEV_SECRET, &claims), NOW)
            .map(|(_, roles)| roles)
    };
    assert_eq!(
        authenticator
            .verify_with_roles(&hs256(DEV_SECRET, &claims("acme")), NOW)
            .map(|(_, roles)| roles),
        Ok(Roles::default()),
        "no claim, no role"
    );
    assert_eq!(
        roles_of(json!(["admin"])),
        Ok(Roles {
            admin: true,
            recorder: false
        })
    );
    assert_eq!(
        roles_of(json!(["billing", "recorder"])),
        Ok(Roles {
            admin: false,
            recorder: true
        }),
        "other systems' roles are ignored"
    );
    assert_eq!(roles_of(json!(null)), Ok(Roles::default()));
    for malformed in [json!("admin"), json!([1]), json!({"admin": true})] {
        assert_eq!(
            roles_of(malformed.clone()),
            Err(AuthError::InvalidClaims(
                "roles must be an array of strings".to_owned()
            )),
            "{malformed}"
        );
    }
    // Minted roles round-trip.
    let token = mint_hs256_with_roles(
        DEV_SECRET,
        &tenant("acme"),
        &UserId::parse("ops").expect("a user"),
        NOW,
        60,
        &["admin", "recorder"],
    )
    .expect("minted");
    assert_eq!(
        authenticator
            .verify_with_roles(&token, NOW)
            .map(|(_, roles)| roles),
        Ok(Roles {
            admin: true,
            recorder: true
        })
    );
}
