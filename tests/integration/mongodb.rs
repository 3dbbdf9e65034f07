//! The engine on MongoDB (built with the `mongodb` feature; `./scripts/test` runs these against
//! the server `scripts/test-services` starts, named by `SWITCHBOARD_TEST_MONGODB_URI`).
//!
//! One node: messages, edits and history work end to end and `/ready` reports the store; the
//! kill -9 scenario of `crash` loses nothing acknowledged. Two nodes on one database: sends
//! through both land in one gapless seq stream, and each node serves everything the other
//! stored. Every test uses a database of its own and drops it at the end.
//!
//! With the `redis` and `kafka` features: the two-node scenario of `cluster.rs` over MongoDB and
//! Redis, and again with every append going through Kafka; the kill -9 scenario through Kafka;
//! Redis killed and restarted under two running nodes; a server that is away at start; and a
//! MongoDB server killed with SIGKILL and restarted under a running engine (sends meanwhile
//! refused as `unavailable`, `/ready` 503, service back by itself, nothing acknowledged lost,
//! re-sends stored once). With `s3`: a recorded call with its metadata in MongoDB and its media
//! on S3, erased from both. With `redis`: search on two nodes, each with its own index fed from
//! the shared log, finds what was sent through either.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use switchboard::config::{Config, MongodbStorageConfig, StorageBackend};

use crate::support::{TestServer, next_of, seqs, token};
use switchboard_testing::mongodb_uri;

