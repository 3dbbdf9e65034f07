//! Operations on messages over WebSocket and HTTP: edit, delete, react, reply in threads.
//!
//! Each operation is an event with its own seq, so the main test here is the replay test: a
//! client that was away replays sends, edits, deletes and reactions in seq order and ends with
//! the same view as a client that stayed, and as the server's own history. The view is built
//! by a client-side reducer that applies events the way `docs/PROTOCOL.md` says a client should
//! (events carry resulting state, never deltas).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::{Client, TestServer};

/// What a client shows of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MessageView {
    seq: u64,
    text: String,
    edited_at: Option<u64>,
    deleted: Option<String>,
    reactions: BTreeMap<String, u64>,
    thread_reply_count: u64,
}

/// A client's view of a conversation, built from frames in the order they arrive.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConversationView {
    messages: BTreeMap<String, MessageView>,
    last_seq: u64,
}

impl ConversationView {
    fn message_from(frame: &Value) -> MessageView {
        let reactions = frame["reactions"]
            .as_array()
            .map(|reactions| {
                reactions
                    .iter()
                    .map(|reaction| {
                        (
                            reaction["emoji"].as_str().expect("emoji").to_owned(),
                            reaction["count"].as_u64().expect("count"),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        MessageView {
            seq: frame["seq"].as_u64().expect("seq"),
            text: frame["text"].as_str().expect("text").to_owned(),
            edited_at: frame["edited_at"].as_u64(),
            deleted: frame["deleted"]["mode"].as_str().map(str::to_owned),
            reactions,
            thread_reply_count: frame["thread_reply_count"].as_u64().unwrap_or(0),
        }
    }

    /// Applies one entry frame; returns false for frames that are not log entries.
    fn apply(&mut self, frame: &Value) -> bool {
        let kind = frame["type"].as_str().unwrap_or_default();
        let seq = frame["seq"].as_u64();
        let target = frame["message_id"].as_str().unwrap_or_default().to_owned();
        match kind {
            "message" => {
                let view = Self::message_from(frame);
                if let Some(root) = frame["thread_root"].as_str() {
                    let position = frame["thread_position"].as_u64().expect("thread_position");
                    if let Some(root) = self.messages.get_mut(root) {
                        root.thread_reply_count = root.thread_reply_count.max(position);
                    }
                }
                self.messages.insert(target, view);
            }
            "message.edited" => {
                let message = self.messages.get_mut(&target).expect("known message");
                if let Some(text) = frame["text"].as_str() {
                    message.text = text.to_owned();
                }
                message.edited_at = frame["edited_at"].as_u64();
            }
            "message.deleted" => {
                let message = self.messages.get_mut(&target).expect("known message");
                message.text.clear();
                message.reactions.clear();
                message.deleted = frame["mode"].as_str().map(str::to_owned);
            }
            "reaction.added" | "reaction.removed" => {
                let message = self.messages.get_mut(&target).expect("known message");
                let emoji = frame["emoji"].as_str().expect("emoji").to_owned();
                match frame["count"].as_u64().expect("count") {
                    0 => message.reactions.remove(&emoji),
                    count => message.reactions.insert(emoji, count),
                };
            }
            _ => return false,
        }
        let seq = seq.expect("every entry has a seq");
        assert_eq!(
            seq,
            self.last_seq + 1,
            "entries arrive in seq order, no gap"
        );
        self.last_seq = seq;
        true
    }

    /// Reads frames until the entry with `seq` has been applied.
    async fn follow_through(&mut self, client: &mut Client, seq: u64) {
        while self.last_seq < seq {
            let frame = client.next_json().await;
            self.apply(&frame);
        }
    }
}

/// Sends a frame acknowledged by `client_id` and returns its final ack, skipping other frames
/// (which the caller's view does not need: the view is filled from another client).
async fn operate(client: &mut Client, frame: Value) -> Value {
    let client_id = frame["client_id"].as_str().expect("client_id").to_owned();
    client.send_json(frame).await;
    loop {
        let reply = client.next_json().await;
        if reply["type"] == "ack" && reply["client_id"] == client_id.as_str() {
            if reply["status"] == "pending" {
                continue;
            }
            return reply;
        }
    }
}

fn delivered_seq(ack: &Value) -> u64 {
    assert_eq!(ack["status"], "delivered", "ack: {ack}");
    ack["seq"].as_u64().expect("seq")
}

#[tokio::test]
async fn a_returning_client_replays_every_operation_and_ends_with_the_same_view() {
    let server = TestServer::start().await;
    let id = server
        .create_conversation("acme", "alice", &["bob", "carol"])
        .await;
    let mut alice = server.connect("acme", "alice").await;
    let mut bob = server.connect("acme", "bob").await;
    let mut carol = server.connect("acme", "carol").await;
    let mut stayed = ConversationView::default();
    bob.join(&id, None).await;
    carol.join(&id, None).await;

    let (_, first) = alice.send_message(&id, "m1", "first").await;
    let first_id = first["message_id"].as_str().expect("id").to_owned();
    let mut carol_view = ConversationView::default();
    carol_view.follow_through(&mut carol, 1).await;
    drop(carol);

    let (_, second) = alice.send_message(&id, "m2", "second").await;
    let second_id = second["message_id"].as_str().expect("id").to_owned();
    let steps = [
        json!({"type": "react", "conversation_id": id, "client_id": "r1", "message_id": first_id, "emoji": "👍"}),
        json!({"type": "edit", "conversation_id": id, "client_id": "e1", "message_id": first_id, "text": "first, edited"}),
        json!({"type": "send", "conversation_id": id, "client_id": "t1", "text": "in the thread", "thread_root": first_id}),
        json!({"type": "react", "conversation_id": id, "client_id": "r2", "message_id": second_id, "emoji": ":tada:"}),
        json!({"type": "delete", "conversation_id": id, "client_id": "d1", "message_id": second_id}),
        json!({"type": "send", "conversation_id": id, "client_id": "t2", "text": "second reply", "thread_root": first_id}),
        json!({"type": "unreact", "conversation_id": id, "client_id": "r3", "message_id": first_id, "emoji": "👍"}),
        json!({"type": "react", "conversation_id": id, "client_id": "r4", "message_id": first_id, "emoji": "❤️"}),
    ];
    let mut last_seq = 2;
    for step in steps {
        let ack = operate(&mut alice, step).await;
        let seq = delivered_seq(&ack);
        assert_eq!(seq, last_seq + 1, "every operation takes the next seq");
        last_seq = seq;
    }
    assert_eq!(last_seq, 10);
    stayed.follow_through(&mut bob, last_seq).await;

    let mut carol = server.connect("acme", "carol").await;
    let joined = carol.join(&id, Some(1)).await;
    assert_eq!(joined["head"], last_seq);
    carol_view.follow_through(&mut carol, last_seq).await;
    assert_eq!(
        carol_view, stayed,
        "the returning client sees what the one who stayed sees"
    );

    // A client that replays from the very beginning gets the same view too.
    let mut dave_view = ConversationView::default();
    let mut late = server.connect("acme", "bob").await;
    late.join(&id, Some(0)).await;
    dave_view.follow_through(&mut late, last_seq).await;
    assert_eq!(dave_view.messages, stayed.messages);

    // ...and so does the server's history.
    let history = server.history("acme", "bob", &id).await;
    let server_view: BTreeMap<String, MessageView> = history
        .iter()
        .map(|message| {
            (
                message["message_id"].as_str().expect("id").to_owned(),
                ConversationView::message_from(message),
            )
        })
        .collect();
    assert_eq!(server_view, stayed.messages);

    let first_view = &stayed.messages[&first_id];
    assert_eq!(first_view.text, "first, edited");
    assert!(first_view.edited_at.is_some());
    assert_eq!(first_view.thread_reply_count, 2);
    assert_eq!(first_view.reactions, BTreeMap::from([("❤️".to_owned(), 1)]));
    let second_view = &stayed.messages[&second_id];
    assert_eq!(second_view.text, "");
    assert_eq!(second_view.deleted.as_deref(), Some("for_everyone"));
    assert!(second_view.reactions.is_empty());
}

#[tokio::test]
async fn operations_are_refused_with_clear_codes_and_repeats_have_no_second_effect() {
    let server = TestServer::start().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    let (_, sent) = alice.send_message(&id, "m1", "hello").await;
    let message_id = sent["message_id"].as_str().expect("id").to_owned();

    let refused = operate(
        &mut bob,
        json!({"type": "edit", "id": 1, "conversation_id": id, "client_id": "b-e1", "message_id": message_id, "text": "mine now"}),
    )
    .await;
    assert_eq!(refused["status"], "rejected");
    assert_eq!(refused["code"], "forbidden");
    assert_eq!(refused["id"], 1);
    let refused = operate(
        &mut bob,
        json!({"type": "delete", "conversation_id": id, "client_id": "b-d1", "message_id": message_id}),
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    let refused = operate(
        &mut bob,
        json!({"type": "react", "conversation_id": id, "client_id": "b-r0", "message_id": "01HF7YAT000000000000000007", "emoji": "👍"}),
    )
    .await;
    assert_eq!(refused["code"], "not_found");

    // The same client_id again is answered with the original event, and stores nothing.
    let react = json!({"type": "react", "conversation_id": id, "client_id": "b-r1", "message_id": message_id, "emoji": "👍"});
    let first = operate(&mut bob, react.clone()).await;
    let again = operate(&mut bob, react).await;
    assert_eq!(delivered_seq(&first), 2);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["message_id"], first["message_id"]);
    // A new client_id for the same reaction is a conflict, and consumes no seq.
    let duplicate = operate(
        &mut bob,
        json!({"type": "react", "conversation_id": id, "client_id": "b-r2", "message_id": message_id, "emoji": "👍"}),
    )
    .await;
    assert_eq!(duplicate["code"], "conflict");
    let (_, next) = alice.send_message(&id, "m2", "next").await;
    assert_eq!(next["seq"], 3);

    let history = server.history("acme", "alice", &id).await;
    assert_eq!(
        history[0]["reactions"],
        json!([{"emoji": "👍", "count": 1, "user_ids": ["bob"]}])
    );
}

#[tokio::test]
async fn every_operation_over_http_with_the_events_members_see() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut watcher = server.connect("acme", "bob").await;
    watcher.join(&id, None).await;
    let messages = format!("/v1/conversations/{id}/messages");

    let (status, _, root) = server
        .post_as("bob", &messages, json!({"client_id": "h1", "text": "root"}))
        .await;
    assert_eq!(status, 201);
    let root_id = root["message_id"].as_str().expect("id").to_owned();
    let message = format!("{messages}/{root_id}");

    // Edit, twice with the same client_id: one event.
    let edit = json!({"client_id": "h-e1", "text": "root, edited"});
    let (status, replayed, edited) = server.patch_as("bob", &message, edit.clone()).await;
    assert_eq!((status, replayed), (200, false));
    assert_eq!(edited["event"]["seq"], 2);
    assert_eq!(edited["message"]["text"], "root, edited");
    let (status, replayed, again) = server.patch_as("bob", &message, edit).await;
    assert_eq!((status, replayed), (200, true));
    assert_eq!(again["event"], edited["event"]);

    // Unknown fields are refused.
    let (status, _, error) = server
        .patch_as(
            "bob",
            &message,
            json!({"client_id": "h-e2", "text": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "invalid");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("colour"),
        "{error}"
    );

    // Reactions, in a thread, and the thread listing.
    let (status, _, reacted) = server
        .post_as(
            "alice",
            &format!("{message}/reactions"),
            json!({"client_id": "h-r1", "emoji": "🎉"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(reacted["message"]["reactions"][0]["count"], 1);
    let (status, _, error) = server
        .post_as(
            "alice",
            &format!("{message}/reactions"),
            json!({"client_id": "h-r2", "emoji": "🎉"}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    for (n, text) in ["one", "two", "three"].iter().enumerate() {
        let (status, _, _) = server
            .post_as(
                "alice",
                &messages,
                json!({"client_id": format!("h-t{n}"), "text": text, "thread_root": root_id}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, _, page) = server
        .get_as("bob", &format!("{message}/thread?limit=2"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["root"]["thread_reply_count"], 3);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    let next = page["next_after_seq"].as_u64().expect("a next page");
    let (_, _, page) = server
        .get_as("bob", &format!("{message}/thread?limit=2&after_seq={next}"))
        .await;
    assert_eq!(page["items"][0]["text"], "three");
    assert_eq!(page["next_after_seq"], Value::Null);
    let emoji_path = format!("{message}/reactions/%F0%9F%8E%89?client_id=h-r3");
    let (status, _, unreacted) = server.delete_as("alice", &emoji_path).await;
    assert_eq!(status, 200);
    assert_eq!(unreacted["message"].get("reactions"), None);

    // Edit history: readable by members while the message stands.
    let (status, _, history) = server.get_as("bob", &format!("{message}/edits")).await;
    assert_eq!(status, 200);
    assert_eq!(history["versions"][0]["text"], "root");

    // Delete: not by another member; by its author; then the history is for moderators only.
    let (status, _, error) = server
        .delete_as("alice", &format!("{message}?client_id=h-d0&mode=hard"))
        .await;
    assert_eq!(status, 200, "the owner may hard-delete: {error}");
    let (status, _, error) = server
        .delete_as("bob", &format!("{message}?client_id=h-d1"))
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    let (_, _, gone) = server.get_as("bob", &message).await;
    assert_eq!(gone["text"], "");
    assert_eq!(gone["deleted"]["mode"], "hard");
    let (_, _, history) = server.get_as("alice", &format!("{message}/edits")).await;
    assert_eq!(history["versions"], json!([]));

    // Other messages: a member may not delete someone else's; the author may.
    let (_, _, other) = server
        .post_as(
            "alice",
            &messages,
            json!({"client_id": "h2", "text": "alice's"}),
        )
        .await;
    let other_path = format!("{messages}/{}", other["message_id"].as_str().expect("id"));
    let (status, _, error) = server
        .delete_as("bob", &format!("{other_path}?client_id=h-d2"))
        .await;
    assert_eq!((status, error["code"].as_str()), (403, Some("forbidden")));
    let (status, _, deleted) = server
        .delete_as("alice", &format!("{other_path}?client_id=h-d3"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["message"]["deleted"]["mode"], "for_everyone");
    let (status, _, error) = server.get_as("bob", &format!("{other_path}/edits")).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("forbidden")));
    let (status, _, error) = server
        .get_as("bob", &format!("{messages}/01HF7YAT000000000000000007"))
        .await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    let (status, _, _) = server.get_as("mallory", &message).await;
    assert_eq!(status, 403);

    // The member who watched over WebSocket saw every one of these as an event, in order.
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let frame = watcher.next_json().await;
        if frame.get("seq").is_some() {
            seen.push(format!(
                "{} {}",
                frame["seq"],
                frame["type"].as_str().expect("type")
            ));
        }
    }
    assert_eq!(
        seen,
        [
            "1 message",
            "2 message.edited",
            "3 reaction.added",
            "4 message",
            "5 message",
            "6 message",
            "7 reaction.removed",
            "8 message.deleted",
            "9 message",
            "10 message.deleted",
        ]
    );
}

#[tokio::test]
async fn forwarding_copies_messages_with_their_origin_per_target() {
    let server = TestServer::start().await;
    let source = server.create_conversation("acme", "alice", &["bob"]).await;
    let target = server
        .create_conversation("acme", "alice", &["carol"])
        .await;
    let not_mine = server.create_conversation("acme", "carol", &["dave"]).await;
    let mut carol = server.connect("acme", "carol").await;
    carol.join(&target, None).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, first) = alice.send_message(&source, "s1", "one").await;
    let (_, second) = alice.send_message(&source, "s2", "two").await;
    let ids = [
        first["message_id"].as_str().expect("id").to_owned(),
        second["message_id"].as_str().expect("id").to_owned(),
    ];
    let forward = json!({"client_id": "fw1", "message_ids": ids, "to": [target, not_mine]});
    let path = format!("/v1/conversations/{source}/forward");
    let (status, _, body) = server.post_as("alice", &path, forward.clone()).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results[0]["conversation_id"], target.as_str());
    let copies = results[0]["messages"].as_array().expect("copies");
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[0]["text"], "one");
    assert_eq!(copies[0]["client_id"], "fw1+0");
    assert_eq!(
        copies[1]["forwarded_from"],
        json!({"conversation_id": source, "message_id": ids[1], "sender_id": "alice"})
    );
    assert_eq!(results[1]["conversation_id"], not_mine.as_str());
    assert_eq!(results[1]["error"]["code"], "not_member");

    // Members of the target see the copies as messages.
    let seen = carol.messages_through(2).await;
    assert_eq!(seen[1]["forwarded_from"]["message_id"], ids[1].as_str());

    // The same forward again stores nothing new.
    let (_, _, again) = server.post_as("alice", &path, forward).await;
    assert_eq!(
        again["results"][0]["messages"][1]["message_id"],
        copies[1]["message_id"]
    );
    assert_eq!(server.history("acme", "carol", &target).await.len(), 2);

    // A copy of a copy names the first original.
    let copy_id = copies[0]["message_id"].as_str().expect("id");
    let (_, _, onward) = server
        .post_as(
            "alice",
            &format!("/v1/conversations/{target}/forward"),
            json!({"client_id": "fw2", "message_ids": [copy_id], "to": [source]}),
        )
        .await;
    assert_eq!(
        onward["results"][0]["messages"][0]["forwarded_from"]["message_id"],
        ids[0].as_str()
    );

    // Limits, and what cannot be forwarded.
    let too_many: Vec<String> = (0..6).map(|_| target.clone()).collect();
    let distinct_targets = [
        server.create_conversation("acme", "alice", &[]).await,
        server.create_conversation("acme", "alice", &[]).await,
        server.create_conversation("acme", "alice", &[]).await,
        server.create_conversation("acme", "alice", &[]).await,
        server.create_conversation("acme", "alice", &[]).await,
        target.clone(),
    ];
    let (status, _, error) = server
        .post_as(
            "alice",
            &path,
            json!({"client_id": "fw3", "message_ids": [ids[0]], "to": distinct_targets}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (413, Some("too_large")));
    let (status, _, body) = server
        .post_as(
            "alice",
            &path,
            json!({"client_id": "fw4", "message_ids": [ids[0]], "to": too_many}),
        )
        .await;
    assert_eq!(status, 200, "repeated targets count once: {body}");
    let delete = json!({"type": "delete", "conversation_id": source, "client_id": "d1", "message_id": ids[0]});
    assert_eq!(delivered_seq(&operate(&mut alice, delete).await), 4);
    let (status, _, error) = server
        .post_as(
            "alice",
            &path,
            json!({"client_id": "fw5", "message_ids": [ids[0]], "to": [target]}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    let (status, _, error) = server
        .post_as(
            "dave",
            &path,
            json!({"client_id": "fw6", "message_ids": [ids[1]], "to": [not_mine]}),
        )
        .await;
    assert_eq!((status, error["code"].as_str()), (403, Some("not_member")));
}

#[tokio::test]
async fn deleting_for_me_hides_a_message_from_one_member_only() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, first) = alice.send_message(&id, "m1", "keep").await;
    let (_, second) = alice.send_message(&id, "m2", "hide me").await;
    let hidden_id = second["message_id"].as_str().expect("id").to_owned();

    // Over WebSocket: bob hides it; the reply names it.
    let mut bob = server.connect("acme", "bob").await;
    bob.send_json(json!({"type": "delete", "id": "h", "conversation_id": id, "client_id": "h1", "message_id": hidden_id, "mode": "for_me"}))
        .await;
    let reply = loop {
        let frame = bob.next_json().await;
        if frame["type"] == "hidden" || frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(
        reply,
        json!({"type": "hidden", "id": "h", "conversation_id": id, "message_id": hidden_id})
    );

    // Bob's history and reads no longer show it; alice's do.
    let texts = |history: Vec<Value>| -> Vec<String> {
        history
            .iter()
            .map(|message| message["text"].as_str().expect("text").to_owned())
            .collect()
    };
    assert_eq!(texts(server.history("acme", "bob", &id).await), ["keep"]);
    assert_eq!(
        texts(server.history("acme", "alice", &id).await),
        ["keep", "hide me"]
    );
    let path = format!("/v1/conversations/{id}/messages/{hidden_id}");
    let (status, _, _) = server.get_as("bob", &path).await;
    assert_eq!(status, 404);
    let (status, _, _) = server.get_as("alice", &path).await;
    assert_eq!(status, 200);

    // Bob's replay keeps the stream gapless: `skipped` stands in for the hidden message and
    // for events about it, live or replayed.
    bob.join(&id, Some(0)).await;
    let react = json!({"type": "react", "conversation_id": id, "client_id": "r1", "message_id": hidden_id, "emoji": "👍"});
    assert_eq!(delivered_seq(&operate(&mut alice, react).await), 3);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let frame = bob.next_json().await;
        if let Some(seq) = frame["seq"].as_u64() {
            seen.push(format!("{seq} {}", frame["type"].as_str().expect("type")));
        }
    }
    assert_eq!(seen, ["1 message", "2 skipped", "3 skipped"]);
    let mut alice_view = server.connect("acme", "alice").await;
    alice_view.join(&id, Some(1)).await;
    let frame = alice_view.next_json().await;
    assert_eq!(
        (frame["seq"].as_u64(), frame["type"].as_str()),
        (Some(2), Some("message"))
    );

    // Over HTTP: 204, idempotent; an unknown message is 404.
    let first_path = format!(
        "/v1/conversations/{id}/messages/{}",
        first["message_id"].as_str().expect("id")
    );
    for _ in 0..2 {
        let (status, _, _) = server
            .delete_as("alice", &format!("{first_path}?client_id=h2&mode=for_me"))
            .await;
        assert_eq!(status, 204);
    }
    assert_eq!(
        texts(server.history("acme", "alice", &id).await),
        ["hide me"]
    );
    assert_eq!(texts(server.history("acme", "bob", &id).await), ["keep"]);
    let (status, _, _) = server.delete_as("alice", &format!(
            "/v1/conversations/{id}/messages/01HF7YAT000000000000000007?client_id=h3&mode=for_me"
        ))
    .await;
    assert_eq!(status, 404);
}
