//! Resume: a client that reconnects with `since` gets exactly what it missed, in order, then
//! live events, with no gap and no duplicate. Also across a conversation actor's idle stop and
//! reload from storage.

use crate::support::{TestServer, seqs};

#[tokio::test]
async fn resume_with_since_returns_exactly_the_missed_messages() {
    let server = TestServer::start().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    bob.join(&id, None).await;
    for n in 1..=3 {
        alice
            .send_message(&id, &format!("a{n}"), &format!("before {n}"))
            .await;
    }
    let seen = bob.messages_through(3).await;
    assert_eq!(seqs(&seen), [1, 2, 3]);
    let last_seen = 3;
    drop(bob);

    for n in 4..=9 {
        alice
            .send_message(&id, &format!("a{n}"), &format!("while away {n}"))
            .await;
    }
    let mut bob = server.connect("acme", "bob").await;
    let joined = bob.join(&id, Some(last_seen)).await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["head"], 9);
    alice.send_message(&id, "a10", "live again").await;
    let caught_up = bob.messages_through(10).await;
    assert_eq!(seqs(&caught_up), [4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(caught_up[0]["text"], "while away 4");
    assert_eq!(caught_up[6]["text"], "live again");
}

#[tokio::test]
async fn resume_replays_long_histories_page_by_page() {
    let server = TestServer::start_with(|config| {
        config.conversations.catch_up_page_size = 7;
        config.conversations.recent_frames = 5;
    })
    .await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    for n in 1..=60 {
        alice
            .send_message(&id, &format!("a{n}"), &format!("m{n}"))
            .await;
    }
    let mut bob = server.connect("acme", "bob").await;
    bob.join(&id, Some(0)).await;
    let caught_up = bob.messages_through(60).await;
    assert_eq!(seqs(&caught_up), (1..=60).collect::<Vec<u64>>());
}

#[tokio::test]
async fn an_idle_conversation_stops_and_reloads_with_seq_and_dedup_intact() {
    let server =
        TestServer::start_with(|config| config.conversations.idle_stop_after_ms = 50).await;
    let id = server.create_conversation("acme", "alice", &[]).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, first) = alice.send_message(&id, "k1", "first").await;
    crate::support::eventually("the idle conversation to stop", || async {
        let n_running = server
            .server()
            .system()
            .n_conversations()
            .await
            .expect("count");
        (n_running == 0).then_some(())
    })
    .await;
    let (_, again) = alice.send_message(&id, "k1", "first").await;
    assert_eq!(again["message_id"], first["message_id"]);
    let (_, second) = alice.send_message(&id, "k2", "second").await;
    assert_eq!(second["seq"], 2);
}

/// Issue 13, defect 8: a resume served from the conversation's recent frames once replayed
/// messages as first sent, and a deleted message's text with its `message.edited` event.
#[tokio::test]
async fn a_resume_shows_each_message_as_it_is_now_and_never_a_deleted_text() {
    use serde_json::json;

    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    let messages = format!("/v1/conversations/{id}/messages");
    let (_, draft) = alice.send_message(&id, "d-1", "draft: meet at 10").await;
    let draft_id = draft["message_id"].as_str().expect("id").to_owned();
    let (status, _, _) = server
        .patch_as(
            "alice",
            &format!("{messages}/{draft_id}"),
            json!({"client_id": "d-2", "text": "final: meet at 11"}),
        )
        .await;
    assert_eq!(status, 200);

    // Bob, on a new session, joins with since 0: the message as it is now.
    let mut bob = server.connect("acme", "bob").await;
    bob.join(&id, Some(0)).await;
    let first = bob.next_json().await;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["text"], "final: meet at 11");
    assert!(first["edited_at"].is_u64(), "{first}");

    let (_, oops) = alice.send_message(&id, "o-1", "oops, wrong chat").await;
    let oops_id = oops["message_id"].as_str().expect("id").to_owned();
    let (status, _, _) = server
        .patch_as(
            "alice",
            &format!("{messages}/{oops_id}"),
            json!({"client_id": "o-2", "text": "oops, still the wrong chat"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .delete_as(
            "alice",
            &format!("{messages}/{oops_id}?client_id=o-3&mode=for_everyone"),
        )
        .await;
    assert_eq!(status, 200);

    // A new session resumes from just before it: a tombstone, an edit without text, the delete.
    let mut carol_view = server.connect("acme", "bob").await;
    carol_view.join(&id, Some(2)).await;
    let mut replayed = Vec::new();
    while replayed.len() < 3 {
        let frame = carol_view.next_json().await;
        if frame["seq"].is_u64() {
            replayed.push(frame);
        }
    }
    let text = serde_json::to_string(&replayed).expect("json");
    assert!(
        !text.contains("wrong chat"),
        "a deleted text was replayed: {text}"
    );
    assert_eq!(replayed[0]["type"], "message");
    assert_eq!(replayed[0]["text"], "");
    assert_eq!(replayed[0]["deleted"]["mode"], "for_everyone");
    assert_eq!(replayed[1]["type"], "message.edited");
    assert_eq!(replayed[2]["type"], "message.deleted");
}
