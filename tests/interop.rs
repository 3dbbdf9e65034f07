//! Interoperability with real servers (run by `./scripts/test`, which installs them; built only
//! with the `interop` feature): credentials minted by Switchboard allocate and relay on a real
//! coturn server, and coturn refuses expired and tampered ones; two identities that differ only
//! in which side of a `:` a part of the name sits on (tenant `acme:alice` with user `x`, tenant
//! `acme` with user `alice:x`) get different credentials, which coturn accepts, each only as
//! itself. `turnutils_uclient` also relays through Switchboard's embedded relay, and fails there
//! with a wrong password or an expired credential, each counted at `GET /metrics`.
//!
//! coturn runs with `use-auth-secret` and the same shared secret as Switchboard;
//! `turnutils_uclient` allocates a relay with the credentials and exchanges packets with a
//! `turnutils_peer` echo server through it. Media: tuspy uploads across an interruption
//! (`interop/tus.rs`), and ffprobe reads a video through a signed link (`interop/media_player.rs`). Switchboard's health checker probes the configured
//! servers with STUN binding requests and leaves an unreachable one out of the list clients get.
//! Every process is started on 127.0.0.1 and killed by its PID when the test ends.

#![allow(clippy::disallowed_methods)] // Tests may read the wall clock.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::config::{Config, EmbeddedRelayConfig, TurnRelay, TurnSharedSecret};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::time::Timestamp;
use switchboard_turn::credentials::{SecretRing, mint};

#[path = "interop/media_player.rs"]
mod media_player;
#[path = "interop/tus.rs"]
mod tus;

const SECRET: &str = "interop-shared-secret-0123456789";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    Timestamp(u64::try_from(since_epoch.as_millis()).expect("milliseconds fit"))
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .expect("a free UDP port")
}

fn spawn(program: &str, args: &[String]) -> Running {
    Running(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} could not start ({error}); ./scripts/test installs coturn")
            }),
    )
}

/// Waits (bounded) until something listens on UDP `port`.
fn wait_for_udp_listener(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new("ss")
            .args(["-Hlun", &format!("sport = :{port}")])
            .output()
            .expect("ss runs");
        if !output.stdout.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "nothing listens on UDP {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `turnutils_uclient` with the credentials through the relay to the echo peer; returns
/// whether it succeeded, and its output.
fn relay_works(turn_port: u16, peer_port: u16, username: &str, password: &str) -> (bool, String) {
    let output = Command::new("timeout")
        .args([
            "30",
            "turnutils_uclient",
            "-p",
            &turn_port.to_string(),
            "-u",
            username,
            "-w",
            password,
            "-e",
            "127.0.0.1",
            "-r",
            &peer_port.to_string(),
            "-n",
            "10",
            "-m",
            "1",
            "-l",
            "200",
            "127.0.0.1",
        ])
        .output()
        .expect("turnutils_uclient runs");
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), log)
}

/// Starts coturn with the shared secret on UDP `turn_port`, relaying from `relay_ports`, and
/// waits until it listens.
fn start_coturn(directory: &std::path::Path, turn_port: u16, relay_ports: (u16, u16)) -> Running {
    let coturn = spawn(
        "turnserver",
        &[
            "-n".to_owned(),
            "--listening-ip=127.0.0.1".to_owned(),
            "--relay-ip=127.0.0.1".to_owned(),
            format!("--listening-port={turn_port}"),
            format!("--min-port={}", relay_ports.0),
            format!("--max-port={}", relay_ports.1),
            "--use-auth-secret".to_owned(),
            format!("--static-auth-secret={SECRET}"),
            "--realm=chat.test".to_owned(),
            "--fingerprint".to_owned(),
            "--no-tls".to_owned(),
            "--no-dtls".to_owned(),
            "--no-cli".to_owned(),
            "--allow-loopback-peers".to_owned(),
            format!("--db={}", directory.join("turndb").display()),
            format!("--pidfile={}", directory.join("turn.pid").display()),
            "--log-file=stdout".to_owned(),
        ],
    );
    wait_for_udp_listener(turn_port);
    coturn
}

/// Starts a `turnutils_peer` echo server on UDP `port` and waits until it listens.
fn start_echo_peer(port: u16) -> Running {
    let peer = spawn(
        "turnutils_peer",
        &[
            "-L".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ],
    );
    wait_for_udp_listener(port);
    peer
}