/// A database name no other test (or earlier run) uses.
fn fresh_database() -> String {
    static DATABASES: AtomicU64 = AtomicU64::new(0);
    format!(
        "integration_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    )
}

/// A node of a two-node deployment on MongoDB database `database` and the shared test Redis
/// server, with Redis keys under the database's name so tests running at once cannot hear each
/// other's notices or see each other's presence.
#[cfg(feature = "redis")]
fn on_mongodb_and_redis(database: &str, node: &str) -> impl FnOnce(&mut Config) + use<> {
    let redis_url = switchboard_testing::redis_url();
    let on_mongodb = on_mongodb(database);
    let (prefix, node_id) = (database.to_owned(), format!("{database}-{node}"));
    move |config: &mut Config| {
        on_mongodb(config);
        config.cluster.redis_url = Some(redis_url);
        config.cluster.key_prefix = prefix;
        config.cluster.node_id = Some(node_id);
    }
}

fn on_mongodb(database: &str) -> impl FnOnce(&mut Config) + use<> {
    let database = database.to_owned();
    move |config| {
        config.storage.backend = StorageBackend::Mongodb(MongodbStorageConfig {
            uri: mongodb_uri(),
            database,
            ..MongodbStorageConfig::default()
        });
    }
}

/// The environment that puts a spawned binary on `database` of the test MongoDB.
fn binary_on_mongodb(database: &str) -> Vec<(String, String)> {
    [
        ("BACKEND", "mongodb".to_owned()),
        ("MONGODB_URI", mongodb_uri()),
        ("MONGODB_DATABASE", database.to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("SWITCHBOARD__STORAGE__{key}"), value))
    .collect()
}

pub(crate) async fn drop_database(database: &str) {
    let store = switchboard_storage::MongoMessageStore::connect(&mongodb_uri(), database)
        .await
        .expect("MongoDB answers");
    store
        .database()
        .drop()
        .await
        .expect("the database is dropped");
}

#[tokio::test]
async fn mongodb_engine_serves_sends_edits_and_history_and_is_ready() {
    let database = fresh_database();
    let server = TestServer::start_with(on_mongodb(&database)).await;
    assert_eq!(ready_status(&server).await.0, 200);

    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    assert_eq!(alice.join(&id, Some(0)).await["type"], "joined");
    assert_eq!(bob.join(&id, Some(0)).await["type"], "joined");

    let (_, first) = alice.send_message(&id, "m1", "hello").await;
    assert_eq!(first["status"], "delivered", "{first}");
    let (_, second) = alice.send_message(&id, "m2", "again").await;
    assert_eq!(second["seq"], 2);
    assert_eq!(seqs(&bob.messages_through(2).await), vec![1, 2]);

    alice
        .send_json(
            json!({"type": "edit", "conversation_id": id, "client_id": "e1",
            "message_id": first["message_id"], "text": "hello, edited"}),
        )
        .await;
    let edited = next_of(&mut bob, "message.edited").await;
    assert_eq!(edited["seq"], 3);

    let history = server.history("acme", "bob", &id).await;
    let texts: Vec<&str> = history
        .iter()
        .map(|message| message["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, vec!["hello, edited", "again"]);
    // Another tenant sees nothing of it.
    let foreign = server
        .request(
            reqwest::Method::GET,
            &format!("/v1/conversations/{id}/messages"),
            &token("globex", "alice"),
            None,
        )
        .await;
    assert_eq!(foreign.status(), 404);
    drop(server);
    drop_database(&database).await;
}

#[tokio::test]
async fn mongodb_two_nodes_share_one_gapless_seq_stream_and_serve_each_others_history() {
    const N_PER_NODE: usize = 25;
    let database = fresh_database();
    let first = TestServer::start_with(on_mongodb(&database)).await;
    let second = TestServer::start_with(on_mongodb(&database)).await;
    let id = first.create_conversation("acme", "alice", &["bob"]).await;

    // Alice sends through the first node while Bob sends through the second.
    let mut alice = first.connect("acme", "alice").await;
    let mut bob = second.connect("acme", "bob").await;
    assert_eq!(alice.join(&id, None).await["type"], "joined");
    assert_eq!(bob.join(&id, None).await["type"], "joined");
    for n in 0..N_PER_NODE {
        for (client, name) in [(&mut alice, "alice"), (&mut bob, "bob")] {
            client
                .send_json(json!({"type": "send", "conversation_id": id,
                    "client_id": format!("{name}-{n}"), "text": format!("{name} {n}")}))
                .await;
        }
    }
    let mut acked = BTreeSet::new();
    for client in [&mut alice, &mut bob] {
        let mut delivered = 0;
        while delivered < N_PER_NODE {
            let frame = client.next_json().await;
            if frame["type"] == "ack" && frame["status"] == "delivered" {
                delivered += 1;
                assert!(acked.insert(frame["seq"].as_u64().expect("seq")), "{frame}");
            }
        }
    }
    let all: Vec<u64> = (1..=2 * N_PER_NODE as u64).collect();
    assert_eq!(acked.into_iter().collect::<Vec<u64>>(), all);

    for node in [&first, &second] {
        let history: Vec<Value> = node.history("acme", "alice", &id).await;
        assert_eq!(seqs(&history), all);
        let client_ids: BTreeSet<&str> = history
            .iter()
            .map(|message| message["client_id"].as_str().expect("client id"))
            .collect();
        assert_eq!(client_ids.len(), 2 * N_PER_NODE);
    }
    drop((first, second));
    drop_database(&database).await;
}

#[tokio::test]
async fn mongodb_acknowledged_messages_survive_kill_9_and_nothing_is_duplicated() {
    let database = fresh_database();
    crate::crash::kill_9_mid_stream_loses_nothing_acknowledged(&binary_on_mongodb(&database)).await;
    drop_database(&database).await;
}

#[tokio::test]
async fn mongodb_unreachable_at_start_the_engine_starts_ready_says_why_and_sends_fail_cleanly() {
    // A port nobody listens on.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port can be bound")
        .local_addr()
        .expect("bound")
        .port();
    let server = TestServer::start_with(|config| {
        config.storage.backend = StorageBackend::Mongodb(MongodbStorageConfig {
            uri: format!("mongodb://127.0.0.1:{closed_port}/?directConnection=true"),
            database: fresh_database(),
            server_timeout_ms: 200,
            ..MongodbStorageConfig::default()
        });
    })
    .await;
    let (status, body) = ready_status(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| message.contains("MongoDB")),
        "{body}"
    );
    let created = server
        .request(
            reqwest::Method::POST,
            "/v1/conversations",
            &token("acme", "alice"),
            Some(&json!({"kind": "group", "members": ["bob"]})),
        )
        .await;
    assert_eq!(created.status(), 503);
    let body: Value = created.json().await.expect("json");
    assert_eq!(body["code"], "unavailable", "{body}");
}

/// The two-node scenario of `cluster` on the real servers: MongoDB as the shared store and
/// Redis pub/sub as the bus.
#[cfg(feature = "redis")]
#[tokio::test]
async fn mongodb_and_redis_two_nodes_serve_one_conversation_live() {
    let database = fresh_database();
    let first = TestServer::start_with(on_mongodb_and_redis(&database, "node-a")).await;
    let second = TestServer::start_with(on_mongodb_and_redis(&database, "node-b")).await;
    // Both buses are connected before anything is sent (the probe says so).
    for server in [&first, &second] {
        crate::support::eventually("the node is ready", || async {
            (ready_status(server).await.0 == 200).then_some(())
        })
        .await;
    }
    crate::cluster::two_nodes_serve_one_conversation_live(&first, &second).await;
    crate::cluster::presence_crosses_nodes(&first, &second).await;
    drop((first, second));
    drop_database(&database).await;
}

/// A SecantusDB server of this test's own (so it can be killed), stopped when dropped.
struct OwnMongodb {
    child: std::process::Child,
}

impl OwnMongodb {
    fn start(port: u16, directory: &std::path::Path) -> Self {
        let program = switchboard_testing::server_variable("SWITCHBOARD_TEST_SECANTUSD", "mongodb");
        let child = std::process::Command::new(&program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(directory)
            .args(["--log-level", "WARNING"])
            // Without it the stand-in acknowledges `j: true` before its log is on disk, which
            // MongoDB never does (see scripts/test-services).
            .arg("--sync-on-commit")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{program} starts: {error}"));
        Self { child }
    }

    /// SIGKILL: the server gets no chance to flush anything it had not made durable.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnMongodb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready_status(server: &TestServer) -> (u16, Value) {
    let response = server.get_without_token("/ready").await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn mongodb_killed_and_restarted_sends_meanwhile_are_rejected_and_nothing_is_lost_or_doubled()
{
    const N: usize = 5;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("bound")
        .port();
    let data = tempfile::tempdir().expect("temp dir");
    let mongodb = OwnMongodb::start(port, data.path());
    let server = TestServer::start_with(|config| {
        config.storage.backend = StorageBackend::Mongodb(MongodbStorageConfig {
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            database: "faults".to_owned(),
            server_timeout_ms: 300,
            breaker_max_cooldown_ms: 500,
            ..MongodbStorageConfig::default()
        });
    })
    .await;
    crate::support::eventually("MongoDB is up", || async {
        (ready_status(&server).await.0 == 200).then_some(())
    })
    .await;

    let id = server.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = server.connect("acme", "alice").await;
    assert_eq!(alice.join(&id, None).await["type"], "joined");
    let mut acknowledged = Vec::new();
    for n in 0..N {
        let (_, ack) = alice
            .send_message(&id, &format!("before-{n}"), "before")
            .await;
        assert_eq!(ack["status"], "delivered", "{ack}");
        acknowledged.push(ack);
    }

    mongodb.kill();
    // Nothing is acknowledged while MongoDB is away: every send is rejected as unavailable
    // (outcome unknown), and the probe says what is missing.
    for n in 0..N {
        let (_, ack) = alice
            .send_message(&id, &format!("during-{n}"), "during")
            .await;
        assert_eq!(ack["status"], "rejected", "{ack}");
        assert_eq!(ack["code"], "unavailable", "{ack}");
    }
    let (status, body) = ready_status(&server).await;
    assert_eq!(status, 503, "{body}");

    // Back on the same data: service resumes by itself.
    let _mongodb = OwnMongodb::start(port, data.path());
    crate::support::eventually("the engine is ready again", || async {
        (ready_status(&server).await.0 == 200).then_some(())
    })
    .await;
    // Re-sending the rejected requests stores each exactly once; new sends work.
    for n in 0..N {
        let (_, ack) = alice
            .send_message(&id, &format!("during-{n}"), "during")
            .await;
        assert_eq!(ack["status"], "delivered", "{ack}");
        let (_, ack) = alice
            .send_message(&id, &format!("after-{n}"), "after")
            .await;
        assert_eq!(ack["status"], "delivered", "{ack}");
    }

    let history = server.history("acme", "alice", &id).await;
    assert_eq!(seqs(&history), (1..=3 * N as u64).collect::<Vec<u64>>());
    let client_ids: BTreeSet<&str> = history
        .iter()
        .map(|message| message["client_id"].as_str().expect("client id"))
        .collect();
    assert_eq!(client_ids.len(), 3 * N, "no request was stored twice");
    for ack in &acknowledged {
        let stored = history
            .iter()
            .find(|message| message["client_id"] == ack["client_id"])
            .expect("an acknowledged message survives the restart");
        assert_eq!(stored["seq"], ack["seq"]);
        assert_eq!(stored["message_id"], ack["message_id"]);
    }
}

/// Settings for the Kafka pipeline with topics and a group no other test uses.
#[cfg(feature = "kafka")]
pub(crate) fn on_kafka(name: &str) -> Vec<(String, String)> {
    let brokers = switchboard_testing::kafka_brokers();
    [
        ("BROKERS", brokers),
        ("MESSAGES_TOPIC", format!("{name}.messages")),
        ("REPLIES_TOPIC", format!("{name}.persisted")),
        ("GROUP_ID", format!("{name}.persisters")),
        ("PARTITIONS", "4".to_owned()),
        ("SESSION_TIMEOUT_MS", "2000".to_owned()),
        ("REPLY_TIMEOUT_MS", "20000".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (format!("SWITCHBOARD__KAFKA__{key}"), value))
    .collect()
}

/// Sets the Kafka pipeline's keys in `config` from `settings` ([`on_kafka`]'s, as
/// `SWITCHBOARD__KAFKA__*` variables).
#[cfg(feature = "kafka")]
pub(crate) fn apply_kafka(config: &mut Config, settings: Vec<(String, String)>) {
    for (key, value) in settings {
        match key.trim_start_matches("SWITCHBOARD__KAFKA__") {
            "BROKERS" => config.kafka.brokers = Some(value),
            "MESSAGES_TOPIC" => config.kafka.messages_topic = value,
            "REPLIES_TOPIC" => config.kafka.replies_topic = value,
            "GROUP_ID" => config.kafka.group_id = value,
            "PARTITIONS" => config.kafka.partitions = value.parse().expect("a number"),
            "SESSION_TIMEOUT_MS" => {
                config.kafka.session_timeout_ms = value.parse().expect("a number");
            }
            "REPLY_TIMEOUT_MS" => {
                config.kafka.reply_timeout_ms = value.parse().expect("a number");
            }
            other => panic!("unknown Kafka setting {other}"),
        }
    }
}

/// The two-node scenario with every append going through Kafka to MongoDB, and Redis as the
/// bus: the production topology.
#[cfg(all(feature = "kafka", feature = "redis"))]
#[tokio::test]
async fn mongodb_kafka_and_redis_two_nodes_serve_one_conversation_live() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,rdkafka=info")
        .with_test_writer()
        .try_init();
    let database = fresh_database();
    let (first, second) = two_kafka_nodes(&database).await;
    crate::cluster::two_nodes_serve_one_conversation_live(&first, &second).await;
    drop((first, second));
    drop_database(&database).await;
}

/// Search with appends going through Kafka: each node's index follows the store's event log
/// (the order the persisters wrote MongoDB in, which no entry can skip), so a message sent
/// through either node is found through both.
#[cfg(all(feature = "kafka", feature = "redis"))]
#[tokio::test]
async fn mongodb_kafka_two_nodes_each_index_the_shared_log_and_find_each_others_messages() {
    let database = fresh_database();
    let (first, second) = two_kafka_nodes(&database).await;
    two_nodes_find_each_others_messages(&first, &second).await;
    drop((first, second));
    drop_database(&database).await;
}

/// Two nodes on MongoDB, Redis and the Kafka pipeline, ready, with the persisters' consumer
/// group settled.
#[cfg(all(feature = "kafka", feature = "redis"))]
async fn two_kafka_nodes(database: &str) -> (TestServer, TestServer) {
    let kafka: Vec<(String, String)> = on_kafka(database);
    let node = |name: &'static str| {
        let on_mongodb_and_redis = on_mongodb_and_redis(database, name);
        let kafka = kafka.clone();
        move |config: &mut Config| {
            on_mongodb_and_redis(config);
            apply_kafka(config, kafka);
        }
    };
    let first = TestServer::start_with(node("node-a")).await;
    let second = TestServer::start_with(node("node-b")).await;
    for server in [&first, &second] {
        crate::support::eventually("the node is ready", || async {
            (ready_status(server).await.0 == 200).then_some(())
        })
        .await;
    }
    // The persisters' consumer group settles (both nodes joined, partitions assigned) before
    // the scenario, which expects every send to be answered: until then an append may wait
    // out a rebalance and be rejected as unavailable, and is re-sent with its client_id.
    let warm_up = first.create_conversation("acme", "alice", &[]).await;
    for (n, server) in [&first, &second, &first, &second].into_iter().enumerate() {
        let mut alice = server.connect("acme", "alice").await;
        let client_id = format!("warm-up-{n}");
        let deadline = tokio::time::Instant::now() + 3 * crate::support::DEADLINE;
        loop {
            let (_, ack) = alice.send_message(&warm_up, &client_id, "warm-up").await;
            if ack["status"] == "delivered" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pipeline answers within the deadline: {ack}"
            );
        }
    }
    (first, second)
}

/// The kill -9 scenario with appends going through Kafka: the engine node dies with records
/// produced but not yet persisted or answered; after the restart nothing acknowledged is lost
/// and nothing is stored twice.
#[cfg(feature = "kafka")]
#[tokio::test]
async fn mongodb_kafka_acknowledged_messages_survive_kill_9_and_nothing_is_duplicated() {
    let database = fresh_database();
    let mut settings = binary_on_mongodb(&database);
    settings.extend([(
        "SWITCHBOARD__CLUSTER__NODE_ID".to_owned(),
        format!("crash-{}", std::process::id()),
    )]);
    settings.extend(on_kafka(&database));
    crate::crash::kill_9_mid_stream_loses_nothing_acknowledged(&settings).await;
    drop_database(&database).await;
}

/// Redis is killed under two running nodes and restarted empty: sends keep being acknowledged
/// (the store has them), `/ready` says the bus is missing, and when Redis is back the other
/// node's client gets what it missed, in order, then live again, nothing lost or doubled; and
/// presence is reported again.
#[cfg(feature = "redis")]
#[tokio::test]
async fn mongodb_redis_killed_and_restarted_under_two_nodes_loses_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("bound")
        .port();
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let redis = switchboard_testing::OwnRedis::start(port, redis_dir.path());
    let database = fresh_database();
    let node = |name: &'static str| {
        let on_mongodb = on_mongodb(&database);
        move |config: &mut Config| {
            on_mongodb(config);
            config.cluster.redis_url = Some(format!("redis://127.0.0.1:{port}"));
            config.cluster.node_id = Some(format!("{name}-redis-fault-{}", std::process::id()));
        }
    };
    let first = TestServer::start_with(node("node-a")).await;
    let second = TestServer::start_with(node("node-b")).await;
    let all_ready = |status: u16| {
        let (first, second) = (&first, &second);
        async move {
            for server in [first, second] {
                crate::support::eventually("the probe's answer", || async {
                    (ready_status(server).await.0 == status).then_some(())
                })
                .await;
            }
        }
    };
    all_ready(200).await;

    let id = first.create_conversation("acme", "alice", &["bob"]).await;
    let mut alice = first.connect("acme", "alice").await;
    let mut bob = second.connect("acme", "bob").await;
    assert_eq!(alice.join(&id, None).await["type"], "joined");
    assert_eq!(bob.join(&id, None).await["type"], "joined");
    let (_, before) = alice.send_message(&id, "before", "before the outage").await;
    assert_eq!(before["status"], "delivered", "{before}");
    assert_eq!(seqs(&bob.messages_through(1).await), vec![1]);

    drop(redis);
    all_ready(503).await;
    let (_, during) = alice.send_message(&id, "during", "during the outage").await;
    assert_eq!(during["status"], "delivered", "the store has it: {during}");

    let _redis = switchboard_testing::OwnRedis::start(port, redis_dir.path());
    all_ready(200).await;
    // Bob's node caught up when its bus reconnected; what follows is live again.
    let (_, after) = alice.send_message(&id, "after", "after the outage").await;
    assert_eq!(after["status"], "delivered", "{after}");
    assert_eq!(seqs(&bob.messages_through(3).await), vec![2, 3]);
    let history = second.history("acme", "bob", &id).await;
    assert_eq!(seqs(&history), vec![1, 2, 3]);
    // The restarted Redis kept nothing (no persistence): alice's node reports her again once
    // its bus is back, so the other node sees her online.
    crate::support::eventually("alice is online again in the directory", || async {
        let (status, _, body) = second.get_as("bob", "/v1/presence?user_ids=alice").await;
        (status == 200 && body["users"][0]["status"] == "online").then_some(())
    })
    .await;
    drop((first, second));
    drop_database(&database).await;
}

