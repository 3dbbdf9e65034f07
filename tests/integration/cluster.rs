//! Two engine nodes of one deployment: a shared store and a cluster bus, each node on its own
//! port. Run here on the in-memory store and bus (two nodes in one process); the `mongodb`
//! module runs the same scenario on MongoDB and Redis.
//!
//! A client on one node and a client on the other, in one conversation, see each other's
//! messages, edits and typing live, in seq order; a member added on one node may join on the
//! other; a member removed on one node stops receiving on the other; and a client resumes with
//! `since` on either node. A user's rate limit is the deployment's, not each node's. A
//! recording's media stored or erased through one node is announced to the sessions on the
//! other.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use switchboard::config::Config;
use switchboard_actors::clock::SystemClock;
use switchboard_actors::system::{ClusterPorts, RecordingPorts};
use switchboard_engine::ids::{CallId, ConversationId, RecordingId, TenantId, UserId};
use switchboard_engine::operations::RecordingConsent;
use switchboard_engine::ports::{ClusterBus, MessageStore, SharedRateLimiter};
use switchboard_engine::recording::RecordingRecord;
use switchboard_engine::time::Timestamp;
use switchboard_storage::{
    MemoryClusterHub, MemoryMessageStore, MemoryObjectStore, MemoryPresenceHub, MemoryRateLimiter,
    MemoryRecordingStore,
};

use crate::support::{Client, TestServer, next_of};

/// Two nodes on one in-memory store, hub and rate-limit budgets, configured by `configure`.
async fn two_memory_nodes(configure: impl Fn(&mut Config)) -> (TestServer, TestServer) {
    let (first, second, _) = two_memory_nodes_sharing_recordings(configure).await;
    (first, second)
}

/// [`two_memory_nodes`], also sharing one in-memory recording store and object store, which
/// are returned.
async fn two_memory_nodes_sharing_recordings(
    configure: impl Fn(&mut Config),
) -> (TestServer, TestServer, RecordingPorts) {
    let recordings = RecordingPorts {
        store: Arc::new(MemoryRecordingStore::new()),
        objects: Arc::new(MemoryObjectStore::new()),
    };
    let store: Arc<dyn MessageStore> = Arc::new(MemoryMessageStore::new());
    let hub = MemoryClusterHub::new();
    let rate_limiter: Arc<dyn SharedRateLimiter> =
        Arc::new(MemoryRateLimiter::new(Arc::new(SystemClock)));
    let presence = MemoryPresenceHub::new();
    let node = |name: &str| switchboard::Ports {
        store: Some(Arc::clone(&store)),
        cluster: Some(ClusterPorts {
            bus: Arc::new(hub.node(name)) as Arc<dyn ClusterBus>,
            rate_limiter: Arc::clone(&rate_limiter),
            presence: Arc::new(presence.node(name)),
        }),
        recordings: Some(recordings.clone()),
    };
    let first = TestServer::start_with_ports(&configure, node("node-a")).await;
    let second = TestServer::start_with_ports(&configure, node("node-b")).await;
    (first, second, recordings)
}

/// Reads `message` events until one with text `text`; returns it.
async fn message_with_text(client: &mut Client, text: &str) -> serde_json::Value {
    loop {
        let message = next_of(client, "message").await;
        if message["text"] == text {
            return message;
        }
    }
}

