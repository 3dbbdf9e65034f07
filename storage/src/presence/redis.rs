//! The Redis [`PresenceDirectory`]: each node's view of its users, in Redis, with node
//! liveness, so presence is the deployment's rather than each node's.
//!
//! Keys (under the deployment's `[cluster] key_prefix`, default `sb`): `<prefix>:pres:<tenant>:
//! <user>`, a hash from node id to `online` or `away` (a node removes its field when the user's
//! last session on it closes); `<prefix>:seen:<tenant>:<user>`, the latest `last_seen` in
//! milliseconds; and `<prefix>:node:<node id>`, which each node sets every 10 s to expire after
//! 30 s. A lookup (one Lua script) counts only the fields of nodes whose liveness
//! key exists and deletes the others, so a node that died stops counting within 30 s.

use std::time::Duration;

use async_trait::async_trait;
use bb8_redis::RedisConnectionManager;
use switchboard_engine::StoreError;
use switchboard_engine::event::PresenceEntry;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{NodePresence, PresenceDirectory};
use switchboard_engine::time::Timestamp;
use tokio::task::JoinHandle;

use crate::presence::memory::aggregate;

/// How long a node's liveness key lives without a refresh.
const NODE_TTL_SECS: u64 = 30;
/// How often each node refreshes its liveness key.
const HEARTBEAT: Duration = Duration::from_secs(10);

const LOOKUP: &str = r"
local fields = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #fields, 2 do
  if redis.call('EXISTS', ARGV[1] .. fields[i]) == 1 then
    table.insert(live, fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
local seen = redis.call('GET', KEYS[2])
if seen then table.insert(live, 'seen:' .. seen) end
return live
";

const GONE: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) > seen then redis.call('SET', KEYS[2], ARGV[2]) end
return 0
";

/// The directory in Redis.
pub struct RedisPresenceDirectory {
    pool: bb8::Pool<RedisConnectionManager>,
    node_id: String,
    /// The deployment's key prefix.
    prefix: String,
    lookup: redis::Script,
    gone: redis::Script,
    heartbeat: JoinHandle<()>,
}

impl Drop for RedisPresenceDirectory {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("Redis: {error}"))
}

fn node_key_prefix(prefix: &str) -> String {
    format!("{prefix}:node:")
}

impl RedisPresenceDirectory {
    /// The directory of node `node_id` on the Redis server at `url`, with keys under `prefix`;
    /// connects lazily and keeps the node's liveness key fresh in the background.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URL is malformed.
    pub fn start(url: &str, prefix: &str, node_id: impl Into<String>) -> Result<Self, StoreError> {
        let manager = RedisConnectionManager::new(url).map_err(unavailable)?;
        let pool = bb8::Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_millis(500))
            .build_unchecked(manager);
        let node_id = node_id.into();
        let heartbeat = {
            let pool = pool.clone();
            let node_key = format!("{}{node_id}", node_key_prefix(prefix));
            crate::supervise::spawn_supervised("presence heartbeat", move || {
                keep_alive(pool.clone(), node_key.clone())
            })
        };
        Ok(Self {
            pool,
            node_id,
            prefix: prefix.to_owned(),
            lookup: redis::Script::new(LOOKUP),
            gone: redis::Script::new(GONE),
            heartbeat,
        })
    }

    fn presence_key(&self, tenant_id: &TenantId, user_id: &UserId) -> String {
        format!("{}:pres:{tenant_id}:{user_id}", self.prefix)
    }

    fn seen_key(&self, tenant_id: &TenantId, user_id: &UserId) -> String {
        format!("{}:seen:{tenant_id}:{user_id}", self.prefix)
    }
}

async fn keep_alive(pool: bb8::Pool<RedisConnectionManager>, key: String) {
    let mut interval = tokio::time::interval(HEARTBEAT);
    loop {
        interval.tick().await;
        let refreshed = match pool.get().await {
            Ok(mut connection) => redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("EX")
                .arg(NODE_TTL_SECS)
                .query_async::<()>(&mut *connection)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = refreshed {
            tracing::warn!(%error, "the presence heartbeat could not reach Redis");
        }
    }
}

#[async_trait]
impl PresenceDirectory for RedisPresenceDirectory {
    async fn report(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        presence: NodePresence,
    ) -> Result<(), StoreError> {
        let mut connection = self.pool.get().await.map_err(unavailable)?;
        // The node's liveness key goes with every report, so a node is live from its first.
        redis::cmd("SET")
            .arg(format!("{}{}", node_key_prefix(&self.prefix), self.node_id))
            .arg(1)
            .arg("EX")
            .arg(NODE_TTL_SECS)
            .query_async::<()>(&mut *connection)
            .await
            .map_err(unavailable)?;
        match presence {
            NodePresence::Online | NodePresence::Away => {
                let state = if presence == NodePresence::Online {
                    "online"
                } else {
                    "away"
                };
                redis::cmd("HSET")
                    .arg(self.presence_key(tenant_id, user_id))
                    .arg(&self.node_id)
                    .arg(state)
                    .query_async::<()>(&mut *connection)
                    .await
                    .map_err(unavailable)?;
            }
            NodePresence::Gone { last_seen } => {
                self.gone
                    .key(self.presence_key(tenant_id, user_id))
                    .key(self.seen_key(tenant_id, user_id))
                    .arg(&self.node_id)
                    .arg(last_seen.as_millis())
                    .invoke_async::<()>(&mut *connection)
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn lookup(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<PresenceEntry, StoreError> {
        let mut connection = self.pool.get().await.map_err(unavailable)?;
        let states: Vec<String> = self
            .lookup
            .key(self.presence_key(tenant_id, user_id))
            .key(self.seen_key(tenant_id, user_id))
            .arg(node_key_prefix(&self.prefix))
            .invoke_async(&mut *connection)
            .await
            .map_err(unavailable)?;
        let mut last_seen = None;
        let reports: Vec<NodePresence> = states
            .iter()
            .filter_map(|state| match state.as_str() {
                "online" => Some(NodePresence::Online),
                "away" => Some(NodePresence::Away),
                other => {
                    last_seen = other
                        .strip_prefix("seen:")
                        .and_then(|millis| millis.parse().ok())
                        .map(Timestamp);
                    None
                }
            })
            .collect();
        Ok(aggregate(user_id, reports.iter(), last_seen))
    }
}