/// A recorded call on MongoDB with its media on a real S3 service (`SWITCHBOARD_TEST_S3_*`,
/// started by `scripts/test-services start s3`): the record is kept in MongoDB, the media in a
/// bucket of the test's own, and the erase removes both.
#[cfg(feature = "s3")]
#[tokio::test]
async fn mongodb_and_s3_keep_a_recording_and_erase_it_everywhere() {
    use crate::calls::{call_answered_by, consent, expect_frame, request_recording};
    use crate::recordings::{ADMIN, RECORDER, as_role, record_when, upload};
    use switchboard::config::{ObjectStoreConfig, S3ObjectStoreConfig};
    use switchboard_engine::ids::{RecordingId, TenantId};
    use switchboard_engine::recording::{ObjectKey, ObjectStore};

    let variable = switchboard_testing::s3_variable;
    let (endpoint, access_key, secret_key) = (
        variable("SWITCHBOARD_TEST_S3_ENDPOINT"),
        variable("SWITCHBOARD_TEST_S3_ACCESS_KEY"),
        variable("SWITCHBOARD_TEST_S3_SECRET_KEY"),
    );
    let database = fresh_database();
    let bucket = database.replace('_', "-");
    let on_mongodb = on_mongodb(&database);
    let s3 = (
        endpoint.clone(),
        access_key.clone(),
        secret_key.clone(),
        bucket.clone(),
    );
    let server = TestServer::start_with(move |config| {
        on_mongodb(config);
        config.objects.store =
            ObjectStoreConfig::S3(S3ObjectStoreConfig::new(s3.0, s3.3, s3.1, s3.2));
    })
    .await;
    crate::support::eventually("the node is ready", || async {
        (ready_status(&server).await.0 == 200).then_some(())
    })
    .await;
    let (id, call_id, mut alice, mut bob, _carol) = call_answered_by(&server, &["bob"]).await;
    let recording_value =
        request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    let recording_id = recording_value.as_str().expect("an id").to_owned();
    consent(&mut bob, &id, &call_id, &recording_value, true).await;
    expect_frame(&mut alice, "recording.started").await;
    let record = record_when(&server, &recording_id, |_| true).await;
    assert_eq!(record["participants"], json!(["alice", "bob"]));

    let media = vec![7u8; 300_000];
    let (status, stored) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        media.clone(),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["object"]["backend"], "s3");
    let location = stored["object"]["location"].as_str().expect("a location");
    assert!(
        location.starts_with(&format!("s3://{bucket}/")),
        "{location}"
    );
    let objects = switchboard_storage::s3::S3ObjectStore::connect(
        switchboard_storage::s3::S3Settings::new(endpoint, bucket, access_key, secret_key),
    )
    .await
    .expect("the test reaches S3");
    let tenant = TenantId::parse("acme").expect("a tenant");
    let key = ObjectKey::for_recording(RecordingId::parse(&recording_id).expect("an id"));
    let in_s3 = objects.get_object(&tenant, &key).await.expect("S3 answers");
    assert_eq!(in_s3.map(|body| body.bytes), Some(media));

    let (status, audit) = as_role(
        &server,
        reqwest::Method::DELETE,
        ADMIN,
        &format!("/v1/recordings/{recording_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["object_erased"], true);
    assert_eq!(
        objects.get_object(&tenant, &key).await.expect("S3 answers"),
        None
    );
    let (status, _) = as_role(
        &server,
        reqwest::Method::GET,
        ADMIN,
        &format!("/v1/recordings/{recording_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, log) = as_role(&server, reqwest::Method::GET, ADMIN, "/v1/audit", None).await;
    assert_eq!(log["items"], json!([audit]));
    drop(server);
    drop_database(&database).await;
}

/// Search across two nodes: each keeps its own index, fed from the shared MongoDB log, so a
/// message sent through either node is found through both (`consistent=true`: each node's
/// indexer takes everything stored before the search).
#[cfg(feature = "redis")]
#[tokio::test]
async fn mongodb_two_nodes_each_index_the_shared_log_and_find_each_others_messages() {
    let database = fresh_database();
    let first = TestServer::start_with(on_mongodb_and_redis(&database, "node-a")).await;
    let second = TestServer::start_with(on_mongodb_and_redis(&database, "node-b")).await;
    two_nodes_find_each_others_messages(&first, &second).await;
    drop((first, second));
    drop_database(&database).await;
}

/// A message sent through either node is found through both (`consistent=true`, retried while
/// a loaded node answers 503 as the API tells clients to), and another tenant finds nothing.
#[cfg(feature = "redis")]
async fn two_nodes_find_each_others_messages(first: &TestServer, second: &TestServer) {
    let id = first.create_conversation("acme", "alice", &["bob"]).await;
    for (node, user, client_id, text) in [
        (first, "alice", "a1", "replicated through the first node"),
        (second, "bob", "b1", "answered through the second node"),
    ] {
        let (status, _, body) = node
            .post_as(
                user,
                &format!("/v1/conversations/{id}/messages"),
                json!({"client_id": client_id, "text": text}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for node in [first, second] {
        for (word, expected) in [
            ("replicated", "replicated through the first node"),
            ("answered", "answered through the second node"),
        ] {
            let body = consistent_search(node, &token("acme", "bob"), word).await;
            let hits = body["hits"].as_array().expect("hits");
            assert_eq!(hits.len(), 1, "{body}");
            assert_eq!(hits[0]["snippet"]["text"], expected);
            assert_eq!(hits[0]["conversation_id"], id.as_str());
        }
    }
    // Another tenant's user finds nothing on either node.
    for node in [first, second] {
        let body = consistent_search(node, &token("globex", "bob"), "replicated").await;
        assert_eq!(body["hits"], json!([]));
    }
}

/// `GET /v1/search/messages?q=<word>&consistent=true` with `bearer`, retried while it answers
/// 503 (the index did not catch up within `search.consistent_wait_ms`); the 200 body.
#[cfg(feature = "redis")]
async fn consistent_search(node: &TestServer, bearer: &str, word: &str) -> Value {
    crate::support::eventually("a consistent search answers", || async {
        let response = node
            .request(
                reqwest::Method::GET,
                &format!("/v1/search/messages?q={word}&consistent=true"),
                bearer,
                None,
            )
            .await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 503 {
            return None;
        }
        assert_eq!(status, 200, "{body}");
        Some(body)
    })
    .await
}
