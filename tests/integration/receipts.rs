//! Receipts and unread counts: read and delivered cursors only move forward, every joined member
//! hears of them, and the unread count (messages of others after the read cursor that are not
//! deleted) is right after sends, reads, deletes and one's own messages.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, next_of, token};

async fn me(server: &TestServer, user: &str, conversation_id: &str) -> Value {
    let response = server
        .read_conversation_over_http(user, conversation_id)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["me"].clone()
}

async fn unread(server: &TestServer, user: &str, conversation_id: &str) -> u64 {
    me(server, user, conversation_id).await["unread_count"]
        .as_u64()
        .expect("unread_count")
}

async fn mark(server: &TestServer, user: &str, conversation_id: &str, body: Value) -> Value {
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{conversation_id}/receipts"),
            &token("acme", user),
            Some(&body),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body["me"].clone()
}

#[tokio::test]
async fn unread_counts_are_right_after_sends_reads_deletes_and_own_messages() {
    let server = TestServer::start().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    let mut alice_ids = Vec::new();
    for n in 1..=3 {
        let (_, ack) = alice
            .send_message(&id, &format!("a{n}"), &format!("from alice {n}"))
            .await;
        alice_ids.push(ack["message_id"].as_str().expect("id").to_owned());
    }
    assert_eq!(unread(&server, "bob", &id).await, 3);
    assert_eq!(
        unread(&server, "alice", &id).await,
        0,
        "own messages are never unread"
    );

    bob.send_message(&id, "b1", "from bob").await;
    assert_eq!(unread(&server, "bob", &id).await, 3);
    assert_eq!(unread(&server, "alice", &id).await, 1);

    let after_read = mark(&server, "bob", &id, json!({"read": 2})).await;
    assert_eq!(after_read["read"], 2);
    assert_eq!(after_read["delivered"], 2, "reading implies delivery");
    assert_eq!(after_read["unread_count"], 1);
    let backward = mark(&server, "bob", &id, json!({"read": 1, "delivered": 1})).await;
    assert_eq!(
        (backward["read"].as_u64(), backward["delivered"].as_u64()),
        (Some(2), Some(2))
    );
    let delivered = mark(&server, "bob", &id, json!({"delivered": 4})).await;
    assert_eq!(
        (delivered["read"].as_u64(), delivered["delivered"].as_u64()),
        (Some(2), Some(4))
    );

    // Deleting the one unread message (seq 3) leaves nothing unread; events never count.
    let delete = json!({"type": "delete", "conversation_id": id, "client_id": "d1", "message_id": alice_ids[2]});
    alice.send_json(delete).await;
    let react = json!({"type": "react", "conversation_id": id, "client_id": "r1", "message_id": alice_ids[0], "emoji": "👍"});
    alice.send_json(react).await;
    let mut delivered_acks = 0;
    while delivered_acks < 2 {
        let frame = alice.next_json().await;
        if frame["type"] == "ack" && frame["status"] != "pending" {
            assert_eq!(frame["status"], "delivered", "{frame}");
            delivered_acks += 1;
        }
    }
    assert_eq!(unread(&server, "bob", &id).await, 0);
    assert_eq!(unread(&server, "alice", &id).await, 1);

    // A read past the head stops at the head.
    let all_read = mark(&server, "bob", &id, json!({"read": 1000})).await;
    assert_eq!(all_read["read"], 6);
    let (status, unknown_field) = {
        let response = server
            .request(
                Method::POST,
                &format!("/v1/conversations/{id}/receipts"),
                &token("acme", "bob"),
                Some(&json!({"read": 1, "seen": 2})),
            )
            .await;
        (
            response.status(),
            response.json::<Value>().await.expect("json"),
        )
    };
    assert_eq!(status, 400);
    assert_eq!(unknown_field["code"], "invalid");
    let response = server
        .request(
            Method::POST,
            &format!("/v1/conversations/{id}/receipts"),
            &token("acme", "mallory"),
            Some(&json!({"read": 1})),
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn receipts_over_websocket_reach_the_other_members() {
    let server = TestServer::start().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    alice.join(&id, None).await;
    bob.join(&id, None).await;
    alice.send_message(&id, "a1", "one").await;
    alice.send_message(&id, "a2", "two").await;

    bob.send_json(json!({"type": "read", "id": "r", "conversation_id": id, "seq": 1}))
        .await;
    let reply = next_of(&mut bob, "receipt").await;
    assert_eq!(
        reply,
        json!({"type": "receipt", "id": "r", "conversation_id": id, "user_id": "bob", "read": 1, "delivered": 1})
    );
    let seen = next_of(&mut alice, "receipt").await;
    assert_eq!(
        seen,
        json!({"type": "receipt", "conversation_id": id, "user_id": "bob", "read": 1, "delivered": 1})
    );

    bob.send_json(json!({"type": "delivered", "id": 2, "conversation_id": id, "seq": 2}))
        .await;
    let reply = next_of(&mut bob, "receipt").await;
    assert_eq!(
        (reply["read"].as_u64(), reply["delivered"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(me(&server, "bob", &id).await["unread_count"], 1);

    let mut mallory = server.connect("acme", "mallory").await;
    mallory
        .send_json(json!({"type": "read", "id": 3, "conversation_id": id, "seq": 1}))
        .await;
    let refused = mallory.next_json().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "not_member");
    assert_eq!(refused["id"], 3);
}

#[tokio::test]
async fn my_conversation_list_pages_with_last_message_unread_and_settings() {
    let server = TestServer::start().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            server
                .create_conversation("acme", if n == 1 { "carol" } else { "alice" }, &["bob"])
                .await,
        );
    }
    let elsewhere = server
        .create_conversation("acme", "alice", &["carol"])
        .await;
    let mut alice = server.connect("acme", "alice").await;
    alice.send_message(&ids[0], "x1", "first in zero").await;
    alice.send_message(&ids[0], "x2", "second in zero").await;
    alice.send_message(&ids[2], "y1", "only in two").await;

    let list = |query: String| {
        let server = &server;
        async move {
            let (status, _, page) = server
                .get_as("bob", &format!("/v1/conversations{query}"))
                .await;
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    let page = list("?limit=2".to_owned()).await;
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["conversation_id"], ids[0].as_str());
    assert_eq!(items[0]["last_message"]["text"], "second in zero");
    assert_eq!(items[0]["me"]["unread_count"], 2);
    assert_eq!(items[0]["me"]["role"], "member");
    assert_eq!(items[1]["conversation_id"], ids[1].as_str());
    assert_eq!(items[1].get("last_message"), None);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = list(format!("?limit=2&cursor={cursor}")).await;
    let rest_items = rest["items"].as_array().expect("items");
    assert_eq!(rest_items.len(), 1, "bob is not in {elsewhere}");
    assert_eq!(rest_items[0]["conversation_id"], ids[2].as_str());
    assert_eq!(rest_items[0]["me"]["unread_count"], 1);
    assert_eq!(rest["next_cursor"], Value::Null);

    let settings = |body: Value| {
        let server = &server;
        let path = format!("/v1/conversations/{}/settings", ids[2]);
        async move {
            let (status, _, view) = server.put_as("bob", &path, body).await;
            (status, view)
        }
    };
    let (status, view) =
        settings(json!({"notifications_muted_until": 1_900_000_000_000_u64, "pinned": true})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["me"]["notifications_muted_until"],
        1_900_000_000_000_u64
    );
    assert_eq!(
        (
            view["me"]["pinned"].as_bool(),
            view["me"]["archived"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let (_, view) = settings(json!({"notifications_muted_until": null, "archived": true})).await;
    assert_eq!(view["me"].get("notifications_muted_until"), None);
    assert_eq!(
        (
            view["me"]["pinned"].as_bool(),
            view["me"]["archived"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let (status, refused) = settings(json!({"muted": true})).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("invalid")));
    let listed = list(String::new()).await;
    let pinned: Vec<bool> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["me"]["pinned"].as_bool().expect("pinned"))
        .collect();
    assert_eq!(pinned, [false, false, true]);
}
