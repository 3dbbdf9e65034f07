//! What the check hands the TURN server: requests whose credential is refused lose their
//! MESSAGE-INTEGRITY and nothing else; everything that is not such a request passes untouched
//! and uncounted.

use std::sync::atomic::{AtomicU64, Ordering};

use stun::agent::TransactionId;
use stun::fingerprint::FINGERPRINT;
use stun::message::{BINDING_REQUEST, CLASS_INDICATION, METHOD_SEND, Setter};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::IceServerProvider;
use switchboard_engine::time::Timestamp;

use super::*;
use crate::credentials::SecretRing;
use crate::relay::failures::RefusalReason;
use crate::service::TurnRealm;

const NOW: Timestamp = Timestamp(1_700_000_000_000);

struct FixedClock(AtomicU64);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }
}

fn check() -> CredentialCheck {
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(AtomicU64::new(NOW.as_millis())));
    CredentialCheck {
        secrets: TurnService::new(
            TurnRealm {
                secrets: SecretRing::new(b"relay-secret".to_vec()),
                turn_uris: Vec::new(),
                stun_uris: Vec::new(),
            },
            [],
            3600,
            86400,
        ),
        failures: Arc::new(RelayAuthFailures::new(Arc::clone(&clock))),
        clock,
    }
}

fn source() -> SocketAddr {
    "192.0.2.1:40000".parse().expect("an address")
}

/// A message of `message_type` with a long-term credential (`password` in realm
/// `switchboard`) and a FINGERPRINT.
fn signed(message_type: MessageType, username: &str, password: &str) -> Message {
    let mut message = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(TransactionId::new()),
        Box::new(message_type),
        Box::new(TextAttribute::new(ATTR_USERNAME, username.to_owned())),
        Box::new(TextAttribute::new(ATTR_REALM, "switchboard".to_owned())),
        Box::new(TextAttribute::new(ATTR_NONCE, "a-nonce".to_owned())),
        Box::new(MessageIntegrity::new_long_term_integrity(
            username.to_owned(),
            "switchboard".to_owned(),
            password.to_owned(),
        )),
        Box::new(FINGERPRINT),
    ];
    message.build(&setters).expect("built");
    message
}

fn n_refusals(check: &CredentialCheck) -> u64 {
    RefusalReason::ALL
        .iter()
        .map(|reason| check.failures.count(*reason))
        .sum()
}

#[test]
fn a_refused_request_loses_its_message_integrity_and_nothing_else() {
    let check = check();
    let credential = check.secrets.ice_servers(
        &TenantId::parse("acme").expect("valid"),
        &UserId::parse("alice").expect("valid"),
        NOW,
        Some(600),
    );
    let allocate = MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST);
    let good = signed(allocate, &credential.username, &credential.password);
    assert_eq!(
        check.screen(&good.raw, source()),
        None,
        "a good credential passes"
    );

    let refused = signed(allocate, &credential.username, "not-the-password");
    let handed_on = check
        .screen(&refused.raw, source())
        .expect("a refused credential is rewritten");
    assert_eq!(check.failures.count(RefusalReason::BadPassword), 1);
    let mut stripped = Message::new();
    stripped.raw = handed_on;
    stripped.decode().expect("a STUN message");
    assert_eq!(stripped.typ, refused.typ);
    assert_eq!(stripped.transaction_id, refused.transaction_id);
    assert!(!stripped.contains(ATTR_MESSAGE_INTEGRITY));
    assert!(!stripped.contains(stun::attributes::ATTR_FINGERPRINT));
    let types = |message: &Message| -> Vec<u16> {
        message
            .attributes
            .0
            .iter()
            .map(|attribute| attribute.typ.value())
            .collect()
    };
    assert_eq!(
        types(&stripped),
        types(&refused)[..3].to_vec(),
        "USERNAME, REALM and NONCE are kept"
    );
}

#[test]
fn anything_but_a_signed_authenticated_request_passes_untouched_and_uncounted() {
    let check = check();
    let bad = ("1700000600:acme:alice:k00000000", "whatever");
    let binding = signed(BINDING_REQUEST, bad.0, bad.1);
    let send = signed(
        MessageType::new(METHOD_SEND, CLASS_INDICATION),
        bad.0,
        bad.1,
    );
    let mut unsigned = Message::new();
    unsigned
        .build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ])
        .expect("built");
    let channel_data = [0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4];
    for (what, datagram) in [
        ("a Binding request", &binding.raw[..]),
        ("a Send indication", &send.raw[..]),
        ("an Allocate without credentials", &unsigned.raw[..]),
        ("ChannelData", &channel_data[..]),
        ("garbage", b"not STUN at all, just bytes"),
    ] {
        assert_eq!(check.screen(datagram, source()), None, "{what}");
    }
    assert_eq!(n_refusals(&check), 0);
}

#[test]
fn a_signed_request_missing_its_realm_is_counted_malformed_and_left_to_the_server() {
    let check = check();
    let mut message = Message::new();
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(TextAttribute::new(ATTR_USERNAME, "alice".to_owned())),
        Box::new(MessageIntegrity::new_short_term_integrity("x".to_owned())),
    ];
    message.build(&setters).expect("built");
    assert_eq!(
        check.screen(&message.raw, source()),
        None,
        "the server answers 400"
    );
    assert_eq!(check.failures.count(RefusalReason::Malformed), 1);
}