/// The scenario, on any two nodes of one deployment.
pub(crate) async fn two_nodes_serve_one_conversation_live(first: &TestServer, second: &TestServer) {
    let id = first.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = first.connect("acme", "alice").await;
    let mut bob = second.connect("acme", "bob").await;
    assert_eq!(alice.join(&id, None).await["type"], "joined");
    assert_eq!(bob.join(&id, None).await["type"], "joined");

    // Messages both ways, live, in seq order.
    let (_, from_alice) = alice.send_message(&id, "a1", "hello from node a").await;
    assert_eq!(from_alice["status"], "delivered", "{from_alice}");
    let seen_by_bob = message_with_text(&mut bob, "hello from node a").await;
    assert_eq!(seen_by_bob["seq"], from_alice["seq"]);
    let (_, from_bob) = bob.send_message(&id, "b1", "hello from node b").await;
    let seen_by_alice = message_with_text(&mut alice, "hello from node b").await;
    assert_eq!(seen_by_alice["seq"], from_bob["seq"]);
    assert_eq!(
        from_bob["seq"].as_u64(),
        from_alice["seq"].as_u64().map(|seq| seq + 1)
    );

    // Bob's own message reaches him too.
    assert_eq!(
        message_with_text(&mut bob, "hello from node b").await["seq"],
        from_bob["seq"]
    );

    // A burst from both sides: each client sees every entry exactly once, in seq order.
    for n in 0..10 {
        alice
            .send_json(json!({"type": "send", "conversation_id": id,
                "client_id": format!("a-burst-{n}"), "text": format!("a {n}")}))
            .await;
        bob.send_json(json!({"type": "send", "conversation_id": id,
            "client_id": format!("b-burst-{n}"), "text": format!("b {n}")}))
            .await;
    }
    let last = from_bob["seq"].as_u64().expect("seq") + 20;
    let (seen_by_alice, seen_by_bob) = tokio::join!(
        messages_through_resending(&mut alice, &id, last),
        messages_through_resending(&mut bob, &id, last)
    );
    let expected: Vec<u64> = (from_bob["seq"].as_u64().expect("seq") + 1..=last).collect();
    // Each client also saw its own messages live; the stream has no gap and no duplicate.
    assert_eq!(seen_by_alice, expected);
    assert_eq!(seen_by_bob, expected);

    // An edit on node a reaches node b.
    alice
        .send_json(
            json!({"type": "edit", "conversation_id": id, "client_id": "a-edit",
            "message_id": from_alice["message_id"], "text": "hello, edited"}),
        )
        .await;
    let edited = next_of(&mut bob, "message.edited").await;
    assert_eq!(edited["text"], "hello, edited");
    assert_eq!(edited["seq"], last + 1);

    // Typing on node b reaches node a.
    bob.send_json(json!({"type": "typing", "conversation_id": id, "state": "start"}))
        .await;
    let typing = next_of(&mut alice, "typing").await;
    assert_eq!(typing["user_id"], "bob");

    // Carol is added through node a and joins on node b.
    let base = format!("/v1/conversations/{id}");
    let (status, _, added) = (first)
        .post_as(
            "alice",
            &format!("{base}/members"),
            json!({"client_id": "add-carol", "user_ids": ["carol"]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    // Node b has not necessarily heard of the change yet; it reads the store before refusing.
    let mut carol = second.connect("acme", "carol").await;
    assert_eq!(carol.join(&id, None).await["type"], "joined");

    // Bob is removed through node a: on node b he sees it and then nothing more.
    let (status, _, removed) = (first)
        .delete_as("alice", &format!("{base}/members/bob?client_id=rm-bob"))
        .await;
    assert_eq!(status, 200, "{removed}");
    let left = next_of(&mut bob, "member.left").await;
    assert_eq!(left["user_id"], "bob");
    let (_, after) = alice.send_message(&id, "a-after", "bob is gone").await;
    let seen_by_carol = message_with_text(&mut carol, "bob is gone").await;
    assert_eq!(seen_by_carol["seq"], after["seq"]);
    // Anything pushed to bob for the conversation would be queued before this pong.
    bob.send_json(json!({"type": "ping", "id": 99})).await;
    loop {
        let frame = bob.next_json().await;
        assert_ne!(frame["type"], "message", "bob still receives: {frame}");
        if frame["type"] == "pong" {
            break;
        }
    }

    // Alice resumes on the other node and gets exactly what she missed, in order.
    let head = after["seq"].as_u64().expect("seq");
    let mut alice_elsewhere = second.connect("acme", "alice").await;
    let rejoined = alice_elsewhere.join(&id, Some(head - 3)).await;
    assert_eq!(rejoined["type"], "joined");
    let mut replayed = Vec::new();
    while replayed.last() != Some(&head) {
        let frame = alice_elsewhere.next_json().await;
        if let Some(seq) = frame["seq"].as_u64() {
            replayed.push(seq);
        }
    }
    assert_eq!(replayed, vec![head - 2, head - 1, head]);
}

/// Reads `message` events until seq `last` and returns their seqs. A send refused as
/// `unavailable` (its outcome unknown: a Kafka rebalance on a loaded machine can outlast the
/// append timeout) is sent again with its `client_id`, as the protocol tells clients to, and
/// is stored once either way; any other refusal fails the test.
async fn messages_through_resending(
    client: &mut Client,
    conversation_id: &str,
    last: u64,
) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + 3 * crate::support::DEADLINE;
    let mut seen = Vec::new();
    loop {
        let frame = client.next_json().await;
        if frame["type"] == "message" {
            let seq = frame["seq"].as_u64().expect("seq");
            seen.push(seq);
            if seq >= last {
                return seen;
            }
        } else if frame["type"] == "ack" && frame["status"] == "rejected" {
            assert_eq!(frame["code"], "unavailable", "{frame}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "sends are still refused: {frame}"
            );
            client
                .send_json(json!({"type": "send", "conversation_id": conversation_id,
                    "client_id": frame["client_id"], "text": "sent again"}))
                .await;
        }
    }
}

#[tokio::test]
async fn two_nodes_on_one_store_and_bus_serve_one_conversation_live() {
    let (first, second) = two_memory_nodes(|_| {}).await;
    two_nodes_serve_one_conversation_live(&first, &second).await;
}

#[tokio::test]
async fn a_users_rate_limit_holds_across_nodes() {
    let (first, second) = two_memory_nodes(|config| {
        config.limits.messages_per_minute = 3;
        config.limits.messages_burst = 3;
    })
    .await;
    let id = first.create_conversation("acme", "alice", &["bob"]).await;
    let mut on_first = first.connect("acme", "alice").await;
    let mut on_second = second.connect("acme", "alice").await;
    for (on_second_node, client_id) in [(false, "m1"), (true, "m2"), (false, "m3")] {
        let client = if on_second_node {
            &mut on_second
        } else {
            &mut on_first
        };
        let (_, ack) = client.send_message(&id, client_id, "within").await;
        assert_eq!(ack["status"], "delivered", "{ack}");
    }
    // The burst of 3 is the user's, not each node's.
    let (_, ack) = on_second.send_message(&id, "m4", "over").await;
    assert_eq!(ack["status"], "rejected", "{ack}");
    assert_eq!(ack["code"], "rate_limited", "{ack}");
    assert!(
        ack["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0),
        "{ack}"
    );
}

#[tokio::test]
async fn presence_is_the_deployments() {
    let (first, second) = two_memory_nodes(|_| {}).await;
    presence_crosses_nodes(&first, &second).await;
}

/// Erin on one node watches Dana, who connects, goes away and leaves through both nodes. They
/// are users of their own, so the scenario can follow another on the same deployment.
pub(crate) async fn presence_crosses_nodes(first: &TestServer, second: &TestServer) {
    let _id = first.create_conversation("acme", "dana", &["erin"]).await;
    let mut erin = second.connect("acme", "erin").await;
    erin.send_json(json!({"type": "subscribe_presence", "id": "p", "user_ids": ["dana"]}))
        .await;
    let state = next_of(&mut erin, "presence_state").await;
    assert_eq!(state["users"][0]["status"], "offline", "{state}");

    // Dana connects to the other node: Erin hears she is online.
    let dana_on_first = first.connect("acme", "dana").await;
    assert_eq!(next_of(&mut erin, "presence").await["status"], "online");
    // A second session on Erin's node, then the first one closes: she is still online (no
    // frame), and the HTTP API on either node says so.
    let mut dana_on_second = second.connect("acme", "dana").await;
    drop(dana_on_first);
    dana_on_second
        .send_json(json!({"type": "presence", "status": "away"}))
        .await;
    assert_eq!(next_of(&mut erin, "presence").await["status"], "away");
    for node in [&first, &second] {
        let (status, _, body) = (node).get_as("erin", "/v1/presence?user_ids=dana").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["users"][0]["status"], "away", "{body}");
    }
    // Her last session closes: offline, with when.
    drop(dana_on_second);
    let offline = next_of(&mut erin, "presence").await;
    assert_eq!(offline["status"], "offline", "{offline}");
    assert!(offline["last_seen"].as_u64().is_some(), "{offline}");
}

#[tokio::test]
async fn recording_notices_from_one_node_reach_the_sessions_on_the_other() {
    use crate::recordings::{ADMIN, RECORDER, as_role, upload};

    let (first, second, recordings) = two_memory_nodes_sharing_recordings(|_| {}).await;
    let id = first.create_conversation("acme", "alice", &["bob"]).await;
    let mut bob = second.connect("acme", "bob").await;
    assert_eq!(bob.join(&id, None).await["type"], "joined");
    // A recording made on the first node (calls are per node; its record is in the shared
    // store).
    let user = |name: &str| UserId::parse(name).expect("a user");
    let recording_id = RecordingId::from_parts(crate::support::now().as_millis(), 7);
    let record = RecordingRecord::started(
        recording_id,
        CallId::from_parts(crate::support::now().as_millis(), 8),
        ConversationId::parse(&id).expect("an id"),
        user("alice"),
        ["alice", "bob"]
            .into_iter()
            .map(|name| RecordingConsent {
                user_id: user(name),
                at: crate::support::now(),
            })
            .collect(),
        Timestamp(crate::support::now().as_millis()),
    );
    recordings
        .store
        .create_recording(&TenantId::parse("acme").expect("a tenant"), &record)
        .await
        .expect("stored");

    let (status, body) = upload(
        &first,
        RECORDER,
        &recording_id.to_string(),
        Some("audio/ogg"),
        vec![1, 2, 3],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let stored = next_of(&mut bob, "recording.media_stored").await;
    assert_eq!(stored["recording_id"], recording_id.to_string());
    assert_eq!(stored["bytes"], 3);
    let (status, _) = as_role(
        &first,
        Method::DELETE,
        ADMIN,
        &format!("/v1/recordings/{recording_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let erased = next_of(&mut bob, "recording.erased").await;
    assert_eq!(erased["recording_id"], recording_id.to_string());
    assert_eq!(erased["conversation_id"], id.as_str());
}
