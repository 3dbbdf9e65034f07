//! The Kafka persistence pipeline: appends go through a Kafka topic to the MongoDB store.
//!
//! [`KafkaPipelineStore`] is a [`MessageStore`]: reads go straight to the store behind it
//! (MongoDB), and [`MessageStore::append`] produces each entry to the `messages` topic (keyed
//! by tenant and conversation, so one conversation's entries share a partition and keep their
//! order) with an idempotent producer (`enable.idempotence`, `acks=all`, a few ms of linger),
//! then waits for the persister's reply.
//!
//! The persister runs on every node, in one consumer group, so each partition is persisted by
//! exactly one node at a time. It reads a batch, appends it to the store (one transaction that
//! assigns seqs with a compare-and-set on each head and refuses a `client_id` already stored,
//! so a replayed record stores nothing twice), produces one reply per record to the `replies`
//! topic, and only then commits its offsets. A node that dies mid-batch leaves the batch
//! uncommitted; the partition's next owner replays it, finds the entries stored, and replies
//! `DuplicateClientId` with the stored seq, which the appending side treats as its answer.
//!
//! Every node reads the replies topic from its end (no consumer group, so nothing to join) and
//! hands each reply addressed to it to the waiting append. The end is looked up (the
//! partition's high watermark) before the reader is assigned, and appends wait until it is:
//! a reader left to find "the end" lazily could settle on a position after a reply to an
//! append it was already carrying, and that append would wait in vain; a reply names the appending node's
//! *incarnation* (its node id and a random number drawn at start), so replies to an earlier
//! run of the same node are never mistaken for this one's. An append that gets no reply within
//! `reply_timeout` fails as unavailable (its outcome is unknown; a re-send with the same
//! `client_id` resolves it).
//!
//! So `delivered` (an `append` returning `Stored`) means: durable in Kafka (acks=all) *and*
//! committed to MongoDB (majority, journaled).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::{ConversationId, Seq, TenantId};
use switchboard_engine::model::MessageRef;
use switchboard_engine::operations::LogEntry;
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};
use switchboard_engine::{Error, StoreError};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::codec;

mod persister;
#[cfg(test)]
mod tests;
mod topics;

use persister::{persist_forever, persister};
use topics::{TOPICS_BACKOFF, create_topics_until_done};

/// Where the pipeline runs and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic every accepted entry is appended to.
    pub messages_topic: String,
    /// The topic persisters answer on.
    pub replies_topic: String,
    /// The persisters' consumer group.
    pub group_id: String,
    /// This node's id, unique in the deployment.
    pub node_id: String,
    /// Partitions of the messages topic when this node creates it.
    pub partitions: i32,
    /// Replication factor of the topics when this node creates them.
    pub replication_factor: i32,
    /// How long the producer waits to batch records, in milliseconds.
    pub linger_ms: u32,
    /// The persisters' consumer group session timeout, in milliseconds.
    pub session_timeout_ms: u32,
    /// How long an append waits for its reply.
    pub reply_timeout: Duration,
    /// Most records one persister batch holds.
    pub max_batch: usize,
}

/// The entries one append call has for one conversation, on their way to the store. They
/// travel as one record so that the persister stores them together, back to back.
#[derive(Serialize, Deserialize)]
struct Record {
    /// The appending node's incarnation.
    origin: String,
    /// Which of that incarnation's appends.
    request: u64,
    tenant_id: TenantId,
    entries: Vec<LogEntry>,
}

/// The persister's answer to one [`Record`]: an outcome per entry, in order.
#[derive(Serialize, Deserialize)]
struct Reply {
    origin: String,
    request: u64,
    outcomes: Vec<ReplyOutcome>,
}

#[derive(Serialize, Deserialize)]
enum ReplyOutcome {
    Stored {
        seq: Seq,
        completed: Option<Box<LogEntry>>,
        rewritten: Vec<LogEntry>,
    },
    Duplicate {
        existing: MessageRef,
    },
    /// The engine's own error, serialized as it is (its texts are `Cow`s, owned once read
    /// back).
    Refused {
        error: Error,
    },
}

impl From<AppendOutcome> for ReplyOutcome {
    fn from(outcome: AppendOutcome) -> Self {
        match outcome {
            AppendOutcome::Stored {
                seq,
                completed,
                rewritten,
            } => ReplyOutcome::Stored {
                seq,
                completed,
                rewritten,
            },
            AppendOutcome::DuplicateClientId { existing } => ReplyOutcome::Duplicate { existing },
            AppendOutcome::Refused { error } => ReplyOutcome::Refused { error },
        }
    }
}

