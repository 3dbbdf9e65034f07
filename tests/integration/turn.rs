//! TURN credentials over HTTP and WebSocket: the coturn REST API formula with the configured
//! secret, both JSON shapes, lifetimes clamped to the maximum; the embedded relay first in the
//! lists, and a real TURN client (webrtc-rs) allocating on it with the credentials handed out,
//! its refusals counted at `GET /metrics`.
//! (That coturn itself accepts them is `tests/interop.rs`; rotation and expiry on the relay
//! are `turn/tests/relay.rs`.)

use serde_json::{Value, json};
use switchboard::config::TurnSharedSecret;
use switchboard_turn::credentials::password_for;

use crate::support::{TestServer, json_answer, next_of, now, token};

const SECRET: &str = "a-shared-secret-for-the-turn-tests";

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.turn.secret = TurnSharedSecret::Configured(SECRET.to_owned());
        config.turn.uris = vec!["turn:127.0.0.1:3478?transport=udp".to_owned()];
        config.turn.stun_uris = vec!["stun:127.0.0.1:3478".to_owned()];
        config.turn.max_ttl_secs = 7200;
    })
    .await
}

/// `GET path` as `user` of tenant acme, answered with JSON.
async fn credentials(server: &TestServer, path: &str, user: &str) -> Value {
    json_answer(
        server
            .http
            .get(server.url(path))
            .bearer_auth(token("acme", user)),
    )
    .await
}

fn expiry_of(username: &str) -> u64 {
    username
        .split(':')
        .next()
        .and_then(|expiry| expiry.parse().ok())
        .expect("<expiry>:<tenant>:<user>:<key id>")
}

#[tokio::test]
async fn credentials_over_http_follow_the_turn_rest_api_in_both_shapes() {
    let server = server().await;
    let before = now().as_secs();
    let (status, _, body) = server
        .get_as("alice", "/v1/turn/credentials?ttl_secs=600")
        .await;
    assert_eq!(status, 200);
    let username = body["username"].as_str().expect("username");
    let key_id = switchboard_turn::credentials::key_id(SECRET.as_bytes());
    assert!(
        username.ends_with(&format!(":acme:alice:{key_id}")),
        "{username}"
    );
    let expiry = expiry_of(username);
    assert!(
        (before + 600..=now().as_secs() + 600).contains(&expiry),
        "expiry {expiry} is about 600 s from now"
    );
    assert_eq!(body["password"], password_for(SECRET.as_bytes(), username));
    assert_eq!(body["ttl"], 600);
    // The embedded relay comes first.
    let relay = server.server().relay_uri().expect("the relay runs");
    assert_eq!(
        body["uris"],
        json!([relay, "turn:127.0.0.1:3478?transport=udp"])
    );
    assert_eq!(
        body["iceServers"],
        json!([
            {"urls": [relay, "turn:127.0.0.1:3478?transport=udp"], "username": username, "credential": body["password"]},
            {"urls": ["stun:127.0.0.1:3478"]}
        ])
    );

    let clamped = credentials(&server, "/v1/turn/credentials?ttl_secs=999999", "alice").await;
    assert_eq!(clamped["ttl"], 7200);
    let default = credentials(&server, "/v1/turn/credentials", "bob").await;
    assert_eq!(default["ttl"], 3600);

    for (path, auth, status) in [
        ("/v1/turn/credentials?ttl_secs=soon", true, 400),
        ("/v1/turn/credentials?lifetime=5", true, 400),
        ("/v1/turn/credentials", false, 401),
    ] {
        let mut request = server.http.get(server.url(path));
        if auth {
            request = request.bearer_auth(token("acme", "alice"));
        }
        assert_eq!(
            request.send().await.expect("sent").status(),
            status,
            "{path}"
        );
    }
}

#[tokio::test]
async fn credentials_over_websocket() {
    let server = server().await;
    let mut alice = server.connect("acme", "alice").await;
    alice
        .send_json(json!({"type": "turn_credentials", "id": 9, "ttl_secs": 120}))
        .await;
    let reply = next_of(&mut alice, "turn_credentials").await;
    assert_eq!(reply["id"], 9);
    assert_eq!(reply["ttl"], 120);
    let username = reply["username"].as_str().expect("username");
    assert_eq!(reply["password"], password_for(SECRET.as_bytes(), username));
    assert_eq!(reply["iceServers"][0]["credential"], reply["password"]);
}

