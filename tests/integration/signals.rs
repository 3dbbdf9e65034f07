//! Live signals that are never stored: typing (coalesced, passed on to the other members) and
//! presence (online, away, offline with last seen, visible to users who share a conversation).

use serde_json::json;

use crate::support::{TestServer, next_of};

#[tokio::test]
async fn typing_reaches_the_other_members_coalesced() {
    let server = TestServer::start().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    alice.join(&id, None).await;
    bob.join(&id, None).await;

    let typing = |state: &str| json!({"type": "typing", "conversation_id": id, "state": state});
    alice.send_json(typing("start")).await;
    alice.send_json(typing("start")).await;
    alice.send_json(typing("stop")).await;
    let first = next_of(&mut bob, "typing").await;
    assert_eq!(
        first,
        json!({"type": "typing", "conversation_id": id, "user_id": "alice", "state": "start", "expires_in_ms": 6000})
    );
    // The second start, within the coalescing window, was not passed on.
    let second = next_of(&mut bob, "typing").await;
    assert_eq!(
        (second["state"].as_str(), second.get("expires_in_ms")),
        (Some("stop"), None)
    );

    // The typist does not hear itself; a message proves nothing else is queued for alice.
    bob.send_message(&id, "b1", "hi").await;
    let frame = alice.next_json().await;
    assert_eq!(frame["type"], "message", "alice got {frame}");

    // Not a member, or a bad state: an error frame.
    let mut carol = server.connect("acme", "carol").await;
    carol
        .send_json(json!({"type": "typing", "id": 1, "conversation_id": id, "state": "start"}))
        .await;
    let refused = next_of(&mut carol, "error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_u64()),
        (Some("not_member"), Some(1))
    );
    carol
        .send_json(json!({"type": "typing", "id": 2, "conversation_id": id, "state": "maybe"}))
        .await;
    assert_eq!(next_of(&mut carol, "error").await["code"], "invalid");
}

#[tokio::test]
async fn presence_is_visible_to_users_who_share_a_conversation() {
    let server = TestServer::start().await;
    server.create_conversation("acme", "alice", &["bob"]).await;
    server.create_conversation("acme", "carol", &["dave"]).await;
    let mut alice = server.connect("acme", "alice").await;
    alice
        .send_json(json!({"type": "subscribe_presence", "id": "p", "user_ids": ["bob", "carol"]}))
        .await;
    let state = next_of(&mut alice, "presence_state").await;
    assert_eq!(
        state,
        json!({"type": "presence_state", "id": "p", "users": [{"user_id": "bob", "status": "offline"}], "refused": ["carol"]})
    );

    let mut bob = server.connect("acme", "bob").await;
    assert_eq!(
        next_of(&mut alice, "presence").await,
        json!({"type": "presence", "user_id": "bob", "status": "online"})
    );
    bob.send_json(json!({"type": "presence", "status": "away"}))
        .await;
    assert_eq!(next_of(&mut alice, "presence").await["status"], "away");
    // A second session changes nothing; the last one closing makes bob offline.
    let second = server.connect("acme", "bob").await;
    drop(bob);
    drop(second);
    let offline = next_of(&mut alice, "presence").await;
    assert_eq!(offline["status"], "offline");
    let last_seen = offline["last_seen"].as_u64().expect("last_seen");

    let (status, _, body) = server
        .get_as("alice", "/v1/presence?user_ids=bob,carol")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"users": [{"user_id": "bob", "status": "offline", "last_seen": last_seen}], "refused": ["carol"]})
    );
    let mut mallory = server.connect("acme", "mallory").await;
    mallory
        .send_json(json!({"type": "presence", "id": 3, "status": "asleep"}))
        .await;
    assert_eq!(next_of(&mut mallory, "error").await["code"], "invalid");
}
