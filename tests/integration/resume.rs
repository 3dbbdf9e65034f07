//! Resume: a client that reconnects with `since` gets exactly what it missed, in order, then
//! live events, with no gap and no duplicate. Also across a conversation actor's idle stop and
//! reload from storage.

use crate::support::{TestServer, seqs};

#[tokio::test]
async fn resume_with_since_returns_exactly_the_missed_messages() {
    let server = TestServer::start().await;
    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    let mut bob = server.connect("acme", "bob").await;
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