impl From<ReplyOutcome> for AppendOutcome {
    fn from(outcome: ReplyOutcome) -> Self {
        match outcome {
            ReplyOutcome::Stored {
                seq,
                completed,
                rewritten,
            } => AppendOutcome::Stored {
                seq,
                completed,
                rewritten,
            },
            ReplyOutcome::Duplicate { existing } => AppendOutcome::DuplicateClientId { existing },
            ReplyOutcome::Refused { error } => AppendOutcome::Refused { error },
        }
    }
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Vec<ReplyOutcome>>>>>;

fn lock(
    waiters: &Waiters,
) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Vec<ReplyOutcome>>>> {
    // A map of senders: any state a panic could leave is still a valid map.
    waiters.lock().unwrap_or_else(PoisonError::into_inner)
}

fn kafka_unavailable(action: &str, error: &KafkaError) -> StoreError {
    StoreError::Unavailable(format!("Kafka: {action}: {error}"))
}

/// A [`MessageStore`] whose appends go through Kafka to the store behind it.
pub struct KafkaPipelineStore {
    store: Arc<dyn MessageStore>,
    producer: FutureProducer,
    settings: KafkaSettings,
    incarnation: String,
    next_request: AtomicU64,
    waiters: Waiters,
    /// Whether the reply reader is positioned, so that every reply from now on reaches it.
    replies_positioned: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for KafkaPipelineStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", format!("switchboard-{}", settings.node_id));
    config
}

impl KafkaPipelineStore {
    /// Starts this node's persister (in the consumer group) and reply reader, and returns the
    /// store; the persister appends to `store`. Nothing waits for the brokers: the clients
    /// connect in the background, a task creates the topics if they are missing (retrying with
    /// capped, jittered backoff while the brokers are away), and [`MessageStore::ping`] fails
    /// until the brokers answer and the topics exist.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if a client cannot be configured.
    pub async fn start(
        store: Arc<dyn MessageStore>,
        settings: KafkaSettings,
    ) -> Result<Self, StoreError> {
        let producer: FutureProducer = client_config(&settings)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", settings.linger_ms.to_string())
            .set("message.timeout.ms", "10000")
            .create()
            .map_err(|error| kafka_unavailable("creating the producer", &error))?;
        let incarnation = format!("{}.{:016x}", settings.node_id, random_u64());
        let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));

        // Both consumers are made here once, so a bad setting fails the start, and again by
        // the pipeline task (each time it is started).
        drop(reply_reader(&settings, &incarnation)?);
        drop(persister(&settings)?);
        let (positioned, replies_positioned) = watch::channel(false);
        let positioned = Arc::new(positioned);
        let tasks = vec![{
            let (producer, store, settings) =
                (producer.clone(), Arc::clone(&store), settings.clone());
            let (incarnation, waiters) = (incarnation.clone(), Arc::clone(&waiters));
            crate::supervise::spawn_supervised("Kafka pipeline", move || {
                run_pipeline(
                    producer.clone(),
                    Arc::clone(&store),
                    settings.clone(),
                    Replies {
                        incarnation: incarnation.clone(),
                        waiters: Arc::clone(&waiters),
                        positioned: Arc::clone(&positioned),
                    },
                )
            })
        }];
        Ok(Self {
            store,
            producer,
            settings,
            incarnation,
            next_request: AtomicU64::new(0),
            waiters,
            replies_positioned,
            tasks,
        })
    }

    /// Waits (at most the reply timeout) until the reply reader is positioned.
    async fn replies_positioned(&self) -> Result<(), StoreError> {
        let mut positioned = self.replies_positioned.clone();
        match tokio::time::timeout(
            self.settings.reply_timeout,
            positioned.wait_for(|positioned| *positioned),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(
                "Kafka: the pipeline is still starting (the reply reader is not positioned)"
                    .to_owned(),
            )),
        }
    }

    /// Produces one conversation's entries as one record and waits for the persister's reply.
    async fn append_conversation(
        &self,
        tenant_id: TenantId,
        entries: Vec<LogEntry>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let Some(first) = entries.first() else {
            return Ok(Vec::new());
        };
        self.replies_positioned().await?;
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        let key = format!("{tenant_id}/{}", first.conversation_id());
        let n_entries = entries.len();
        let payload = codec::encode(&Record {
            origin: self.incarnation.clone(),
            request,
            tenant_id,
            entries,
        })?;
        let (sender, reply) = oneshot::channel();
        lock(&self.waiters).insert(request, sender);
        // Removes the waiter however this ends (an error, a timeout, a cancelled caller).
        let _forget = ForgetWaiter {
            waiters: &self.waiters,
            request,
        };
        self.producer
            .send(
                FutureRecord::to(&self.settings.messages_topic)
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| kafka_unavailable("producing entries", &error))?;
        match tokio::time::timeout(self.settings.reply_timeout, reply).await {
            Ok(Ok(outcomes)) if outcomes.len() == n_entries => {
                Ok(outcomes.into_iter().map(AppendOutcome::from).collect())
            }
            Ok(Ok(_)) => Err(StoreError::Corrupt(
                "Kafka: a persister answered with the wrong number of outcomes".to_owned(),
            )),
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(format!(
                "Kafka: the entries were produced but no persister answered within {} ms",
                self.settings.reply_timeout.as_millis()
            ))),
        }
    }
}

