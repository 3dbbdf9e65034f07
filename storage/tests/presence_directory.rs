//! The conformance suite for every [`PresenceDirectory`]: the in-memory hub, and (with the
//! `redis` feature) Redis against the server named by `SWITCHBOARD_TEST_REDIS_URL`.
//!
//! Every test uses a tenant and node ids of its own. The last test is Redis only: a node whose
//! liveness key is gone (it died) stops counting.

use std::sync::Arc;

use switchboard_engine::event::{PresenceEntry, PresenceStatus};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{NodePresence, PresenceDirectory};
use switchboard_engine::time::Timestamp;
use switchboard_storage::MemoryPresenceHub;

mod support;

#[cfg(feature = "redis")]
use support::redis_url;
use support::{unique, user};

fn alice() -> UserId {
    user("alice")
}

/// Makes the directories of the nodes of one deployment.
trait Deployment {
    fn nodes(&self, n: usize) -> Vec<Arc<dyn PresenceDirectory>>;
}

struct Memory;

impl Deployment for Memory {
    fn nodes(&self, n: usize) -> Vec<Arc<dyn PresenceDirectory>> {
        let hub = MemoryPresenceHub::new();
        (0..n)
            .map(|_| Arc::new(hub.node(unique("node"))) as Arc<dyn PresenceDirectory>)
            .collect()
    }
}

#[cfg(feature = "redis")]
struct Redis;

#[cfg(feature = "redis")]
impl Deployment for Redis {
    fn nodes(&self, n: usize) -> Vec<Arc<dyn PresenceDirectory>> {
        (0..n)
            .map(|_| {
                Arc::new(
                    switchboard_storage::RedisPresenceDirectory::start(
                        &redis_url(),
                        "sb",
                        unique("node"),
                    )
                    .expect("a valid URL"),
                ) as Arc<dyn PresenceDirectory>
            })
            .collect()
    }
}

async fn report(
    directory: &Arc<dyn PresenceDirectory>,
    tenant_id: &TenantId,
    presence: NodePresence,
) {
    directory
        .report(tenant_id, &alice(), presence)
        .await
        .expect("the directory answers");
}

async fn lookup(directory: &Arc<dyn PresenceDirectory>, tenant_id: &TenantId) -> PresenceEntry {
    directory
        .lookup(tenant_id, &alice())
        .await
        .expect("the directory answers")
}

fn entry(status: PresenceStatus, last_seen: Option<u64>) -> PresenceEntry {
    PresenceEntry {
        user_id: alice(),
        status,
        last_seen: last_seen.map(Timestamp),
    }
}

async fn presence_is_the_best_any_node_reports(deployment: impl Deployment) {
    let nodes = deployment.nodes(2);
    let tenant_id = TenantId::parse(&unique("presence")).expect("valid tenant id");
    assert_eq!(
        lookup(&nodes[0], &tenant_id).await,
        entry(PresenceStatus::Offline, None),
        "never seen"
    );
    report(&nodes[0], &tenant_id, NodePresence::Away).await;
    assert_eq!(
        lookup(&nodes[1], &tenant_id).await,
        entry(PresenceStatus::Away, None)
    );
    report(&nodes[1], &tenant_id, NodePresence::Online).await;
    assert_eq!(
        lookup(&nodes[0], &tenant_id).await,
        entry(PresenceStatus::Online, None)
    );
    report(
        &nodes[1],
        &tenant_id,
        NodePresence::Gone {
            last_seen: Timestamp(2_000),
        },
    )
    .await;
    assert_eq!(
        lookup(&nodes[0], &tenant_id).await,
        entry(PresenceStatus::Away, None)
    );
    report(
        &nodes[0],
        &tenant_id,
        NodePresence::Gone {
            last_seen: Timestamp(1_000),
        },
    )
    .await;
    // Offline since the later of the two.
    assert_eq!(
        lookup(&nodes[1], &tenant_id).await,
        entry(PresenceStatus::Offline, Some(2_000))
    );
}

async fn tenants_do_not_share_presence(deployment: impl Deployment) {
    let nodes = deployment.nodes(1);
    let tenant_id = TenantId::parse(&unique("presence")).expect("valid tenant id");
    let other = TenantId::parse(&unique("presence")).expect("valid tenant id");
    report(&nodes[0], &tenant_id, NodePresence::Online).await;
    assert_eq!(
        lookup(&nodes[0], &tenant_id).await.status,
        PresenceStatus::Online
    );
    assert_eq!(
        lookup(&nodes[0], &other).await,
        entry(PresenceStatus::Offline, None)
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Memory).await;
                }
            )*
        }

        #[cfg(feature = "redis")]
        mod redis {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Redis).await;
                }
            )*
        }
    };
}

conformance!(
    presence_is_the_best_any_node_reports,
    tenants_do_not_share_presence,
);

/// A node that died (its liveness key expired) stops counting.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_a_dead_nodes_users_stop_counting() {
    let node_id = unique("node");
    let dying: Arc<dyn PresenceDirectory> = Arc::new(
        switchboard_storage::RedisPresenceDirectory::start(&redis_url(), "sb", node_id.clone())
            .expect("a valid URL"),
    );
    let tenant_id = TenantId::parse(&unique("presence")).expect("valid tenant id");
    report(&dying, &tenant_id, NodePresence::Online).await;
    assert_eq!(
        lookup(&dying, &tenant_id).await.status,
        PresenceStatus::Online
    );
    drop(dying);
    // What 30 seconds without a heartbeat does: the liveness key is gone.
    let client = ::redis::Client::open(redis_url()).expect("a valid URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let _: () = ::redis::cmd("DEL")
        .arg(format!("sb:node:{node_id}"))
        .query_async(&mut connection)
        .await
        .expect("deleted");
    let survivor = Redis.nodes(1).remove(0);
    assert_eq!(
        lookup(&survivor, &tenant_id).await,
        entry(PresenceStatus::Offline, None)
    );
}
