//! The conformance suite for every [`ClusterBus`] adapter: the in-memory hub, and (with the
//! `redis` feature) Redis pub/sub against the server named by `SWITCHBOARD_TEST_REDIS_URL`
//! (`scripts/test-services start redis`).
//!
//! Each test is an `async fn` over a [`Deployment`] that makes the buses of several nodes of
//! one deployment. Tenants are unique per test, so tests sharing one Redis server cannot hear
//! each other. Waiting is polling with a deadline; nothing sleeps to synchronise.
//! The last test is Redis only: the server is killed and restarted, and the bus must say it is
//! not ready, reconnect by itself, tell its listeners, and carry notices again.

#![allow(clippy::disallowed_methods)] // Tests may spawn helper processes and read the clock.

use std::sync::Arc;
use std::time::Duration;

use switchboard_engine::ids::{ConversationId, Seq, UserId};
use switchboard_engine::ports::{ClusterBus, ClusterListener, ClusterNotice};
use switchboard_storage::MemoryClusterHub;
use tokio::sync::mpsc;

mod support;

use support::unique_tenant;

const DEADLINE: Duration = Duration::from_secs(20);

/// What a test listener heard.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Notice(ClusterNotice),
    Reconnected,
}

struct Recorder(mpsc::UnboundedSender<Heard>);

impl ClusterListener for Recorder {
    fn notice(&self, notice: ClusterNotice) {
        let _ = self.0.send(Heard::Notice(notice));
    }

    fn reconnected(&self) {
        let _ = self.0.send(Heard::Reconnected);
    }
}

fn recorder() -> (Arc<Recorder>, mpsc::UnboundedReceiver<Heard>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (Arc::new(Recorder(sender)), receiver)
}

/// The next notice a listener hears (reconnection markers are skipped), within the deadline.
async fn next_notice(heard: &mut mpsc::UnboundedReceiver<Heard>) -> ClusterNotice {
    loop {
        match tokio::time::timeout(DEADLINE, heard.recv())
            .await
            .expect("a notice within the deadline")
            .expect("the recorder is alive")
        {
            Heard::Notice(notice) => return notice,
            Heard::Reconnected => continue,
        }
    }
}

/// Notices heard so far (reconnection markers are skipped), without waiting.
fn notices_so_far(heard: &mut mpsc::UnboundedReceiver<Heard>) -> Vec<ClusterNotice> {
    let mut notices = Vec::new();
    while let Ok(next) = heard.try_recv() {
        if let Heard::Notice(notice) = next {
            notices.push(notice);
        }
    }
    notices
}

fn conversation(number: u128) -> ConversationId {
    support::conversation_id(number)
}

fn stored(head: u64) -> ClusterNotice {
    ClusterNotice::Stored { head: Seq(head) }
}

