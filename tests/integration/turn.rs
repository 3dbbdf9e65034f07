//! TURN credentials over HTTP and WebSocket: the coturn REST API formula with the configured
//! secret, both JSON shapes, lifetimes clamped to the maximum. (That coturn itself accepts them
//! is `tests/interop.rs`.)

use serde_json::{Value, json};
use switchboard_turn::credentials::password_for;

use crate::support::{TestServer, next_of, now, token};

const SECRET: &str = "a-shared-secret-for-the-turn-tests";

async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.turn.secret = Some(SECRET.to_owned());
        config.turn.uris = vec!["turn:127.0.0.1:3478?transport=udp".to_owned()];
        config.turn.stun_uris = vec!["stun:127.0.0.1:3478".to_owned()];
        config.turn.max_ttl_secs = 7200;
    })
    .await
}

fn expiry_of(username: &str) -> u64 {
    username
        .split(':')
        .next()
        .and_then(|expiry| expiry.parse().ok())
        .expect("<expiry>:<tenant>:<user>")
}

#[tokio::test]
async fn credentials_over_http_follow_the_turn_rest_api_in_both_shapes() {
    let server = server().await;
    let before = now().as_secs();
    let response = server
        .http
        .get(server.url("/v1/turn/credentials?ttl_secs=600"))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let username = body["username"].as_str().expect("username");
    assert!(username.ends_with(":acme:alice"), "{username}");
    let expiry = expiry_of(username);
    assert!(
        (before + 600..=now().as_secs() + 600).contains(&expiry),
        "expiry {expiry} is about 600 s from now"
    );
    assert_eq!(body["password"], password_for(SECRET.as_bytes(), username));
    assert_eq!(body["ttl"], 600);
    assert_eq!(body["uris"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    assert_eq!(
        body["iceServers"],
        json!([
            {"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": username, "credential": body["password"]},
            {"urls": ["stun:127.0.0.1:3478"]}
        ])
    );

    let clamped: Value = server
        .http
        .get(server.url("/v1/turn/credentials?ttl_secs=999999"))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(clamped["ttl"], 7200);
    let default: Value = server
        .http
        .get(server.url("/v1/turn/credentials"))
        .bearer_auth(token("acme", "bob"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
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
