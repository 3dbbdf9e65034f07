//! The crash test: the real binary is killed with SIGKILL in the middle of a stream of sends and
//! restarted on the same data directory. Every message that was acknowledged `delivered` must
//! be there with the same seq and id, seqs must have no gap and no reuse, and re-sending every
//! `client_id` (acknowledged or not) must not create a duplicate. The scenario runs on the
//! embedded store here and on MongoDB in the `mongodb` module.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, DEADLINE, json_answer, serve_binary, token};

const N_MESSAGES: usize = 400;
const KILL_AFTER_N_DELIVERED: usize = 120;

pub(crate) struct Binary {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Binary {
    /// Connects Alice over WebSocket and reads her welcome.
    async fn connect_alice(&self) -> Client {
        let url = format!("ws://{}/v1/ws?token={}", self.addr, token("acme", "alice"));
        let mut alice = Client::connect_raw(&url).await;
        assert_eq!(alice.next_json().await["type"], "welcome");
        alice
    }
}

/// Starts `switchboard serve` on an ephemeral port, with `settings` as extra environment
/// variables, and reads the bound address from its log.
pub(crate) async fn spawn_binary(
    data_dir: &std::path::Path,
    settings: &[(String, String)],
) -> Binary {
    let (child, mut lines) = serve_binary(data_dir, "json", |command| {
        command
            .env("SWITCHBOARD__LIMITS__MESSAGES_PER_MINUTE", "0")
            .envs(settings.iter().map(|(key, value)| (key, value)))
    });
    let addr = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("readable log") {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if let Some(addr) = entry["fields"]["local_addr"].as_str() {
                return addr.to_owned();
            }
        }
        panic!("the binary exited before listening");
    })
    .await
    .expect("the binary listens within the deadline");
    // Keep draining the log so the child never blocks on a full pipe.
    #[allow(clippy::disallowed_methods)]
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Binary { child, addr }
}

/// Creates a group conversation of Alice's with Bob in it on the binary at `addr`; returns its
/// id.
pub(crate) async fn conversation_of_alice_with_bob(http: &reqwest::Client, addr: &str) -> String {
    let created = json_answer(
        http.post(format!("http://{addr}/v1/conversations"))
            .bearer_auth(token("acme", "alice"))
            .json(&json!({"kind": "group", "members": ["bob"]})),
    )
    .await;
    created["conversation_id"].as_str().expect("id").to_owned()
}

pub(crate) async fn history(http: &reqwest::Client, addr: &str, id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = 0u64;
    loop {
        let page = json_answer(
            http.get(format!(
                "http://{addr}/v1/conversations/{id}/messages?after_seq={after}&limit=200"
            ))
            .bearer_auth(token("acme", "alice")),
        )
        .await;
        let page_items = page["items"].as_array().expect("items").clone();
        let Some(last) = page_items.last() else {
            return items;
        };
        after = last["seq"].as_u64().expect("seq");
        items.extend(page_items);
    }
}

fn check_contiguous(history: &[Value]) {
    for (index, message) in history.iter().enumerate() {
        assert_eq!(
            message["seq"].as_u64(),
            Some(index as u64 + 1),
            "gap or reuse at position {index}"
        );
    }
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9_and_nothing_is_duplicated() {
    kill_9_mid_stream_loses_nothing_acknowledged(&[]).await;
}

/// Sends a stream of messages, kills the binary (started with `settings`) with SIGKILL after
/// some are acknowledged, restarts it, and checks every acknowledged message is stored as
/// acknowledged, seqs have no gap, and re-sending every `client_id` duplicates nothing.
pub(crate) async fn kill_9_mid_stream_loses_nothing_acknowledged(settings: &[(String, String)]) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let mut binary = spawn_binary(data_dir.path(), settings).await;
    let id = conversation_of_alice_with_bob(&http, &binary.addr).await;

    let mut alice = binary.connect_alice().await;
    for n in 0..N_MESSAGES {
        alice
            .send_json(json!({"type": "send", "conversation_id": id, "client_id": format!("crash-{n}"), "text": format!("message {n}")}))
            .await;
    }
    // Collect delivered acks; kill the server mid-stream.
    let mut delivered: HashMap<String, (u64, String)> = HashMap::new();
    let mut killed = false;
    loop {
        let next = tokio::time::timeout(DEADLINE, alice.socket.next())
            .await
            .expect("frames keep coming until the kill");
        let Some(Ok(Message::Text(text))) = next else {
            break;
        };
        let frame: Value = serde_json::from_str(&text).expect("json");
        if frame["type"] == "ack" && frame["status"] == "delivered" {
            delivered.insert(
                frame["client_id"].as_str().expect("client id").to_owned(),
                (
                    frame["seq"].as_u64().expect("seq"),
                    frame["message_id"].as_str().expect("id").to_owned(),
                ),
            );
            if delivered.len() == KILL_AFTER_N_DELIVERED && !killed {
                binary.child.start_kill().expect("SIGKILL sent");
                killed = true;
            }
        }
        if delivered.len() == N_MESSAGES {
            break;
        }
    }
    assert!(killed, "the server was killed mid-stream");
    let _ = binary.child.wait().await;
    assert!(delivered.len() >= KILL_AFTER_N_DELIVERED);

    // Restart on the same data directory (and the same storage settings).
    let binary = spawn_binary(data_dir.path(), settings).await;
    let after_restart = history(&http, &binary.addr, &id).await;
    check_contiguous(&after_restart);
    let stored: HashMap<String, (u64, String)> = after_restart
        .iter()
        .map(|message| {
            (
                message["client_id"].as_str().expect("client id").to_owned(),
                (
                    message["seq"].as_u64().expect("seq"),
                    message["message_id"].as_str().expect("id").to_owned(),
                ),
            )
        })
        .collect();
    for (client_id, acked) in &delivered {
        assert_eq!(
            stored.get(client_id),
            Some(acked),
            "acknowledged {client_id} was lost or changed"
        );
    }

    // Re-send everything: acknowledged keys resolve to their messages, the rest are stored once.
    // A re-send refused as `unavailable` (a Kafka rebalance on a loaded machine can outlast the
    // append timeout) is sent again, as the protocol tells clients to.
    let mut alice = binary.connect_alice().await;
    for n in 0..N_MESSAGES {
        let client_id = format!("crash-{n}");
        let deadline = tokio::time::Instant::now() + 3 * DEADLINE;
        let ack = loop {
            let (_, ack) = alice
                .send_message(&id, &client_id, &format!("message {n}"))
                .await;
            if ack["code"] != "unavailable" || tokio::time::Instant::now() >= deadline {
                break ack;
            }
        };
        assert_eq!(ack["status"], "delivered", "{ack}");
        if let Some((seq, message_id)) = delivered.get(&client_id) {
            assert_eq!(ack["seq"].as_u64(), Some(*seq));
            assert_eq!(ack["message_id"].as_str(), Some(message_id.as_str()));
        }
    }
    let final_history = history(&http, &binary.addr, &id).await;
    check_contiguous(&final_history);
    assert_eq!(final_history.len(), N_MESSAGES);
    let distinct: HashSet<&str> = final_history
        .iter()
        .map(|message| message["client_id"].as_str().expect("id"))
        .collect();
    assert_eq!(distinct.len(), N_MESSAGES, "a client_id was stored twice");
}