/// Switchboard's configuration beside coturn: an ephemeral port, its data under `directory`,
/// the interop token secret, coturn's shared secret, and no embedded relay (coturn is the relay
/// under test; the test of the embedded relay here sets its own).
fn switchboard_config(directory: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config.server.data_dir = directory.join("switchboard");
    config.auth.hs256_secret = Some("interop-development-secret-0123456789".to_owned());
    config.turn.secret = TurnSharedSecret::Configured(SECRET.to_owned());
    config.turn.relay = TurnRelay::Off;
    config
}

/// A token for `user` of `tenant`, signed with the interop secret, valid for 10 minutes.
fn token_for(tenant: &str, user: &str) -> String {
    switchboard_transport::auth::mint_hs256(
        "interop-development-secret-0123456789",
        &TenantId::parse(tenant).expect("valid"),
        &UserId::parse(user).expect("valid"),
        now(),
        600,
    )
    .expect("a token")
}

/// `GET /v1/turn/credentials` as `user` of `tenant`, answered with JSON.
async fn credentials_of(server: &switchboard::Server, tenant: &str, user: &str) -> Value {
    let token = token_for(tenant, user);
    reqwest::Client::new()
        .get(format!(
            "http://{}/v1/turn/credentials",
            server.local_addr()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("Switchboard issues credentials")
        .json()
        .await
        .expect("the credentials are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_switchboard_allocate_on_coturn_and_bad_ones_are_refused() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (turn_port, peer_port) = (free_udp_port(), free_udp_port());
    let _coturn = start_coturn(directory.path(), turn_port, (49160, 49200));
    let _peer = start_echo_peer(peer_port);

    // Switchboard, sharing the secret, hands out the credentials.
    let mut config = switchboard_config(directory.path());
    let live_uri = format!("turn:127.0.0.1:{turn_port}?transport=udp");
    // Nothing listens here: the health checker must leave it out.
    let dead_uri = format!("turn:127.0.0.1:{}?transport=udp", free_udp_port());
    config.turn.uris = vec![dead_uri, live_uri.clone()];
    config.turn.stun_uris = vec![format!("stun:127.0.0.1:{turn_port}")];
    config.turn.health_check_interval_ms = 200;
    config.turn.health_check_timeout_ms = 500;
    let server = switchboard::start(config)
        .await
        .expect("switchboard starts");
    // Once the health checker has probed both servers (polled, with a deadline), clients get
    // only the live one.
    let deadline = Instant::now() + Duration::from_secs(15);
    let body: Value = loop {
        let body = credentials_of(&server, "acme", "alice").await;
        if body["uris"] == serde_json::json!([live_uri]) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the dead server was never left out: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        body["iceServers"][1]["urls"],
        serde_json::json!([format!("stun:127.0.0.1:{turn_port}")]),
        "the STUN service of the same coturn is reachable too"
    );
    let username = body["username"].as_str().expect("username").to_owned();
    let password = body["password"].as_str().expect("password").to_owned();
    let (relayed, log) = tokio::task::spawn_blocking(move || {
        relay_works(turn_port, peer_port, &username, &password)
    })
    .await
    .expect("the client ran");
    assert!(
        relayed,
        "coturn accepts Switchboard's credentials and relays:\n{log}"
    );

    // An expired credential (minted with the same secret an hour ago, for a minute) and a
    // tampered one are refused.
    let expired = mint(
        SECRET.as_bytes(),
        "acme:alice",
        Timestamp(now().as_millis() - 3_600_000),
        60,
    );
    let tampered_password = format!("{}x", &body["password"].as_str().expect("password"));
    let tampered_username = body["username"].as_str().expect("username").to_owned();
    let ((expired_ok, _), (tampered_ok, _)) = tokio::task::spawn_blocking(move || {
        (
            relay_works(turn_port, peer_port, &expired.username, &expired.password),
            relay_works(turn_port, peer_port, &tampered_username, &tampered_password),
        )
    })
    .await
    .expect("the clients ran");
    assert!(!expired_ok, "coturn refuses an expired credential");
    assert!(!tampered_ok, "coturn refuses a tampered password");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_a_colon_could_confuse_get_distinct_credentials_that_coturn_accepts() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (turn_port, peer_port) = (free_udp_port(), free_udp_port());
    // A relay range of its own, so that it can run beside the test above.
    let _coturn = start_coturn(directory.path(), turn_port, (49201, 49240));
    let _peer = start_echo_peer(peer_port);
    let mut config = switchboard_config(directory.path());
    config.turn.uris = vec![format!("turn:127.0.0.1:{turn_port}?transport=udp")];
    config.turn.health_check_interval_ms = 0;
    let server = switchboard::start(config)
        .await
        .expect("switchboard starts");

    let first = credentials_of(&server, "acme:alice", "x").await;
    let second = credentials_of(&server, "acme", "alice:x").await;
    let field = |body: &Value, name: &str| body[name].as_str().expect(name).to_owned();
    let (first_username, first_password) = (field(&first, "username"), field(&first, "password"));
    let (second_username, second_password) =
        (field(&second, "username"), field(&second, "password"));
    assert_ne!(
        first_username, second_username,
        "the usernames tell them apart"
    );
    assert_ne!(first_password, second_password, "so do the passwords");

    let outcomes = tokio::task::spawn_blocking(move || {
        [
            relay_works(turn_port, peer_port, &first_username, &first_password),
            relay_works(turn_port, peer_port, &second_username, &second_password),
            relay_works(turn_port, peer_port, &second_username, &first_password),
            relay_works(turn_port, peer_port, &first_username, &second_password),
        ]
    })
    .await
    .expect("the clients ran");
    let [first_own, second_own, first_as_second, second_as_first] = outcomes;
    assert!(
        first_own.0,
        "coturn accepts tenant acme:alice's user x:\n{}",
        first_own.1
    );
    assert!(
        second_own.0,
        "coturn accepts tenant acme's user alice:x:\n{}",
        second_own.1
    );
    assert!(
        !first_as_second.0,
        "the first identity's password does not sign in as the second"
    );
    assert!(
        !second_as_first.0,
        "the second identity's password does not sign in as the first"
    );
    server.shutdown().await;
}

/// The `reason` counter of `switchboard_turn_relay_auth_failures_total` at `GET /metrics`.
async fn relay_refusals(server: &switchboard::Server, reason: &str) -> u64 {
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.local_addr()))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let prefix = format!("switchboard_turn_relay_auth_failures_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

/// What the relay answered, as seen between a client and the relay: the ERROR-CODE and NONCE of
/// every error answer, in order.
type ErrorAnswers = Arc<Mutex<Vec<(u16, Option<String>)>>>;

/// A UDP proxy on 127.0.0.1 between one client and `relay` that records the error answers the
/// relay sends back ([`ErrorAnswers`]); stopped when dropped.
struct RecordingProxy {
    port: u16,
    answers: ErrorAnswers,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn recording_proxy(relay: std::net::SocketAddr) -> RecordingProxy {
    let client_side = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("a socket");
    let relay_side = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("a socket");
    relay_side.connect(relay).await.expect("connected");
    let port = client_side.local_addr().expect("bound").port();
    let answers = ErrorAnswers::default();
    let recorded = Arc::clone(&answers);
    let task = tokio::spawn(async move {
        let mut client = None;
        let (mut from_client, mut from_relay) = (vec![0u8; 2048], vec![0u8; 2048]);
        loop {
            tokio::select! {
                received = client_side.recv_from(&mut from_client) => {
                    let Ok((n, address)) = received else { return };
                    client = Some(address);
                    let _ = relay_side.send(&from_client[..n]).await;
                }
                received = relay_side.recv(&mut from_relay) => {
                    let Ok(n) = received else { return };
                    let mut answer = stun::message::Message::new();
                    answer.raw = from_relay[..n].to_vec();
                    if answer.decode().is_ok()
                        && answer.typ.class == stun::message::CLASS_ERROR_RESPONSE
                    {
                        let mut code = stun::error_code::ErrorCodeAttribute::default();
                        let code = stun::message::Getter::get_from(&mut code, &answer)
                            .map(|()| code.code.0)
                            .unwrap_or(0);
                        let nonce = stun::textattrs::TextAttribute::get_from_as(
                            &answer,
                            stun::attributes::ATTR_NONCE,
                        )
                        .ok()
                        .map(|nonce| nonce.text);
                        recorded
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((code, nonce));
                    }
                    if let Some(client) = client {
                        let _ = client_side.send_to(&from_relay[..n], client).await;
                    }
                }
            }
        }
    });
    RecordingProxy {
        port,
        answers,
        task,
    }
}

/// Runs `turnutils_uclient` with a credential the relay must refuse, through a
/// [`RecordingProxy`]: it must fail, having been answered 401 (never 400), each time with a
/// nonce it had not been given before.
async fn refused_with_401_and_fresh_nonces(
    relay: std::net::SocketAddr,
    peer_port: u16,
    username: String,
    password: String,
    what: &str,
) {
    let proxy = recording_proxy(relay).await;
    let proxy_port = proxy.port;
    let (relayed, log) = tokio::task::spawn_blocking(move || {
        relay_works(proxy_port, peer_port, &username, &password)
    })
    .await
    .expect("the client ran");
    assert!(!relayed, "{what}: turnutils_uclient fails:\n{log}");
    let answers = proxy
        .answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    // The first 401 is the challenge to the request without credentials; the others refuse
    // the credential.
    assert!(
        answers.len() >= 2,
        "{what}: refused at least once: {answers:?}"
    );
    assert!(
        answers.iter().all(|(code, _)| *code == 401),
        "{what}: every refusal is 401: {answers:?}"
    );
    let mut nonces: Vec<&String> = answers
        .iter()
        .map(|(_, nonce)| nonce.as_ref().expect("every 401 carries a nonce"))
        .collect();
    let n_answers = nonces.len();
    nonces.sort();
    nonces.dedup();
    assert_eq!(
        nonces.len(),
        n_answers,
        "{what}: each nonce is fresh: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turnutils_uclient_relays_through_the_embedded_relay_and_wrong_or_expired_credentials_fail()
{
    let directory = tempfile::tempdir().expect("a temporary directory");
    let peer_port = free_udp_port();
    let _peer = start_echo_peer(peer_port);
    let mut config = switchboard_config(directory.path());
    config.turn.health_check_interval_ms = 0;
    config.turn.relay = TurnRelay::Embedded(EmbeddedRelayConfig {
        listen: "127.0.0.1:0".to_owned(),
        // A range of its own, apart from the coturn tests'.
        min_port: 49241,
        max_port: 49280,
        ..EmbeddedRelayConfig::default()
    });
    let server = switchboard::start(config)
        .await
        .expect("switchboard starts");
    let relay_port: u16 = server
        .relay_uri()
        .expect("the relay runs")
        .strip_prefix("turn:127.0.0.1:")
        .and_then(|rest| rest.strip_suffix("?transport=udp"))
        .and_then(|port| port.parse().ok())
        .expect("turn:127.0.0.1:<port>?transport=udp");

    let body = credentials_of(&server, "acme", "alice").await;
    let username = body["username"].as_str().expect("username").to_owned();
    let password = body["password"].as_str().expect("password").to_owned();
    let wrong_password = format!("{password}x");
    let expired = SecretRing::new(SECRET.as_bytes().to_vec()).mint(
        &TenantId::parse("acme").expect("valid"),
        &UserId::parse("alice").expect("valid"),
        Timestamp(now().as_millis() - 3_600_000),
        60,
    );
    let (relayed, log) = tokio::task::spawn_blocking(move || {
        relay_works(relay_port, peer_port, &username, &password)
    })
    .await
    .expect("the client ran");
    assert!(
        relayed,
        "turnutils_uclient relays through the embedded relay:\n{log}"
    );
    let relay: std::net::SocketAddr = format!("127.0.0.1:{relay_port}")
        .parse()
        .expect("an address");
    let username = body["username"].as_str().expect("username").to_owned();
    refused_with_401_and_fresh_nonces(
        relay,
        peer_port,
        username,
        wrong_password,
        "a wrong password",
    )
    .await;
    refused_with_401_and_fresh_nonces(
        relay,
        peer_port,
        expired.username,
        expired.password,
        "an expired credential",
    )
    .await;
    // Each was counted under its reason.
    assert!(relay_refusals(&server, "bad_password").await >= 1);
    assert!(relay_refusals(&server, "expired").await >= 1);
    assert_eq!(relay_refusals(&server, "unknown_key").await, 0);
    assert_eq!(relay_refusals(&server, "malformed").await, 0);
    server.shutdown().await;
}
