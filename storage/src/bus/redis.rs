//! The Redis [`ClusterBus`]: engine nodes tell each other what they stored, and who is typing,
//! over Redis pub/sub.
//!
//! Every notice about a conversation is published on the channel
//! `<prefix>:conv:<tenant>/<conversation>` as a postcard record `(origin node id, notice)`, where
//! the prefix (`[cluster] key_prefix`, default `sb`) keeps deployments that share a Redis server
//! apart. Each node keeps one pub/sub connection with a pattern subscription to
//! `<prefix>:conv:*` and hands each
//! notice to the listeners its conversation actors registered (notices from itself are
//! skipped). One pattern subscription per node, rather than one channel subscription per
//! conversation, means a conversation actor that starts can never miss a notice between
//! registering and a `SUBSCRIBE` reaching Redis; the price is that every node receives every
//! notice, which is right for a handful of nodes and is what sharded channels would replace.
//!
//! Pub/sub is at most once. When the subscriber connection drops, the task reconnects with
//! capped, jittered backoff and then calls `reconnected` on every listener, whose actors catch
//! up from the shared store. Publishing goes through a bounded queue to a task that sends with
//! a bb8 connection pool; when the queue is full or Redis is away the notice is dropped and
//! counted, never buffered without bound.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use futures_util::StreamExt;
use switchboard_engine::StoreError;
use switchboard_engine::backoff::Backoff;
use switchboard_engine::ids::{ConversationId, TenantId, UserId};
use switchboard_engine::ports::{
    ClusterBus, ClusterListener, ClusterNotice, ClusterSubscription, PresenceListener,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::registry::Registry;
use crate::codec;

/// Notices waiting to be published before new ones are dropped.
const PUBLISH_QUEUE: usize = 4096;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The channel names of one deployment: `<prefix>:conv:<tenant>/<conversation>` for
/// conversations' notices and `<prefix>:presence:<tenant>` for presence changes.
struct Channels {
    conversations: String,
    presence: String,
}

impl Channels {
    fn new(prefix: &str) -> Self {
        Self {
            conversations: format!("{prefix}:conv:"),
            presence: format!("{prefix}:presence:"),
        }
    }

    fn conversation(&self, tenant_id: &TenantId, conversation_id: ConversationId) -> String {
        format!("{}{tenant_id}/{conversation_id}", self.conversations)
    }

    fn presence(&self, tenant_id: &TenantId) -> String {
        format!("{}{tenant_id}", self.presence)
    }

    /// The patterns every node subscribes to.
    fn patterns(&self) -> [String; 2] {
        [
            format!("{}*", self.conversations),
            format!("{}*", self.presence),
        ]
    }

    /// The conversation a channel name is about.
    fn parse_conversation(&self, name: &str) -> Option<(TenantId, ConversationId)> {
        let rest = name.strip_prefix(self.conversations.as_str())?;
        let (tenant, conversation) = rest.split_once('/')?;
        Some((
            TenantId::parse(tenant).ok()?,
            ConversationId::parse(conversation).ok()?,
        ))
    }
}

/// Notices waiting to be published (channel, payload), shared by each restart of the publisher.
type PublishQueue = Arc<tokio::sync::Mutex<mpsc::Receiver<(String, Vec<u8>)>>>;

/// What the bus and its tasks share.
struct Shared {
    node_id: String,
    channels: Channels,
    listeners: Arc<Registry<(TenantId, ConversationId), Arc<dyn ClusterListener>>>,
    presence_listeners: Arc<Registry<(), Arc<dyn PresenceListener>>>,
    connected: AtomicBool,
    /// Why the subscriber is not connected, for readiness probes.
    last_error: Mutex<String>,
    /// Notices dropped because the queue was full or Redis refused them.
    dropped: AtomicU64,
}

impl Shared {
    fn set_error(&self, error: String) {
        self.connected.store(false, Ordering::Release);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    fn dispatch(&self, channel_name: &str, payload: &[u8]) {
        if let Some(tenant) = channel_name.strip_prefix(self.channels.presence.as_str()) {
            self.dispatch_presence(tenant, payload);
            return;
        }
        let Some(key) = self.channels.parse_conversation(channel_name) else {
            return;
        };
        let (origin, notice): (String, ClusterNotice) = match codec::decode("bus", payload) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, channel = channel_name, "an undecodable cluster notice was dropped");
                return;
            }
        };
        if origin == self.node_id {
            return;
        }
        for listener in self
            .listeners
            .pick(&key, |listener| Some(Arc::clone(listener)))
        {
            listener.notice(notice.clone());
        }
    }

    fn dispatch_presence(&self, tenant: &str, payload: &[u8]) {
        let Ok(tenant_id) = TenantId::parse(tenant) else {
            return;
        };
        let (origin, user_id): (String, UserId) = match codec::decode("bus", payload) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::warn!(%error, "an undecodable presence notice was dropped");
                return;
            }
        };
        if origin == self.node_id {
            return;
        }
        for listener in self.presence_receivers() {
            listener.presence_changed(&tenant_id, &user_id);
        }
    }

    /// The presence listeners, copied out so none is called under the lock.
    fn presence_receivers(&self) -> Vec<Arc<dyn PresenceListener>> {
        self.presence_listeners
            .pick(&(), |listener| Some(Arc::clone(listener)))
    }

    fn tell_reconnected(&self) {
        for listener in self.presence_receivers() {
            listener.reconnected();
        }
        for listener in self
            .listeners
            .pick_all(|listener| Some(Arc::clone(listener)))
        {
            listener.reconnected();
        }
    }
}

