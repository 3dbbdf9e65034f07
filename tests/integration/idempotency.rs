//! Idempotency keys as members meet them (issue 13, defect 1): a `client_id` is its sender's
//! own, so two members who pick the same key both get their own message stored, and a key its
//! sender reuses for a different request is refused as a conflict, over WebSocket and HTTP, for
//! sends, edits, reactions and forwards.

use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn two_members_who_pick_the_same_client_id_each_get_their_own_message_stored() {
    let server = TestServer::start().await;
    let (id, mut idem, mut bob) = server.conversation_of_two("idem", "bob").await;

    let (_, first) = idem.send_message(&id, "K", "first body").await;
    assert_eq!(first["status"], "delivered");
    let (_, bobs) = bob.send_message(&id, "K", "bob's own words").await;
    // Before the fix this was `delivered` with idem's message id and seq, and nothing stored.
    assert_eq!(bobs["status"], "delivered", "{bobs}");
    assert_ne!(bobs["message_id"], first["message_id"]);
    assert_eq!(bobs["seq"], 2);

    let history = server.history("acme", "bob", &id).await;
    let stored: Vec<(&str, &str)> = history
        .iter()
        .map(|message| {
            (
                message["sender_id"].as_str().expect("sender"),
                message["text"].as_str().expect("text"),
            )
        })
        .collect();
    assert_eq!(stored, [("idem", "first body"), ("bob", "bob's own words")]);

    // Each one's retry is answered with their own message, over either transport.
    let (_, idem_retry) = idem.send_message(&id, "K", "first body").await;
    assert_eq!(idem_retry["message_id"], first["message_id"]);
    let (status, replayed, bob_retry) = server
        .post_as(
            "bob",
            &format!("/v1/conversations/{id}/messages"),
            json!({"client_id": "K", "text": "bob's own words"}),
        )
        .await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(bob_retry["message_id"], bobs["message_id"]);
}

#[tokio::test]
async fn a_client_id_reused_by_its_sender_for_another_request_is_a_conflict() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, first) = alice.send_message(&id, "K", "first body").await;
    assert_eq!(first["status"], "delivered");

    let (_, reused) = alice.send_message(&id, "K", "another body").await;
    assert_eq!(reused["status"], "rejected", "{reused}");
    assert_eq!(reused["code"], "conflict");
    let (status, _, error) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{id}/messages"),
            json!({"client_id": "K", "text": "yet another body"}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    let history = server.history("acme", "alice", &id).await;
    assert_eq!(history.len(), 1, "nothing new was stored: {history:?}");
    assert_eq!(history[0]["text"], "first body");
}

#[tokio::test]
async fn edits_reactions_and_forwards_are_keyed_by_their_author_too() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let target = server.create_conversation("acme", "alice", &["bob"]).await;
    let messages = format!("/v1/conversations/{id}/messages");
    let post = |user: &'static str, client_id: &'static str, text: &'static str| {
        let server = &server;
        let messages = messages.clone();
        async move {
            let (status, _, body) = (server)
                .post_as(
                    user,
                    &messages,
                    json!({"client_id": client_id, "text": text}),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["message_id"].as_str().expect("message id").to_owned()
        }
    };
    let alices = post("alice", "a-1", "alice's").await;
    let bobs = post("bob", "b-1", "bob's").await;

    // The same key for each one's edit of their own message: two events.
    let (status, replayed, alice_edit) = server
        .patch_as(
            "alice",
            &format!("{messages}/{alices}"),
            json!({"client_id": "E", "text": "alice's, edited"}),
        )
        .await;
    assert_eq!((status, replayed), (200, false));
    let (status, replayed, bob_edit) = server
        .patch_as(
            "bob",
            &format!("{messages}/{bobs}"),
            json!({"client_id": "E", "text": "bob's, edited"}),
        )
        .await;
    assert_eq!((status, replayed), (200, false), "{bob_edit}");
    assert_ne!(
        bob_edit["event"]["event_id"],
        alice_edit["event"]["event_id"]
    );
    assert_eq!(bob_edit["message"]["text"], "bob's, edited");

    // The same key for a reaction each.
    for user in ["alice", "bob"] {
        let (status, replayed, reacted) = server
            .post_as(
                user,
                &format!("{messages}/{alices}/reactions"),
                json!({"client_id": "R", "emoji": "👍"}),
            )
            .await;
        assert_eq!((status, replayed), (200, false), "{user}: {reacted}");
    }
    // Reusing the reaction's key for an edit is not a retry.
    let (status, _, error) = server
        .patch_as(
            "bob",
            &format!("{messages}/{bobs}"),
            json!({"client_id": "R", "text": "bob's, again"}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));

    // The same forward key for each one's forward: both copies are stored.
    for user in ["alice", "bob"] {
        let (status, _, forwarded) = server
            .post_as(
                user,
                &format!("/v1/conversations/{id}/forward"),
                json!({"client_id": "F", "message_ids": [alices], "to": [target]}),
            )
            .await;
        assert_eq!(status, 200, "{forwarded}");
        assert!(forwarded["results"][0]["error"].is_null(), "{forwarded}");
    }
    let copies = server.history("acme", "alice", &target).await;
    let senders: Vec<&str> = copies
        .iter()
        .map(|copy| copy["sender_id"].as_str().expect("sender"))
        .collect();
    assert_eq!(senders, ["alice", "bob"]);
}