struct ForgetWaiter<'waiters> {
    waiters: &'waiters Waiters,
    request: u64,
}

impl Drop for ForgetWaiter<'_> {
    fn drop(&mut self) {
        lock(self.waiters).remove(&self.request);
    }
}

fn random_u64() -> u64 {
    std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8)
}

/// The reply reader: never joins a group (its partition is assigned), but librdkafka wants a
/// group id.
fn reply_reader(settings: &KafkaSettings, incarnation: &str) -> Result<StreamConsumer, StoreError> {
    client_config(settings)
        .set(
            "group.id",
            format!("{}-replies-{incarnation}", settings.group_id),
        )
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|error| kafka_unavailable("creating the reply reader", &error))
}

/// A Kafka consumer that is closed on a thread of its own when dropped. librdkafka's close can
/// block without end when it meets a rebalance (rust-rdkafka issue 509: the rebalance callback
/// waits on an assignment the closing group never makes); on a runtime thread that would stall
/// every task sharing it, so the close happens where it can only hold up itself.
struct ClosedElsewhere(Option<StreamConsumer>);

impl std::ops::Deref for ClosedElsewhere {
    type Target = StreamConsumer;

    fn deref(&self) -> &StreamConsumer {
        self.0
            .as_ref()
            .expect("the consumer is only taken when dropped")
    }
}

impl Drop for ClosedElsewhere {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            // If no thread can be made the closure, and so the consumer, is dropped here.
            let _ = std::thread::Builder::new()
                .name("kafka-close".to_owned())
                .spawn(move || drop(consumer));
        }
    }
}

/// What the reply reader needs: whose replies to hand over, to whom, and where to say it is
/// positioned.
struct Replies {
    incarnation: String,
    waiters: Waiters,
    positioned: Arc<watch::Sender<bool>>,
}

/// Creates the topics (waiting for the brokers), then assigns the reply reader at the replies
/// topic's current end and subscribes the persister, and runs both. Subscribing only once the
/// topics exist matters: a consumer that subscribed to a missing topic may not notice it until
/// its next metadata refresh.
async fn run_pipeline(
    producer: FutureProducer,
    store: Arc<dyn MessageStore>,
    settings: KafkaSettings,
    replies: Replies,
) {
    // A restarted pipeline has a new reader, which is not positioned yet.
    replies.positioned.send_replace(false);
    let consumers = reply_reader(&settings, &replies.incarnation)
        .and_then(|reader| Ok((reader, persister(&settings)?)));
    let (reader, persister) = match consumers {
        Ok((reader, persister)) => (
            ClosedElsewhere(Some(reader)),
            ClosedElsewhere(Some(persister)),
        ),
        Err(error) => {
            tracing::error!(%error, "the Kafka pipeline could not start");
            return;
        }
    };
    create_topics_until_done(&settings).await;
    let end = replies_end_until_known(&producer, &settings).await;
    let mut partitions = TopicPartitionList::new();
    let assigned = partitions
        .add_partition_offset(&settings.replies_topic, 0, Offset::Offset(end))
        .and_then(|()| reader.assign(&partitions));
    if let Err(error) = assigned {
        tracing::error!(%error, "the Kafka reply reader could not be assigned its partition");
        return;
    }
    replies.positioned.send_replace(true);
    if let Err(error) = persister.subscribe(&[settings.messages_topic.as_str()]) {
        tracing::error!(%error, "the Kafka persister could not subscribe");
        return;
    }
    tokio::join!(
        read_replies(reader, replies.incarnation, replies.waiters),
        persist_forever(persister, producer, store, settings),
    );
}

