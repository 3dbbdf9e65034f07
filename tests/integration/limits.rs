//! Limits and backpressure: the rate limit, the per-user connection cap, and a slow consumer
//! that is disconnected while everyone else carries on.

use futures_util::StreamExt;
use serde_json::{Value, json};

use tokio::net::TcpSocket;

use crate::support::{Client, DEADLINE, Ended, TestServer, eventually, token};

#[tokio::test]
async fn the_rate_limit_rejects_with_retry_after_over_websocket_and_http() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_minute = 60;
        config.limits.messages_burst = 2;
    })
    .await;
    let id = server.create_conversation("acme", "alice", &[]).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, first) = alice.send_message(&id, "r1", "one").await;
    let (_, second) = alice.send_message(&id, "r2", "two").await;
    assert_eq!(
        (first["status"].as_str(), second["status"].as_str()),
        (Some("delivered"), Some("delivered"))
    );
    let (pending, limited) = alice.send_message(&id, "r3", "three").await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(limited["status"], "rejected");
    assert_eq!(limited["code"], "rate_limited");
    let retry_after_ms = limited["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(
        retry_after_ms > 0 && retry_after_ms <= 1000,
        "{retry_after_ms}"
    );

    // The bucket is per user, shared by HTTP.
    let response = server
        .send_message_over_http("alice", &id, "r4", "four")
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["retry_after_ms"].as_u64().expect("retry_after_ms") > 0);
    // Nothing was stored for the refused sends.
    assert_eq!(server.history("acme", "alice", &id).await.len(), 2);
}

#[tokio::test]
async fn each_action_class_has_its_own_limit_and_a_tenant_may_have_its_own_rates() {
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_minute = 60;
        config.limits.messages_burst = 1;
        config.limits.operations_per_minute = 60;
        config.limits.operations_burst = 1;
        config.limits.tenant_rates = vec![switchboard::config::TenantRatesConfig {
            tenant: "roomy".to_owned(),
            messages_burst: Some(3),
            ..Default::default()
        }];
    })
    .await;
    let id = server.create_conversation("acme", "alice", &[]).await;
    let mut alice = server.connect("acme", "alice").await;
    let (_, sent) = alice.send_message(&id, "m1", "one").await;
    assert_eq!(sent["status"], "delivered");
    let (_, limited) = alice.send_message(&id, "m2", "two").await;
    assert_eq!(limited["code"], "rate_limited");
    // Reactions are operations: their bucket is still full.
    let message_id = sent["message_id"].as_str().expect("id");
    let react = |client_id: &str| json!({"type": "react", "conversation_id": id, "client_id": client_id, "message_id": message_id, "emoji": "👍"});
    alice.send_json(react("o1")).await;
    loop {
        let frame = alice.next_json().await;
        if frame["type"] == "ack" && frame["status"] != "pending" {
            assert_eq!(frame["status"], "delivered", "{frame}");
            break;
        }
    }
    alice.send_json(react("o2")).await;
    loop {
        let frame = alice.next_json().await;
        if frame["type"] == "ack" && frame["status"] != "pending" {
            assert_eq!(frame["code"], "rate_limited");
            break;
        }
    }

    // Users of the tenant with its own rates get three sends at once.
    let roomy = server.create_conversation("roomy", "alice", &[]).await;
    let mut roomy_alice = server.connect("roomy", "alice").await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let (_, ack) = roomy_alice
            .send_message(&roomy, &format!("r{n}"), "hi")
            .await;
        statuses.push(ack["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(
        statuses,
        ["delivered", "delivered", "delivered", "rejected"]
    );
}

#[tokio::test]
async fn connections_per_user_are_capped() {
    let server = TestServer::start_with(|config| config.limits.max_connections_per_user = 2).await;
    let _first = server.connect("acme", "alice").await;
    let second = server.connect("acme", "alice").await;
    let mut third = Client::connect_raw(&server.ws_url(&token("acme", "alice"))).await;
    let (frames, ended) = third.read_until_end().await;
    assert_eq!(frames[0]["code"], "too_many_connections");
    match ended {
        Ended::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 4009),
        other => panic!("expected close 4009, got {other:?}"),
    }
    // Another user is unaffected, and closing a connection frees its slot.
    let _bob = server.connect("acme", "bob").await;
    drop(second);
    eventually("the closed connection's slot to be released", || async {
        let mut client = Client::connect_raw(&server.ws_url(&token("acme", "alice"))).await;
        let frame = client.next_json().await;
        (frame["type"] == "welcome").then_some(())
    })
    .await;
}

/// Connects with a tiny receive buffer and never reads, so the server's queue for it fills.
async fn connect_slow_reader(server: &TestServer, user: &str) -> crate::support::Socket {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let stream = socket.connect(server.addr).await.expect("tcp connect");
    stream.set_nodelay(true).expect("nodelay");
    let (socket, _) = tokio_tungstenite::client_async(
        server.ws_url(&token("acme", user)),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .expect("upgrade");
    socket
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_and_others_are_unaffected() {
    const N_MESSAGES: usize = 2000;
    let server =
        TestServer::start_with(|config| config.limits.outbound_queue_bytes = 64 * 1024).await;
    let id = server
        .create_conversation("acme", "alice", &["bob", "slow"])
        .await;
    let mut bob = server.connect("acme", "bob").await;
    bob.join(&id, None).await;
    let mut slow = connect_slow_reader(&server, "slow").await;
    // Read the welcome, join, read the joined reply; then stop reading entirely.
    let welcome = tokio::time::timeout(DEADLINE, slow.next())
        .await
        .expect("welcome")
        .expect("open")
        .expect("frame");
    assert!(welcome.to_text().expect("text").contains("welcome"));
    let mut slow = Client { socket: slow };
    assert_eq!(slow.join(&id, None).await["type"], "joined");

    // Alice waits for each ack, so the pace is one a round trip: Bob keeps up easily, the reader
    // that stopped reading cannot.
    let text = "x".repeat(4000);
    let mut alice = server.connect("acme", "alice").await;
    let sender = tokio::spawn(async move {
        for n in 0..N_MESSAGES {
            let (_, ack) = alice.send_message(&id, &format!("m{n}"), &text).await;
            assert_eq!(ack["status"], "delivered");
        }
        alice
    });
    // Bob reads everything, in order, while the slow reader's queue overflows.
    let received = bob.messages_through(N_MESSAGES as u64).await;
    let expected: Vec<u64> = (1..=N_MESSAGES as u64).collect();
    assert_eq!(crate::support::seqs(&received), expected);
    let _alice = sender.await.expect("sender finished");

    let (frames, ended) = slow.read_until_end().await;
    let n_messages_seen = frames
        .iter()
        .filter(|frame| frame["type"] == "message")
        .count();
    assert!(
        n_messages_seen < N_MESSAGES,
        "the slow reader was not cut off"
    );
    match ended {
        Ended::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 4008),
        Ended::Closed(None) => panic!("closed without a code"),
        // The close frame may not fit through a full socket; the connection is dropped then.
        Ended::Dropped => {}
    }
    // The server forgets the slow session (alice and bob remain).
    eventually("the slow session to end", || async {
        let n_sessions = server.server().system().n_sessions().await.expect("count");
        (n_sessions == 2).then_some(())
    })
    .await;
}
