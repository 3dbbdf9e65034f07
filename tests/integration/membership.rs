//! Conversations, members, roles and moderation over HTTP and WebSocket: every change is an
//! event with its own seq that every joined member sees, repeats of a `client_id` have no second
//! effect, the permission matrix refuses what it should, and bans and mutes keep users out.

use serde_json::{Value, json};

use crate::support::{Client, TestServer, next_of};

fn members(conversation: &Value) -> Vec<String> {
    conversation["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| {
            format!(
                "{}:{}",
                member["user_id"].as_str().expect("id"),
                member["role"].as_str().expect("role")
            )
        })
        .collect()
}

#[tokio::test]
async fn membership_changes_over_http_reach_every_member() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let base = format!("/v1/conversations/{id}");
    let mut bob = server.connect("acme", "bob").await;
    bob.join(&id, None).await;

    let add = json!({"client_id": "add-carol", "user_ids": ["carol", "bob"]});
    let (status, replayed, added) = server
        .post_as("alice", &format!("{base}/members"), add.clone())
        .await;
    assert_eq!((status, replayed), (200, false), "{added}");
    assert_eq!(
        members(&added["conversation"]),
        ["alice:owner", "bob:member", "carol:member"]
    );
    let joined = next_of(&mut bob, "member.joined").await;
    assert_eq!(joined["seq"], 1);
    assert_eq!(joined["actor_id"], "alice");
    assert_eq!(joined["members"][0]["user_id"], "carol");
    assert_eq!(
        joined["members"].as_array().map(Vec::len),
        Some(1),
        "bob was a member already"
    );
    // The same client_id again: the original event, nothing new.
    let (status, replayed, again) = server
        .post_as("alice", &format!("{base}/members"), add)
        .await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again["event"], added["event"]);

    // Members may not add; admins may.
    let (status, _, refused) = server
        .post_as(
            "bob",
            &format!("{base}/members"),
            json!({"client_id": "b-add", "user_ids": ["dave"]}),
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));

    let (status, _, promoted) = server
        .put_as(
            "alice",
            &format!("{base}/members/carol/role"),
            json!({"client_id": "role-carol", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200, "{promoted}");
    let changed = next_of(&mut bob, "member.role_changed").await;
    assert_eq!(
        (changed["user_id"].as_str(), changed["role"].as_str()),
        (Some("carol"), Some("admin"))
    );

    let (status, _, updated) = server.patch_as("carol", &base, json!({"client_id": "rename", "title": "renamed", "avatar_url": "https://example.com/a.png"}))
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["conversation"]["title"], "renamed");
    let update = next_of(&mut bob, "conversation.updated").await;
    assert_eq!(
        (
            update["title"].as_str(),
            update["avatar_url"].as_str(),
            &update["description"]
        ),
        (
            Some("renamed"),
            Some("https://example.com/a.png"),
            &Value::Null
        )
    );

    let (status, _, _) = server
        .post_as(
            "alice",
            &format!("{base}/owner"),
            json!({"client_id": "to-carol", "user_id": "carol"}),
        )
        .await;
    assert_eq!(status, 200);
    let owner = next_of(&mut bob, "conversation.owner_changed").await;
    assert_eq!(
        (owner["previous_owner"].as_str(), owner["owner"].as_str()),
        (Some("alice"), Some("carol"))
    );

    // The new owner archives: no sends until unarchived; reading still works.
    let (status, _, _) = server
        .post_as(
            "carol",
            &format!("{base}/archive"),
            json!({"client_id": "archive", "archived": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        next_of(&mut bob, "conversation.archived").await["archived"],
        true
    );
    let (status, _, refused) = server
        .post_as(
            "alice",
            &format!("{base}/messages"),
            json!({"client_id": "while-archived", "text": "hello?"}),
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("conflict")));
    let (status, _, _) = server
        .post_as(
            "carol",
            &format!("{base}/archive"),
            json!({"client_id": "unarchive", "archived": false}),
        )
        .await;
    assert_eq!(status, 200);

    // Alice (now an admin) removes bob, who sees it and is no longer subscribed.
    let (status, _, removed) = server
        .delete_as("alice", &format!("{base}/members/bob?client_id=rm-bob"))
        .await;
    assert_eq!(status, 200, "{removed}");
    let left = next_of(&mut bob, "member.left").await;
    assert_eq!(
        (left["user_id"].as_str(), left["reason"].as_str()),
        (Some("bob"), Some("removed"))
    );
    let (status, _, refused) = server.get_as("bob", &base).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("not_member"))
    );

    // Leaving: the owner may not; an admin may.
    let (status, _, refused) = server
        .post_as(
            "carol",
            &format!("{base}/leave"),
            json!({"client_id": "carol-leaves"}),
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));
    let (status, _, left) = server
        .post_as(
            "alice",
            &format!("{base}/leave"),
            json!({"client_id": "alice-leaves"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        left.get("conversation"),
        None,
        "a former member does not see the conversation"
    );
    let (_, _, view) = server.get_as("carol", &base).await;
    assert_eq!(members(&view), ["carol:owner"]);

    // The whole story is in the seq stream, in order, for anyone who replays it.
    let mut replay = server.connect("acme", "carol").await;
    replay.join(&id, Some(0)).await;
    let mut kinds = Vec::new();
    while kinds.len() < 8 {
        let frame = replay.next_json().await;
        if let Some(seq) = frame["seq"].as_u64() {
            kinds.push(format!("{seq} {}", frame["type"].as_str().expect("type")));
        }
    }
    assert_eq!(
        kinds,
        [
            "1 member.joined",
            "2 member.role_changed",
            "3 conversation.updated",
            "4 conversation.owner_changed",
            "5 conversation.archived",
            "6 conversation.archived",
            "7 member.left",
            "8 member.left",
        ]
    );
}

#[tokio::test]
async fn moderation_over_websocket_with_the_moderation_log() {
    let server = TestServer::start().await;
    let id = server
        .create_conversation("acme", "alice", &["bob", "mo"])
        .await;
    let mut alice = server.connect("acme", "alice").await;
    let mut bob = server.connect("acme", "bob").await;
    bob.join(&id, None).await;

    // Over WebSocket: the owner makes mo a moderator, then mo mutes bob.
    alice
        .send_json(json!({"type": "change_role", "id": 1, "conversation_id": id, "client_id": "mod-mo", "user_id": "mo", "role": "moderator"}))
        .await;
    let ack = loop {
        let frame = next_of(&mut alice, "ack").await;
        if frame["status"] != "pending" {
            break frame;
        }
    };
    assert_eq!(ack["status"], "delivered", "{ack}");
    let mut mo = server.connect("acme", "mo").await;
    mo.send_json(json!({"type": "moderate", "id": 2, "conversation_id": id, "client_id": "mute-bob", "action": "mute", "user_id": "bob", "duration_ms": 3_600_000, "reason": "flooding"}))
        .await;
    let ack = loop {
        let frame = next_of(&mut mo, "ack").await;
        if frame["status"] != "pending" {
            break frame;
        }
    };
    assert_eq!(ack["status"], "delivered", "{ack}");
    let muted = next_of(&mut bob, "moderation.muted").await;
    assert_eq!(muted["user_id"], "bob");
    assert_eq!(muted["actor_id"], "mo");
    assert_eq!(muted["reason"], "flooding");
    assert!(muted["until"].as_u64().is_some());

    let (_, refused) = bob.send_message(&id, "b1", "can I talk?").await;
    assert_eq!(refused["status"], "rejected");
    assert_eq!(refused["code"], "forbidden");
    // A member may not moderate.
    bob.send_json(json!({"type": "moderate", "conversation_id": id, "client_id": "b-kick", "action": "kick", "user_id": "mo"}))
        .await;
    let refused = loop {
        let frame = next_of(&mut bob, "ack").await;
        if frame["status"] != "pending" {
            break frame;
        }
    };
    assert_eq!(refused["code"], "forbidden");

    let (status, _, _) = server
        .post_as(
            "mo",
            &format!("/v1/conversations/{id}/moderation"),
            json!({"client_id": "unmute-bob", "action": "unmute", "user_id": "bob"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, delivered) = bob.send_message(&id, "b2", "thanks").await;
    assert_eq!(delivered["status"], "delivered");

    // A kick ends bob's subscription; a ban keeps him out until lifted.
    let (status, _, _) = server.post_as("mo", &format!("/v1/conversations/{id}/moderation"), json!({"client_id": "kick-bob", "action": "kick", "user_id": "bob", "reason": "cool down"}))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        next_of(&mut bob, "moderation.kicked").await["user_id"],
        "bob"
    );
    let (status, _, _) = server
        .post_as(
            "mo",
            &format!("/v1/conversations/{id}/moderation"),
            json!({"client_id": "ban-bob", "action": "ban", "user_id": "bob"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, refused) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{id}/members"),
            json!({"client_id": "readd-bob", "user_ids": ["bob"]}),
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));
    bob.send_json(json!({"type": "join", "id": "j", "conversation_id": id}))
        .await;
    assert_eq!(next_of(&mut bob, "error").await["code"], "not_member");

    // The log: newest first, who, whom, what, when, why, until; moderators only.
    let (status, _, log) = server
        .get_as("mo", &format!("/v1/conversations/{id}/moderation?limit=3"))
        .await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["ban", "kick", "unmute"]);
    assert_eq!(log["items"][1]["reason"], "cool down");
    assert_eq!(log["items"][1]["actor_id"], "mo");
    let before = log["next_before_seq"].as_u64().expect("another page");
    let (_, _, rest) = server
        .get_as(
            "mo",
            &format!("/v1/conversations/{id}/moderation?limit=3&before_seq={before}"),
        )
        .await;
    assert_eq!(rest["items"][0]["action"], "mute");
    assert_eq!(rest["items"][0]["reason"], "flooding");
    assert_eq!(rest["next_before_seq"], Value::Null);
    let (status, _, refused) = server
        .get_as("alice", &format!("/v1/conversations/{id}/moderation"))
        .await;
    assert_eq!(status, 200, "the owner reads the log: {refused}");

    let (status, _, _) = server
        .post_as(
            "mo",
            &format!("/v1/conversations/{id}/moderation"),
            json!({"client_id": "unban-bob", "action": "unban", "user_id": "bob"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, readded) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{id}/members"),
            json!({"client_id": "readd-bob-2", "user_ids": ["bob"]}),
        )
        .await;
    assert_eq!(status, 200, "{readded}");
    let (status, _, refused) = server
        .get_as("bob", &format!("/v1/conversations/{id}/moderation"))
        .await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("forbidden")));
}

