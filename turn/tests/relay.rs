//! The embedded TURN relay against a real TURN client (webrtc-rs `turn`'s client, over UDP on
//! 127.0.0.1): credentials from the same service allocate and relay both ways; expired,
//! tampered and retired-past-their-time ones are refused; rotation keeps credentials signed
//! by the previous secret working until its time; two identities that differ only in which side
//! of a `:` a part of the name sits on get different credentials, and neither signs in as the
//! other; a refused credential is answered 401 with a fresh nonce that the relay then honours
//! (requests built with webrtc-rs's `stun` codec). The clock is a test clock, so expiry is
//! checked without waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, Getter, METHOD_ALLOCATE, Message, MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{Clock, IceServerProvider, IceServers};
use switchboard_engine::time::Timestamp;
use switchboard_testing::CapturedLog;
use switchboard_turn::credentials::{RetiredSecret, SecretRing, password_for};
use switchboard_turn::relay::failures::{LOG_INTERVAL, RefusalReason};
use switchboard_turn::relay::{EmbeddedRelay, RelaySettings};
use switchboard_turn::service::{TurnRealm, TurnService};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use turn::proto::PROTO_UDP;
use turn::proto::reqtrans::RequestedTransport;
use webrtc_util::Conn;

const DEADLINE: Duration = Duration::from_secs(20);

/// A clock the test moves.
struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }
}

fn service(current: &[u8], retired: Option<(&[u8], Timestamp)>) -> TurnService {
    let mut secrets = SecretRing::new(current.to_vec());
    if let Some((secret, accepted_until)) = retired {
        secrets.retired.push(RetiredSecret {
            secret: secret.to_vec(),
            accepted_until,
        });
    }
    TurnService::new(
        TurnRealm {
            secrets,
            turn_uris: Vec::new(),
            stun_uris: Vec::new(),
        },
        [],
        3600,
        86400,
    )
}

async fn start_relay(secrets: TurnService, clock: Arc<TestClock>) -> EmbeddedRelay {
    EmbeddedRelay::start(
        &RelaySettings {
            listen: "127.0.0.1:0".parse().expect("an address"),
            public_ip: "127.0.0.1".parse().expect("an address"),
            min_port: 40000,
            max_port: 49000,
            realm: "switchboard".to_owned(),
        },
        secrets,
        clock,
    )
    .await
    .expect("the relay starts")
}