/// A [`ClusterBus`] over Redis pub/sub.
pub struct RedisClusterBus {
    shared: Arc<Shared>,
    publisher: mpsc::Sender<(String, Vec<u8>)>,
    tasks: Vec<JoinHandle<()>>,
}

impl RedisClusterBus {
    /// Starts the bus of node `node_id` on the Redis server at `url` (`redis://host:port/db`),
    /// with channel names under `prefix`. Nothing waits for Redis: the tasks connect in the background and keep reconnecting, and
    /// [`ClusterBus::ready`] says whether they are connected.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URL is malformed.
    pub fn start(url: &str, prefix: &str, node_id: impl Into<String>) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|error| StoreError::Unavailable(format!("invalid Redis URL: {error}")))?;
        let manager = RedisConnectionManager::new(url)
            .map_err(|error| StoreError::Unavailable(format!("invalid Redis URL: {error}")))?;
        let pool = bb8::Pool::builder()
            .max_size(4)
            .connection_timeout(Duration::from_secs(1))
            .build_unchecked(manager);
        let shared = Arc::new(Shared {
            node_id: node_id.into(),
            channels: Channels::new(prefix),
            listeners: Registry::new(),
            presence_listeners: Registry::new(),
            connected: AtomicBool::new(false),
            last_error: Mutex::new("not connected to Redis yet".to_owned()),
            dropped: AtomicU64::new(0),
        });
        let (publisher, queue) = mpsc::channel(PUBLISH_QUEUE);
        // Shared with each restart of the publisher (see `crate::supervise`).
        let queue: PublishQueue = Arc::new(tokio::sync::Mutex::new(queue));
        let tasks = vec![
            {
                let shared = Arc::clone(&shared);
                crate::supervise::spawn_supervised("cluster bus subscriber", move || {
                    subscribe_forever(client.clone(), Arc::clone(&shared))
                })
            },
            {
                let shared = Arc::clone(&shared);
                crate::supervise::spawn_supervised("cluster bus publisher", move || {
                    publish_forever(pool.clone(), Arc::clone(&queue), Arc::clone(&shared))
                })
            },
        ];
        Ok(Self {
            shared,
            publisher,
            tasks,
        })
    }

    /// Notices dropped so far because the queue was full or Redis refused them.
    pub fn dropped_notices(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for RedisClusterBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How long the subscriber waits before connecting again: 50 ms, doubling up to
/// [`MAX_BACKOFF`], with jitter.
const RECONNECT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(50),
    max: MAX_BACKOFF,
};

async fn subscribe_forever(client: redis::Client, shared: Arc<Shared>) {
    let mut attempt = 0u32;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&shared.channels.patterns()).await {
                Ok(()) => {
                    attempt = 0;
                    shared.connected.store(true, Ordering::Release);
                    tracing::info!("cluster bus connected to Redis");
                    // Notices published while this node was away are lost to it.
                    shared.tell_reconnected();
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        shared.dispatch(message.get_channel_name(), message.get_payload_bytes());
                    }
                    shared.set_error("the connection to Redis was lost".to_owned());
                    tracing::warn!("cluster bus lost its Redis connection; reconnecting");
                }
                Err(error) => shared.set_error(format!("Redis refused the subscription: {error}")),
            },
            Err(error) => shared.set_error(format!("Redis is not reachable: {error}")),
        }
        tokio::time::sleep(RECONNECT_BACKOFF.delay(attempt, crate::supervise::jitter())).await;
        attempt = attempt.saturating_add(1);
    }
}

async fn publish_forever(
    pool: bb8::Pool<RedisConnectionManager>,
    queue: PublishQueue,
    shared: Arc<Shared>,
) {
    let mut queue = queue.lock().await;
    while let Some((channel_name, payload)) = queue.recv().await {
        let published = match pool.get().await {
            Ok(mut connection) => redis::cmd("PUBLISH")
                .arg(&channel_name)
                .arg(payload)
                .query_async::<i64>(&mut *connection)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = published {
            let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per thousand drops, not one per notice.
            if dropped % 1000 == 1 {
                tracing::warn!(%error, dropped, "cluster notices are being dropped: Redis refused a publish");
            }
        }
    }
}

impl ClusterBus for RedisClusterBus {
    fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    fn publish(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        notice: ClusterNotice,
    ) {
        let payload = match codec::encode(&(self.shared.node_id.as_str(), &notice)) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "a cluster notice could not be encoded");
                return;
            }
        };
        if self
            .publisher
            .try_send((
                self.shared
                    .channels
                    .conversation(tenant_id, conversation_id),
                payload,
            ))
            .is_err()
        {
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped % 1000 == 1 {
                tracing::warn!(
                    dropped,
                    "cluster notices are being dropped: the publish queue is full"
                );
            }
        }
    }

    fn publish_presence(&self, tenant_id: &TenantId, user_id: &UserId) {
        let payload = match codec::encode(&(self.shared.node_id.as_str(), user_id)) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "a presence notice could not be encoded");
                return;
            }
        };
        if self
            .publisher
            .try_send((self.shared.channels.presence(tenant_id), payload))
            .is_err()
        {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn subscribe_presence(&self, listener: Arc<dyn PresenceListener>) -> ClusterSubscription {
        self.shared.presence_listeners.register((), listener)
    }

    fn subscribe(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        listener: Arc<dyn ClusterListener>,
    ) -> ClusterSubscription {
        self.shared
            .listeners
            .register((tenant_id.clone(), conversation_id), listener)
    }

    fn ready(&self) -> Result<(), String> {
        if self.shared.connected.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone())
        }
    }
}
