//! The embedded TURN relay against a real TURN client (webrtc-rs `turn`'s client, over UDP on
//! 127.0.0.1): credentials from the same service allocate and relay both ways; expired,
//! tampered and retired-past-their-time ones are refused; rotation keeps credentials signed
//! by the previous secret working until its time; two identities that differ only in which side
//! of a `:` a part of the name sits on get different credentials, and neither signs in as the
//! other. The clock is a test clock, so expiry is checked without waiting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{Clock, IceServerProvider};
use switchboard_engine::time::Timestamp;
use switchboard_turn::credentials::{RetiredSecret, SecretRing};
use switchboard_turn::relay::{EmbeddedRelay, RelaySettings};
use switchboard_turn::service::{TurnRealm, TurnService};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
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
    assert!(
        allocate_and_relay(relay.local_addr(), &fresh.username, &tampered)
            .await
            .is_err(),
        "a tampered password is refused"
    );
    let longer = fresh.username.replacen(
        &(now.as_secs() + 60).to_string(),
        &(now.as_secs() + 6000).to_string(),
        1,
    );
    assert!(
        allocate_and_relay(relay.local_addr(), &longer, &fresh.password)
            .await
            .is_err(),
        "a username with a later expiry is refused"
    );

    clock.0.store(now.as_millis() + 60_000, Ordering::Relaxed);
    assert!(
        allocate_and_relay(relay.local_addr(), &fresh.username, &fresh.password)
            .await
            .is_err(),
        "an expired credential is refused"
    );
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
    assert!(
        allocate_and_relay(
            relay.local_addr(),
            &issued_before.username,
            &issued_before.password
        )
        .await
        .is_err(),
        "the previous secret's time has passed"
    );
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
    assert!(
        allocate_and_relay(relay.local_addr(), &b.username, &a.password)
            .await
            .is_err(),
        "the first identity's password does not sign in as the second"
    );
    assert!(
        allocate_and_relay(relay.local_addr(), &a.username, &b.password)
            .await
            .is_err(),
        "the second identity's password does not sign in as the first"
    );
    relay.close().await;
}