/// Allocates on the relay with a credential; on success relays a datagram to a peer and back.
async fn allocate_and_relay(
    relay: SocketAddr,
    username: &str,
    password: &str,
) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("a client socket");
    let client = Client::new(ClientConfig {
        stun_serv_addr: relay.to_string(),
        turn_serv_addr: relay.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .expect("a client");
    client.listen().await.expect("the client listens");
    let allocated = tokio::time::timeout(DEADLINE, client.allocate())
        .await
        .expect("the relay answers within the deadline");
    let relayed = match allocated {
        Ok(relayed) => relayed,
        Err(error) => {
            client.close().await.expect("closed");
            return Err(error.to_string());
        }
    };
    let relayed_addr = relayed.local_addr().expect("a relayed address");

    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("a peer socket");
    let peer_addr = peer.local_addr().expect("bound");
    relayed
        .send_to(b"through the relay", peer_addr)
        .await
        .expect("sent through the relay");
    let mut buffer = [0u8; 64];
    let (n, from) = tokio::time::timeout(DEADLINE, peer.recv_from(&mut buffer))
        .await
        .expect("the peer hears within the deadline")
        .expect("received");
    assert_eq!(&buffer[..n], b"through the relay");
    assert_eq!(
        from.port(),
        relayed_addr.port(),
        "it came from the relayed address"
    );
    peer.send_to(b"and back", relayed_addr)
        .await
        .expect("the peer answers");
    let (n, from) = tokio::time::timeout(DEADLINE, relayed.recv_from(&mut buffer))
        .await
        .expect("the answer arrives within the deadline")
        .expect("received");
    assert_eq!(&buffer[..n], b"and back");
    assert_eq!(from, peer_addr);
    relayed.close().await.expect("closed");
    client.close().await.expect("closed");
    Ok(())
}

/// Asserts that the relay at `relay` refuses to allocate for `username` and `password`;
/// `what` says which credential that is.
async fn assert_refused(relay: SocketAddr, username: &str, password: &str, what: &str) {
    assert!(
        allocate_and_relay(relay, username, password).await.is_err(),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_credentials_allocate_and_relay_and_expired_or_tampered_ones_are_refused() {
    let now = Timestamp(1_700_000_000_000);
    let clock = Arc::new(TestClock(AtomicU64::new(now.as_millis())));
    let secrets = service(b"relay-secret", None);
    let relay = start_relay(secrets.clone(), Arc::clone(&clock)).await;
    let acme = TenantId::parse("acme").expect("valid");
    let alice = UserId::parse("alice").expect("valid");
    let fresh = secrets.ice_servers(&acme, &alice, now, Some(60));

    allocate_and_relay(relay.local_addr(), &fresh.username, &fresh.password)
        .await
        .expect("a fresh credential allocates");

    let tampered = format!(
        "{}{}",
        if fresh.password.starts_with('x') {
            "y"
        } else {
            "x"
        },
        &fresh.password[1..]
    );
    assert_refused(
        relay.local_addr(),
        &fresh.username,
        &tampered,
        "a tampered password is refused",
    )
    .await;
    let longer = fresh.username.replacen(
        &(now.as_secs() + 60).to_string(),
        &(now.as_secs() + 6000).to_string(),
        1,
    );
    assert_refused(
        relay.local_addr(),
        &longer,
        &fresh.password,
        "a username with a later expiry is refused",
    )
    .await;

    clock.0.store(now.as_millis() + 60_000, Ordering::Relaxed);
    assert_refused(
        relay.local_addr(),
        &fresh.username,
        &fresh.password,
        "an expired credential is refused",
    )
    .await;
    relay.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_the_previous_secrets_credentials_work_until_its_time() {
    let now = Timestamp(1_700_000_000_000);
    let clock = Arc::new(TestClock(AtomicU64::new(now.as_millis())));
    let acme = TenantId::parse("acme").expect("valid");
    let alice = UserId::parse("alice").expect("valid");
    let issued_before = service(b"old-secret", None).ice_servers(&acme, &alice, now, Some(3600));
    let retired_at = Timestamp(now.as_millis() + 600_000);
    let rotated = service(b"new-secret", Some((b"old-secret", retired_at)));
    let relay = start_relay(rotated.clone(), Arc::clone(&clock)).await;

    allocate_and_relay(
        relay.local_addr(),
        &issued_before.username,
        &issued_before.password,
    )
    .await
    .expect("the previous secret is still accepted");
    let issued_after = rotated.ice_servers(&acme, &alice, now, Some(3600));
    allocate_and_relay(
        relay.local_addr(),
        &issued_after.username,
        &issued_after.password,
    )
    .await
    .expect("the current secret signs");

    clock.0.store(retired_at.as_millis(), Ordering::Relaxed);
    assert_refused(
        relay.local_addr(),
        &issued_before.username,
        &issued_before.password,
        "the previous secret's time has passed",
    )
    .await;
    allocate_and_relay(
        relay.local_addr(),
        &issued_after.username,
        &issued_after.password,
    )
    .await
    .expect("the current secret's credentials still work");
    relay.close().await;
}

/// Tenant `acme:alice` with user `x`, and tenant `acme` with user `alice:x`: joined with `:`
/// they would read the same.
fn identities_a_colon_could_confuse() -> ((TenantId, UserId), (TenantId, UserId)) {
    (
        (
            TenantId::parse("acme:alice").expect("valid"),
            UserId::parse("x").expect("valid"),
        ),
        (
            TenantId::parse("acme").expect("valid"),
            UserId::parse("alice:x").expect("valid"),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_a_colon_could_confuse_get_their_own_credentials_and_cannot_use_each_others() {
    let now = Timestamp(1_700_000_000_000);
    let clock = Arc::new(TestClock(AtomicU64::new(now.as_millis())));
    let secrets = service(b"relay-secret", None);
    let relay = start_relay(secrets.clone(), Arc::clone(&clock)).await;
    let ((tenant_a, user_a), (tenant_b, user_b)) = identities_a_colon_could_confuse();
    let a = secrets.ice_servers(&tenant_a, &user_a, now, Some(600));
    let b = secrets.ice_servers(&tenant_b, &user_b, now, Some(600));
    assert_ne!(a.username, b.username, "the usernames tell them apart");
    assert_ne!(a.password, b.password, "so do the passwords");

    allocate_and_relay(relay.local_addr(), &a.username, &a.password)
        .await
        .expect("the first identity allocates with its own credential");
    allocate_and_relay(relay.local_addr(), &b.username, &b.password)
        .await
        .expect("the second identity allocates with its own credential");
    assert_refused(
        relay.local_addr(),
        &b.username,
        &a.password,
        "the first identity's password does not sign in as the second",
    )
    .await;
    assert_refused(
        relay.local_addr(),
        &a.username,
        &b.password,
        "the second identity's password does not sign in as the first",
    )
    .await;
    relay.close().await;
}

/// What the relay answered a request with: the ERROR-CODE (`None` for a success) and the
/// NONCE and REALM it carried.
#[derive(Debug)]
struct Answer {
    error_code: Option<u16>,
    nonce: Option<String>,
    realm: Option<String>,
}

/// An Allocate request for a UDP relay; with `credential` (username, password, realm, nonce)
/// it carries the long-term credential's USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
fn allocate_request(credential: Option<(&str, &str, &str, &str)>) -> Message {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(RequestedTransport {
            protocol: PROTO_UDP,
        }),
    ];
    if let Some((username, password, realm, nonce)) = credential {
        setters.push(Box::new(TextAttribute::new(
            ATTR_USERNAME,
            username.to_owned(),
        )));
        setters.push(Box::new(TextAttribute::new(ATTR_REALM, realm.to_owned())));
        setters.push(Box::new(TextAttribute::new(ATTR_NONCE, nonce.to_owned())));
        setters.push(Box::new(MessageIntegrity::new_long_term_integrity(
            username.to_owned(),
            realm.to_owned(),
            password.to_owned(),
        )));
    }
    setters.push(Box::new(FINGERPRINT));
    let mut request = Message::new();
    request.build(&setters).expect("a request");
    request
}

/// Sends `request` from `socket` to the relay and reads the answer to it (waiting at most the
/// deadline).
async fn ask(socket: &UdpSocket, relay: SocketAddr, request: &Message) -> Answer {
    socket
        .send_to(&request.raw, relay)
        .await
        .expect("the request is sent");
    let mut buffer = vec![0u8; 1500];
    loop {
        let (n, _) = tokio::time::timeout(DEADLINE, socket.recv_from(&mut buffer))
            .await
            .expect("the relay answers within the deadline")
            .expect("received");
        let mut answer = Message::new();
        answer.raw = buffer[..n].to_vec();
        answer.decode().expect("a STUN message");
        if answer.transaction_id != request.transaction_id {
            continue;
        }
        let error_code = (answer.typ.class == CLASS_ERROR_RESPONSE).then(|| {
            let mut error_code = ErrorCodeAttribute::default();
            error_code.get_from(&answer).expect("an ERROR-CODE");
            error_code.code.0
        });
        let text = |attribute| {
            TextAttribute::get_from_as(&answer, attribute)
                .ok()
                .map(|text| text.text)
        };
        return Answer {
            error_code,
            nonce: text(ATTR_NONCE),
            realm: text(ATTR_REALM),
        };
    }
}

/// What the refusal tests start from: a relay on a test clock, alice's credentials from its
/// secrets (a fresh one lasting the given seconds and one that expired a minute ago), a
/// username whose key id no secret has, and a socket that has asked the relay once without
/// credentials, with the relay's answer.
struct RefusalSetup {
    clock: Arc<TestClock>,
    relay: EmbeddedRelay,
    fresh: IceServers,
    expired: IceServers,
    unknown_key_username: String,
    socket: UdpSocket,
    address: SocketAddr,
    challenge: Answer,
}

async fn refusal_setup(fresh_ttl_secs: u64) -> RefusalSetup {
    let now = Timestamp(1_700_000_000_000);
    let clock = Arc::new(TestClock(AtomicU64::new(now.as_millis())));
    let secrets = service(b"relay-secret", None);
    let relay = start_relay(secrets.clone(), Arc::clone(&clock)).await;
    let acme = TenantId::parse("acme").expect("valid");
    let alice = UserId::parse("alice").expect("valid");
    let fresh = secrets.ice_servers(&acme, &alice, now, Some(fresh_ttl_secs));
    let expired = secrets.ice_servers(
        &acme,
        &alice,
        Timestamp(now.as_millis() - 120_000),
        Some(60),
    );
    let unknown_key_username = format!(
        "{}:k00000000",
        fresh.username.rsplit_once(':').expect("a key id").0
    );
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("a socket");
    let address = relay.local_addr();
    let challenge = ask(&socket, address, &allocate_request(None)).await;
    RefusalSetup {
        clock,
        relay,
        fresh,
        expired,
        unknown_key_username,
        socket,
        address,
        challenge,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_answered_401_with_a_fresh_nonce() {
    let setup = refusal_setup(60).await;
    let challenge = setup.challenge;
    let unknown_key_password = password_for(b"relay-secret", &setup.unknown_key_username);

    // The challenge: 401, a nonce and the realm.
    assert_eq!(challenge.error_code, Some(401), "{challenge:?}");
    let realm = challenge.realm.expect("the realm");
    assert_eq!(realm, "switchboard");
    let mut nonce = challenge.nonce.expect("a nonce");

    let wrong_password = tampered(&setup.fresh.password);
    let refused: [(&str, &str, &str); 4] = [
        ("a wrong password", &setup.fresh.username, &wrong_password),
        (
            "an expired credential",
            &setup.expired.username,
            &setup.expired.password,
        ),
        (
            "a key id no secret has",
            &setup.unknown_key_username,
            &unknown_key_password,
        ),
        (
            "a username of no known shape",
            "alice",
            &setup.fresh.password,
        ),
    ];
    for (what, username, password) in refused {
        let answer = ask(
            &setup.socket,
            setup.address,
            &allocate_request(Some((username, password, &realm, &nonce))),
        )
        .await;
        assert_eq!(answer.error_code, Some(401), "{what}: {answer:?}");
        assert_eq!(answer.realm.as_deref(), Some(realm.as_str()), "{what}");
        let fresh_nonce = answer.nonce.expect("a fresh nonce");
        assert_ne!(fresh_nonce, nonce, "{what}: the nonce is fresh");
        nonce = fresh_nonce;
    }

    let failures = setup.relay.auth_failures();
    for reason in RefusalReason::ALL {
        assert_eq!(failures.count(reason), 1, "one refusal {}", reason.label());
    }

    // The fresh nonce is one the relay honours: the right credential allocates with it.
    let allocated = ask(
        &setup.socket,
        setup.address,
        &allocate_request(Some((
            &setup.fresh.username,
            &setup.fresh.password,
            &realm,
            &nonce,
        ))),
    )
    .await;
    assert_eq!(allocated.error_code, None, "{allocated:?}");
    setup.relay.close().await;
}

/// `password` with its first character changed.
fn tampered(password: &str) -> String {
    let first = if password.starts_with('x') { 'y' } else { 'x' };
    format!("{first}{}", &password[1..])
}

/// Everything a test's tracing subscriber writes, `log` records of dependencies included.
/// The log of this test binary: one global subscriber, installed once. (A subscriber set as the
/// default of one test's thread only missed lines now and then while the other tests ran on
/// other threads: tracing caches whether a call site is enabled across threads.) Tests pick
/// their own lines out of it by their socket's address.
fn captured_log() -> &'static CapturedLog {
    static LOG: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = CapturedLog::default();
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .init();
        log
    })
}

/// Many refused requests: each is answered 401 and counted under its reason, and the log gets
/// one line for the lot (the sampler's first), then one more an interval later that counts
/// the ones it left out.
#[tokio::test]
async fn many_refused_requests_are_counted_by_reason_and_logged_sampled() {
    let log = captured_log();
    let setup = refusal_setup(600).await;
    let challenge = setup.challenge;
    let wrong_password = tampered(&setup.fresh.password);
    let source = format!("source={}", setup.socket.local_addr().expect("bound"));
    let our_lines = || -> Vec<String> {
        log.lines()
            .into_iter()
            .filter(|line| line.contains(&source))
            .collect()
    };
    let realm = challenge.realm.expect("the realm");
    let nonce = challenge.nonce.expect("a nonce");

    const N_EACH: u64 = 50;
    let refused: [(RefusalReason, &str, &str); 4] = [
        (
            RefusalReason::BadPassword,
            &setup.fresh.username,
            &wrong_password,
        ),
        (
            RefusalReason::Expired,
            &setup.expired.username,
            &setup.expired.password,
        ),
        (
            RefusalReason::UnknownKey,
            &setup.unknown_key_username,
            &setup.fresh.password,
        ),
        (
            RefusalReason::Malformed,
            "acme:alice",
            &setup.fresh.password,
        ),
    ];
    for (reason, username, password) in refused {
        for _ in 0..N_EACH {
            let answer = ask(
                &setup.socket,
                setup.address,
                &allocate_request(Some((username, password, &realm, &nonce))),
            )
            .await;
            assert_eq!(answer.error_code, Some(401), "{}", reason.label());
        }
    }

    let failures = setup.relay.auth_failures();
    let mut registry = Registry::default();
    failures.register_metrics(&mut registry);
    let mut metrics = String::new();
    encode(&mut metrics, &registry).expect("encoded");
    for reason in RefusalReason::ALL {
        assert_eq!(failures.count(reason), N_EACH, "{}", reason.label());
        let line = format!(
            "switchboard_turn_relay_auth_failures_total{{reason=\"{}\"}} {N_EACH}",
            reason.label()
        );
        assert!(
            metrics.lines().any(|exported| exported == line),
            "{line} in\n{metrics}"
        );
    }
    // The TURN library logs nothing about refused credentials any more (it answered each with
    // a 400 and an ERROR line before). No test in this binary makes it log that line.
    assert!(
        log.lines()
            .iter()
            .all(|line| !line.contains("error when handling datagram")),
        "{:#?}",
        log.lines()
    );
    let lines = our_lines();
    assert_eq!(
        lines.len(),
        1,
        "one line for {} refusals: {lines:#?}",
        4 * N_EACH
    );
    assert!(
        lines[0].contains("WARN") && lines[0].contains("refused a credential"),
        "{lines:#?}"
    );
    assert!(
        lines[0].contains("n_refusals_not_logged_since_previous_line=0"),
        "{lines:#?}"
    );

    // An interval later the next refusal is logged, with the count of those left out.
    setup.clock.0.fetch_add(
        u64::try_from(LOG_INTERVAL.as_millis()).expect("fits"),
        Ordering::Relaxed,
    );
    let answer = ask(
        &setup.socket,
        setup.address,
        &allocate_request(Some((
            &setup.fresh.username,
            &wrong_password,
            &realm,
            &nonce,
        ))),
    )
    .await;
    assert_eq!(answer.error_code, Some(401));
    let lines = our_lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[1].contains(&format!(
            "n_refusals_not_logged_since_previous_line={}",
            4 * N_EACH - 1
        )),
        "{lines:#?}"
    );
    for line in &lines {
        for secret in [
            &setup.fresh.password,
            &wrong_password,
            &setup.expired.password,
        ] {
            assert!(
                !line.contains(secret.as_str()),
                "a password in the log: {line}"
            );
        }
    }
    setup.relay.close().await;
}