/// The replies topic's high watermark: where the next reply will be written. Asked until the
/// brokers answer, with the topic-creation backoff.
async fn replies_end_until_known(producer: &FutureProducer, settings: &KafkaSettings) -> i64 {
    let mut attempt = 0u32;
    loop {
        let (producer, topic) = (producer.clone(), settings.replies_topic.clone());
        let asked = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            producer
                .client()
                .fetch_watermarks(&topic, 0, Duration::from_secs(2))
        })
        .await;
        match asked {
            Ok(Ok((_, high))) => return high,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the end of the Kafka replies topic is not known yet; retrying");
            }
            Err(error) => {
                tracing::warn!(%error, "asking for the end of the Kafka replies topic failed; retrying");
            }
        }
        tokio::time::sleep(TOPICS_BACKOFF.delay(attempt, crate::supervise::jitter())).await;
        attempt = attempt.saturating_add(1);
    }
}

async fn read_replies(consumer: ClosedElsewhere, incarnation: String, waiters: Waiters) {
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "the Kafka reply reader failed to read; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(payload) = message.payload() else {
            continue;
        };
        let reply: Reply = match codec::decode("kafka replies", payload) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(%error, "an undecodable reply was skipped");
                continue;
            }
        };
        if reply.origin != incarnation {
            continue;
        }
        if let Some(waiter) = lock(&waiters).remove(&reply.request) {
            let _ = waiter.send(reply.outcomes);
        }
    }
}

crate::log::delegate::delegating_message_store!(
    impl[] for KafkaPipelineStore,
    inner: store,
    wrap: passthrough,
    {
    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        // One record per conversation (in first-appearance order), each entry remembering its
        // place in the call; the records are produced together, so the producer batches them.
        let mut groups: Vec<((TenantId, ConversationId), Vec<usize>, Vec<LogEntry>)> = Vec::new();
        let n_entries = entries.len();
        for (position, AppendEntry { tenant_id, entry }) in entries.into_iter().enumerate() {
            let key = (tenant_id, entry.conversation_id());
            match groups
                .iter_mut()
                .find(|(group_key, _, _)| *group_key == key)
            {
                Some((_, positions, group)) => {
                    positions.push(position);
                    group.push(entry);
                }
                None => groups.push((key, vec![position], vec![entry])),
            }
        }
        let (keys, group_entries): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .map(|((tenant_id, _), positions, group)| (positions, (tenant_id, group)))
            .unzip();
        let results = futures_util::future::join_all(
            group_entries
                .into_iter()
                .map(|(tenant_id, group)| self.append_conversation(tenant_id, group)),
        )
        .await;
        let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; n_entries];
        for (positions, result) in keys.into_iter().zip(results) {
            for (position, outcome) in positions.into_iter().zip(result?) {
                outcomes[position] = Some(outcome);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome
                    .ok_or_else(|| StoreError::Corrupt("Kafka: an entry got no outcome".to_owned()))
            })
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await?;
        // Metadata for the messages topic: the brokers answer and the topic exists.
        let producer = self.producer.clone();
        let topic = self.settings.messages_topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            use rdkafka::producer::Producer as _;
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|metadata| {
                    metadata
                        .topics()
                        .iter()
                        .any(|topic| topic.error().is_none() && !topic.partitions().is_empty())
                })
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("Kafka: the probe failed: {error}")))?
        .map_err(|error| kafka_unavailable("the brokers do not answer", &error))?;
        if !metadata {
            Err(StoreError::Unavailable(format!(
                "Kafka: the topic {} does not exist yet",
                self.settings.messages_topic
            )))
        } else if *self.replies_positioned.borrow() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "Kafka: the reply reader is not positioned yet".to_owned(),
            ))
        }
    }
    }
);

impl KafkaPipelineStore {
    /// Awaits a read of the store behind the pipeline (the delegation's wrapper: reads do not
    /// go through Kafka).
    async fn passthrough<Output>(&self, read: impl std::future::Future<Output = Output>) -> Output {
        read.await
    }
}