/// Polls `ready` until every bus is connected (only Redis buses connect).
#[cfg(feature = "redis")]
async fn all_ready(buses: &[Arc<dyn ClusterBus>]) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !buses.iter().all(|bus| bus.ready().is_ok()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the buses connect within the deadline"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Makes the buses of `n` nodes of one deployment, connected.
trait Deployment {
    async fn nodes(&self, n: usize) -> Vec<Arc<dyn ClusterBus>>;
}

struct Memory;

impl Deployment for Memory {
    async fn nodes(&self, n: usize) -> Vec<Arc<dyn ClusterBus>> {
        let hub = MemoryClusterHub::new();
        (0..n)
            .map(|node| Arc::new(hub.node(format!("node-{node}"))) as Arc<dyn ClusterBus>)
            .collect()
    }
}

#[cfg(feature = "redis")]
struct Redis {
    url: String,
}

#[cfg(feature = "redis")]
impl Redis {
    fn from_env() -> Self {
        Self {
            url: support::redis_url(),
        }
    }
}

#[cfg(feature = "redis")]
impl Deployment for Redis {
    async fn nodes(&self, n: usize) -> Vec<Arc<dyn ClusterBus>> {
        let deployment = support::unique("deployment");
        let buses: Vec<Arc<dyn ClusterBus>> = (0..n)
            .map(|node| {
                Arc::new(
                    switchboard_storage::RedisClusterBus::start(
                        &self.url,
                        "sb",
                        format!("{deployment}-node-{node}"),
                    )
                    .expect("the URL is valid"),
                ) as Arc<dyn ClusterBus>
            })
            .collect();
        all_ready(&buses).await;
        buses
    }
}

// ---------------------------------------------------------------------------------------------
// The contract.

async fn a_notice_reaches_the_other_nodes_listeners_of_that_conversation_only(
    deployment: impl Deployment,
) {
    let nodes = deployment.nodes(3).await;
    let tenant = unique_tenant("bus");
    let other_tenant = unique_tenant("bus");
    let (on_second, mut second_heard) = recorder();
    let (on_third, mut third_heard) = recorder();
    let (on_publisher, mut publisher_heard) = recorder();
    let (other_conversation, mut other_conversation_heard) = recorder();
    let (other_tenant_listener, mut other_tenant_heard) = recorder();
    let _subscriptions = [
        nodes[1].subscribe(&tenant, conversation(1), on_second),
        nodes[2].subscribe(&tenant, conversation(1), on_third),
        nodes[0].subscribe(&tenant, conversation(1), on_publisher),
        nodes[1].subscribe(&tenant, conversation(2), other_conversation),
        nodes[1].subscribe(&other_tenant, conversation(1), other_tenant_listener),
    ];

    let typing = ClusterNotice::Typing {
        user_id: UserId::parse("alice").expect("valid"),
        started: true,
    };
    nodes[0].publish(&tenant, conversation(1), stored(7));
    nodes[0].publish(&tenant, conversation(1), typing.clone());
    assert_eq!(next_notice(&mut second_heard).await, stored(7));
    assert_eq!(next_notice(&mut second_heard).await, typing);
    assert_eq!(next_notice(&mut third_heard).await, stored(7));
    assert_eq!(next_notice(&mut third_heard).await, typing);

    // A marker published after everything else: once it arrives, anything misrouted would have.
    nodes[0].publish(&tenant, conversation(2), stored(1));
    nodes[0].publish(&other_tenant, conversation(1), stored(1));
    assert_eq!(next_notice(&mut other_conversation_heard).await, stored(1));
    assert_eq!(next_notice(&mut other_tenant_heard).await, stored(1));
    assert_eq!(notices_so_far(&mut other_conversation_heard), vec![]);
    assert_eq!(notices_so_far(&mut other_tenant_heard), vec![]);
    assert_eq!(
        notices_so_far(&mut publisher_heard),
        vec![],
        "a node does not hear its own notices"
    );
}

async fn one_nodes_notices_arrive_in_the_order_it_published_them(deployment: impl Deployment) {
    const N_NOTICES: u64 = 200;
    let nodes = deployment.nodes(2).await;
    let tenant = unique_tenant("bus");
    let (listener, mut heard) = recorder();
    let _subscription = nodes[1].subscribe(&tenant, conversation(1), listener);
    for head in 1..=N_NOTICES {
        nodes[0].publish(&tenant, conversation(1), stored(head));
    }
    for head in 1..=N_NOTICES {
        assert_eq!(next_notice(&mut heard).await, stored(head));
    }
}

async fn a_dropped_subscription_hears_nothing_more(deployment: impl Deployment) {
    let nodes = deployment.nodes(2).await;
    let tenant = unique_tenant("bus");
    let (dropped, mut dropped_heard) = recorder();
    let (kept, mut kept_heard) = recorder();
    let subscription = nodes[1].subscribe(&tenant, conversation(1), dropped);
    let _kept = nodes[1].subscribe(&tenant, conversation(1), kept);
    nodes[0].publish(&tenant, conversation(1), stored(1));
    assert_eq!(next_notice(&mut dropped_heard).await, stored(1));
    assert_eq!(next_notice(&mut kept_heard).await, stored(1));

    drop(subscription);
    nodes[0].publish(&tenant, conversation(1), stored(2));
    assert_eq!(next_notice(&mut kept_heard).await, stored(2));
    assert_eq!(notices_so_far(&mut dropped_heard), vec![]);
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Memory).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Redis::from_env()).await;
                }
            )*
        }
    };
}

