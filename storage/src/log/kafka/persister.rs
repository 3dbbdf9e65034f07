//! The Kafka pipeline's persister: a member of one consumer group on every node, so each
//! partition of the `messages` topic is persisted by exactly one node at a time.
//! It reads a batch, appends it to the store in one call, produces one reply per record to the
//! `replies` topic, and only then commits its offsets (asynchronously: a lost commit only
//! replays a batch the store refuses a second time).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use switchboard_engine::StoreError;
use switchboard_engine::ports::{AppendEntry, MessageStore};

use super::*;
use crate::codec;

/// The persister: a member of the persisters' consumer group.
pub(super) fn persister(settings: &KafkaSettings) -> Result<StreamConsumer, StoreError> {
    client_config(settings)
        .set("group.id", &settings.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            settings.session_timeout_ms.to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout_ms / 4).max(100).to_string(),
        )
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|error| kafka_unavailable("creating the persister", &error))
}

/// A consumed record, decoded, with where it came from.
pub(super) struct Consumed {
    partition: i32,
    offset: i64,
    record: Option<Record>,
}

pub(super) async fn persist_forever(
    consumer: ClosedElsewhere,
    producer: FutureProducer,
    store: Arc<dyn MessageStore>,
    settings: KafkaSettings,
) {
    loop {
        let batch = match next_batch(&consumer, &settings).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "the persister failed to read from Kafka; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        persist_batch(&consumer, &producer, store.as_ref(), &settings, batch).await;
    }
}

/// Waits for one record, then takes whatever else is ready, up to `max_batch`.
pub(super) async fn next_batch(
    consumer: &StreamConsumer,
    settings: &KafkaSettings,
) -> Result<Vec<Consumed>, KafkaError> {
    let mut batch = Vec::new();
    let first = consumer.recv().await?;
    batch.push(consumed(&first));
    while batch.len() < settings.max_batch {
        match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
            Ok(Ok(message)) => batch.push(consumed(&message)),
            Ok(Err(error)) => return Err(error),
            Err(_) => break,
        }
    }
    Ok(batch)
}

pub(super) fn consumed(message: &rdkafka::message::BorrowedMessage<'_>) -> Consumed {
    let record = message.payload().and_then(|payload| {
        codec::decode::<Record>("kafka messages", payload)
            .map_err(|error| {
                tracing::error!(%error, partition = message.partition(), offset = message.offset(), "an undecodable record was skipped");
            })
            .ok()
    });
    Consumed {
        partition: message.partition(),
        offset: message.offset(),
        record,
    }
}

/// Appends a batch to the store (retrying while the store is away: the records stay
/// uncommitted, so nothing is lost), replies, then commits the batch's offsets.
pub(super) async fn persist_batch(
    consumer: &StreamConsumer,
    producer: &FutureProducer,
    store: &dyn MessageStore,
    settings: &KafkaSettings,
    batch: Vec<Consumed>,
) {
    let records: Vec<&Record> = batch
        .iter()
        .filter_map(|consumed| consumed.record.as_ref())
        .collect();
    let entries: Vec<AppendEntry> = records
        .iter()
        .flat_map(|record| {
            record.entries.iter().map(|entry| AppendEntry {
                tenant_id: record.tenant_id.clone(),
                entry: entry.clone(),
            })
        })
        .collect();
    let mut attempt = 0u32;
    let outcomes = loop {
        match store.append(entries.clone()).await {
            Ok(outcomes) if outcomes.len() == entries.len() => break outcomes,
            Ok(_) => {
                tracing::error!("the store answered a batch with the wrong number of outcomes");
                return;
            }
            Err(error) => {
                attempt = attempt.saturating_add(1);
                if attempt == 1 || attempt.is_multiple_of(50) {
                    tracing::warn!(%error, attempt, "the persister could not append a batch; retrying");
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(20)))).await;
            }
        }
    };
    let mut outcomes = outcomes.into_iter();
    let replies = records.iter().map(|record| {
        let reply = Reply {
            origin: record.origin.clone(),
            request: record.request,
            outcomes: outcomes
                .by_ref()
                .take(record.entries.len())
                .map(ReplyOutcome::from)
                .collect(),
        };
        let origin = record.origin.clone();
        async move {
            let payload = match codec::encode(&reply) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::error!(%error, "a reply could not be encoded");
                    return;
                }
            };
            if let Err((error, _)) = producer
                .send(
                    FutureRecord::to(&settings.replies_topic)
                        .key(&origin)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
            {
                // The appending node times out and reports the outcome unknown.
                tracing::warn!(%error, "a reply could not be produced");
            }
        }
    });
    futures_util::future::join_all(replies).await;

    let mut offsets: HashMap<i32, i64> = HashMap::new();
    for consumed in &batch {
        let next = offsets.entry(consumed.partition).or_insert(0);
        *next = (*next).max(consumed.offset + 1);
    }
    let mut partitions = TopicPartitionList::new();
    for (partition, offset) in offsets {
        if let Err(error) = partitions.add_partition_offset(
            &settings.messages_topic,
            partition,
            Offset::Offset(offset),
        ) {
            tracing::error!(%error, "an offset could not be recorded");
        }
    }
    // Asynchronous: a synchronous commit would block the runtime thread until the coordinator
    // answers. A commit that fails (here or later) only means the batch is replayed by this
    // partition's next owner; the store refuses the entries' client ids a second time, so
    // nothing is stored twice.
    if let Err(error) = consumer.commit(&partitions, CommitMode::Async) {
        tracing::warn!(%error, "the persister could not commit its offsets");
    }
}
