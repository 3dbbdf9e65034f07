//! Tenant isolation: a client of one tenant can neither reach nor detect another tenant's
//! conversations, even with the same user id and the exact conversation id.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestServer, token};

#[tokio::test]
async fn other_tenants_conversations_are_invisible() {
    let server = TestServer::start().await;
    let conversation_id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    alice
        .send_message(&conversation_id, "secret-1", "acme only")
        .await;

    // Same user id, other tenant: joining reports "not found", never "not a member".
    let mut impostor = server.connect("globex", "alice").await;
    let refused = impostor.join(&conversation_id, Some(0)).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "not_found");
    let (_, rejected) = impostor
        .send_message(&conversation_id, "x-1", "hello?")
        .await;
    assert_eq!(rejected["code"], "not_found");

    // Over HTTP: the conversation, its history and posting all answer 404.
    let other = token("globex", "alice");
    for path in [
        format!("/v1/conversations/{conversation_id}"),
        format!("/v1/conversations/{conversation_id}/messages"),
    ] {
        let response = server.request(Method::GET, &path, &other, None).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["code"], "not_found");
    }
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{conversation_id}/messages"),
            &other,
            Some(&json!({"client_id": "x-2", "text": "hello?"})),
        )
        .await;
    assert_eq!(response.status(), 404);

    // A conversation that does not exist at all looks exactly the same.
    let response = server
        .request(
            Method::GET,
            "/v1/conversations/01HZZZZZZZZZZZZZZZZZZZZZZZ",
            &other,
            None,
        )
        .await;
    assert_eq!(response.status(), 404);

    // And the owner's data is untouched.
    let history = server.history("acme", "alice", &conversation_id).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["text"], "acme only");
}

#[tokio::test]
async fn same_named_users_in_two_tenants_have_separate_conversations() {
    let server = TestServer::start().await;
    let acme = server.create_conversation("acme", "alice", &[]).await;
    let globex = server.create_conversation("globex", "alice", &[]).await;
    let mut acme_alice = server.connect("acme", "alice").await;
    let mut globex_alice = server.connect("globex", "alice").await;
    acme_alice.send_message(&acme, "k", "in acme").await;
    let (_, delivered) = globex_alice.send_message(&globex, "k", "in globex").await;
    // The same client id in another tenant is a different message.
    assert_eq!(delivered["seq"], 1);
    assert_eq!(
        server.history("acme", "alice", &acme).await[0]["text"],
        "in acme"
    );
    assert_eq!(
        server.history("globex", "alice", &globex).await[0]["text"],
        "in globex"
    );
}
