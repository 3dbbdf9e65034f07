//! Security events (issue 13, defect 5): refused tokens, cross-tenant probes, access denials,
//! rate limiting and protocol abuse each move `switchboard_security_events_total` for their
//! reason and tenant, over HTTP and WebSocket.

use reqwest::Method;
use serde_json::json;

use crate::support::{Client, TestServer, token};

/// The value of `switchboard_security_events_total{reason, tenant}` at `/metrics` (0 if absent).
async fn security_events(server: &TestServer, reason: &str, tenant: &str) -> u64 {
    let body = server
        .get_without_token("/metrics")
        .await
        .text()
        .await
        .expect("text");
    let series =
        format!("switchboard_security_events_total{{reason=\"{reason}\",tenant=\"{tenant}\"}} ");
    body.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().expect("a count"))
}

#[tokio::test]
async fn abuse_moves_the_security_counters_by_reason_and_tenant() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_minute = 1;
        config.limits.messages_burst = 1;
    })
    .await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;

    // Refused tokens, over HTTP (bad, missing) and WebSocket: the tenant is never trusted.
    let conversation = format!("/v1/conversations/{id}");
    let response = server
        .request(Method::GET, &conversation, "not-a-token", None)
        .await;
    assert_eq!(response.status(), 401);
    let response = server.get_without_token(&conversation).await;
    assert_eq!(response.status(), 401);
    let mut refused = Client::connect_raw(&server.ws_url("forged.token.value")).await;
    let _ = refused.read_until_end().await;
    assert_eq!(
        security_events(&server, "token_refused", "unknown").await,
        3
    );

    // A probe for another tenant's conversation looks like not_found, and counts as one.
    let response = server
        .request(Method::GET, &conversation, &token("evil", "mallory"), None)
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(security_events(&server, "not_found", "evil").await, 1);

    // A member of the tenant who is not in the conversation, over HTTP and WebSocket.
    let (status, _, _) = server
        .get_as("carol", &format!("/v1/conversations/{id}"))
        .await;
    assert_eq!(status, 403);
    let mut carol = server.connect("acme", "carol").await;
    let joined = carol.join(&id, None).await;
    assert_eq!(joined["code"], "not_member", "{joined}");
    assert_eq!(security_events(&server, "not_member", "acme").await, 2);

    // The rate limit: one send a minute.
    let messages = format!("/v1/conversations/{id}/messages");
    let mut n_refused = 0;
    for n in 0..3 {
        let (status, _, _) = server
            .post_as(
                "alice",
                &messages,
                json!({"client_id": format!("m{n}"), "text": "hi"}),
            )
            .await;
        if status == 429 {
            n_refused += 1;
        }
    }
    assert_eq!(n_refused, 2);
    assert_eq!(security_events(&server, "rate_limited", "acme").await, 2);

    // Protocol abuse: 31 invalid frames close the connection with 1008.
    let mut bob = server.connect("acme", "bob").await;
    for _ in 0..31 {
        bob.send_text("garbage".to_owned()).await;
    }
    let _ = bob.read_until_end().await;
    assert_eq!(
        security_events(&server, "protocol_violation", "acme").await,
        1
    );
}