/// A real TURN client allocates a relayed address on the engine's embedded relay with the
/// credentials the engine hands out, and is refused with a tampered password, which
/// `GET /metrics` counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_relay_allocates_with_the_credentials_handed_out() {
    let server = server().await;
    let relay = server
        .server()
        .relay_uri()
        .expect("the relay runs")
        .to_owned();
    let address = relay
        .strip_prefix("turn:")
        .and_then(|rest| rest.strip_suffix("?transport=udp"))
        .expect("turn:<ip>:<port>?transport=udp")
        .to_owned();
    let body = credentials(&server, "/v1/turn/credentials", "alice").await;
    let username = body["username"].as_str().expect("username");
    let password = body["password"].as_str().expect("password");
    let allocate = |password: String| {
        let (address, username) = (address.clone(), username.to_owned());
        async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .expect("a client socket");
            let client = turn::client::Client::new(turn::client::ClientConfig {
                stun_serv_addr: address.clone(),
                turn_serv_addr: address,
                username,
                password,
                realm: String::new(),
                software: String::new(),
                rto_in_ms: 0,
                conn: std::sync::Arc::new(socket),
                vnet: None,
            })
            .await
            .expect("a client");
            client.listen().await.expect("the client listens");
            let allocated = tokio::time::timeout(crate::support::DEADLINE, client.allocate())
                .await
                .expect("the relay answers within the deadline")
                .map(|relayed| {
                    use webrtc_util::Conn as _;
                    relayed.local_addr().expect("a relayed address")
                });
            client.close().await.expect("closed");
            allocated
        }
    };
    let relayed = allocate(password.to_owned())
        .await
        .expect("the credential allocates");
    assert!(
        relayed.port() >= 49_152,
        "a port from the relay range: {relayed}"
    );
    let tampered = format!(
        "{}{}",
        if password.starts_with('x') { "y" } else { "x" },
        &password[1..]
    );
    assert!(
        allocate(tampered).await.is_err(),
        "a tampered password is refused"
    );
    // The refusal is counted at `GET /metrics`, under its reason.
    let metrics = server
        .get_without_token("/metrics")
        .await
        .text()
        .await
        .expect("text");
    for (reason, count) in [
        ("bad_password", 1),
        ("expired", 0),
        ("unknown_key", 0),
        ("malformed", 0),
    ] {
        let line =
            format!("switchboard_turn_relay_auth_failures_total{{reason=\"{reason}\"}} {count}");
        assert!(
            metrics.lines().any(|exported| exported == line),
            "{line} in\n{metrics}"
        );
    }
}

/// `GET /metrics` reports each TURN/STUN server's health: the embedded relay, probed with STUN
/// binding requests, is up; a server nobody listens at is down, with its failures counted.
#[tokio::test]
async fn metrics_report_each_servers_health() {
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").expect("a free port");
    let dead_uri = format!(
        "turn:127.0.0.1:{}?transport=udp",
        dead.local_addr().expect("bound").port()
    );
    drop(dead);
    let server = TestServer::start_with(|config| {
        config.turn.uris = vec![dead_uri.clone()];
        config.turn.health_check_interval_ms = 100;
        config.turn.health_check_timeout_ms = 300;
    })
    .await;
    let relay = server
        .server()
        .relay_uri()
        .expect("the relay runs")
        .to_owned();
    let up = format!("switchboard_turn_server_up{{uri=\"{relay}\"}} 1");
    let down = format!("switchboard_turn_server_up{{uri=\"{dead_uri}\"}} 0");
    let failures = format!("switchboard_turn_server_probe_failures_total{{uri=\"{dead_uri}\"}} ");
    let metrics = crate::support::eventually("both servers probed", || async {
        let response = server.get_without_token("/metrics").await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/openmetrics-text"),
        );
        let body = response.text().await.expect("text");
        (body.contains(&up) && body.contains(&down)).then_some(body)
    })
    .await;
    assert!(
        metrics.contains("switchboard_websocket_connections 0"),
        "{metrics}"
    );
    let n_failures: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(&failures))
        .and_then(|count| count.parse().ok())
        .expect("the dead server's failures are counted");
    assert!(n_failures >= 1, "{metrics}");
}