/// Sends a frame acknowledged by `client_id`; returns the final ack.
async fn final_ack(client: &mut Client, frame: Value) -> Value {
    let client_id = frame["client_id"].as_str().expect("client_id").to_owned();
    client.send_json(frame).await;
    loop {
        let reply = client.next_json().await;
        if reply["type"] == "ack"
            && reply["client_id"] == client_id.as_str()
            && reply["status"] != "pending"
        {
            return reply;
        }
    }
}

#[tokio::test]
async fn repeating_any_operations_client_id_has_no_second_effect() {
    // Repeats take rate-limit tokens like any request; this test makes many at once.
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_minute = 0;
        config.limits.operations_per_minute = 0;
        config.limits.changes_per_minute = 0;
    })
    .await;
    let id = server
        .create_conversation("acme", "alice", &["bob", "mo"])
        .await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, sent) = alice.send_message(&id, "setup", "target").await;
    let message_id = sent["message_id"].as_str().expect("id").to_owned();
    let frame = |kind: &str, client_id: &str, extra: Value| {
        let mut frame = json!({"type": kind, "conversation_id": id, "client_id": client_id});
        for (key, value) in extra.as_object().expect("an object") {
            frame[key] = value.clone();
        }
        frame
    };
    let operations = [
        frame("send", "op-send", json!({"text": "hello"})),
        frame(
            "edit",
            "op-edit",
            json!({"message_id": message_id, "text": "edited"}),
        ),
        frame(
            "react",
            "op-react",
            json!({"message_id": message_id, "emoji": "👍"}),
        ),
        frame(
            "unreact",
            "op-unreact",
            json!({"message_id": message_id, "emoji": "👍"}),
        ),
        frame("add_members", "op-add", json!({"user_ids": ["carol"]})),
        frame(
            "change_role",
            "op-role",
            json!({"user_id": "mo", "role": "moderator"}),
        ),
        frame(
            "moderate",
            "op-mute",
            json!({"action": "mute", "user_id": "bob", "duration_ms": 60000}),
        ),
        frame(
            "moderate",
            "op-unmute",
            json!({"action": "unmute", "user_id": "bob"}),
        ),
        frame("remove_member", "op-remove", json!({"user_id": "carol"})),
        frame("delete", "op-delete", json!({"message_id": message_id})),
        frame("transfer_ownership", "op-owner", json!({"user_id": "mo"})),
    ];
    let mut expected_seq = 1;
    for operation in operations {
        expected_seq += 1;
        let first = final_ack(&mut alice, operation.clone()).await;
        assert_eq!(first["status"], "delivered", "{operation}: {first}");
        assert_eq!(first["seq"], expected_seq, "{operation}");
        let again = final_ack(&mut alice, operation.clone()).await;
        assert_eq!(again["status"], "delivered", "{operation}: {again}");
        assert_eq!(
            (&again["seq"], &again["message_id"]),
            (&first["seq"], &first["message_id"]),
            "{operation}: the repeat names the original"
        );
    }
    // Nothing was stored twice: the head is exactly one entry per operation.
    let response = server.read_conversation_over_http("mo", &id).await;
    let conversation: Value = response.json().await.expect("json");
    assert_eq!(conversation["head"], expected_seq);
    assert_eq!(
        members(&conversation),
        ["alice:admin", "bob:member", "mo:owner"]
    );

    // Over WebSocket too: a member leaves.
    let mut bob = server.connect("acme", "bob").await;
    let left = final_ack(
        &mut bob,
        frame("leave_conversation", "bob-leaves", json!({})),
    )
    .await;
    assert_eq!(left["status"], "delivered", "{left}");
    let again = final_ack(
        &mut bob,
        frame("leave_conversation", "bob-leaves", json!({})),
    )
    .await;
    assert_eq!(
        again["seq"], left["seq"],
        "a repeated leave is answered, not refused"
    );
}