conformance!(
    a_notice_reaches_the_other_nodes_listeners_of_that_conversation_only,
    one_nodes_notices_arrive_in_the_order_it_published_them,
    a_dropped_subscription_hears_nothing_more,
);

// ---------------------------------------------------------------------------------------------
// Redis only: deployments sharing a server, and the server going away and coming back.

/// Two deployments with different key prefixes on one Redis server do not hear each other,
/// even about the same tenant and conversation.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_deployments_with_different_key_prefixes_do_not_hear_each_other() {
    let url = Redis::from_env().url;
    let start = |prefix: &str, node: &str| -> Arc<dyn ClusterBus> {
        Arc::new(
            switchboard_storage::RedisClusterBus::start(&url, prefix, format!("{prefix}-{node}"))
                .expect("the URL is valid"),
        )
    };
    let prefix = format!("prefix-test-{}", std::process::id());
    let (staging, production) = (format!("{prefix}-a"), format!("{prefix}-b"));
    let buses = [
        start(&staging, "publisher"),
        start(&staging, "listener"),
        start(&production, "publisher"),
        start(&production, "listener"),
    ];
    all_ready(&buses).await;
    let tenant = unique_tenant("bus");
    let (on_staging, mut staging_heard) = recorder();
    let (on_production, mut production_heard) = recorder();
    let _subscriptions = [
        buses[1].subscribe(&tenant, conversation(1), on_staging),
        buses[3].subscribe(&tenant, conversation(1), on_production),
    ];
    buses[0].publish(&tenant, conversation(1), stored(1));
    assert_eq!(next_notice(&mut staging_heard).await, stored(1));
    // A marker published afterwards in the other deployment: once it arrives, the first
    // notice would have, had it crossed over.
    buses[2].publish(&tenant, conversation(1), stored(2));
    assert_eq!(next_notice(&mut production_heard).await, stored(2));
    assert_eq!(notices_so_far(&mut production_heard), vec![]);
    assert_eq!(notices_so_far(&mut staging_heard), vec![]);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarting_the_server_makes_the_bus_unready_then_reconnect_and_tell_listeners() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("bound")
        .port();
    let directory = tempfile::TempDir::new().expect("temp dir");
    let server = switchboard_testing::OwnRedis::start(port, directory.path());
    let deployment = Redis {
        url: format!("redis://127.0.0.1:{port}"),
    };
    let nodes = deployment.nodes(2).await;
    let tenant = unique_tenant("bus");
    let (listener, mut heard) = recorder();
    let _subscription = nodes[1].subscribe(&tenant, conversation(1), listener);
    nodes[0].publish(&tenant, conversation(1), stored(1));
    assert_eq!(next_notice(&mut heard).await, stored(1));

    drop(server);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let reason = loop {
        if let Err(reason) = nodes[1].ready() {
            break reason;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bus notices the server is gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(reason.contains("Redis"), "{reason}");

    let _server = switchboard_testing::OwnRedis::start(port, directory.path());
    // The listener is told it may have missed notices, and then hears new ones.
    loop {
        match tokio::time::timeout(DEADLINE, heard.recv())
            .await
            .expect("reconnected within the deadline")
            .expect("the recorder is alive")
        {
            Heard::Reconnected => break,
            Heard::Notice(_) => continue,
        }
    }
    all_ready(&nodes).await;
    nodes[0].publish(&tenant, conversation(1), stored(2));
    assert_eq!(next_notice(&mut heard).await, stored(2));
}
