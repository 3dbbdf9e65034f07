//! The Kafka [`MediaEvents`]: each completed upload is produced as one JSON record
//! ([`MediaUploaded`]) to the media topic (`kafka.media_topic`), keyed by `<tenant>/<media>`,
//! with an idempotent producer (`acks=all`). [`KafkaMediaEvents::start`] creates the topic if it
//! is missing, in the background, retrying like the pipeline's topics; a produce that does not
//! complete within [`PRODUCE_TIMEOUT`] is reported as unavailable.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use switchboard_engine::StoreError;
use switchboard_engine::ids::TenantId;
use switchboard_engine::media::{MediaEvents, MediaRecord, MediaUploaded};

/// How long one event may take to be acknowledged.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Produces `media.uploaded` events to a topic.
pub struct KafkaMediaEvents {
    producer: FutureProducer,
    topic: String,
}

fn unavailable(action: &str, error: &impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("Kafka: {action}: {error}"))
}

impl KafkaMediaEvents {
    /// A producer to `topic` on `brokers`; creates the topic (with `partitions` and
    /// `replication_factor`) in the background if it is missing. No I/O before it returns.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the client cannot be configured.
    pub fn start(
        brokers: &str,
        topic: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<Self, StoreError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("client.id", "switchboard-media-events")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                PRODUCE_TIMEOUT.as_millis().to_string(),
            );
        let producer: FutureProducer = config
            .create()
            .map_err(|error| unavailable("creating the media events producer", &error))?;
        let admin: AdminClient<DefaultClientContext> = config
            .create()
            .map_err(|error| unavailable("creating the admin client", &error))?;
        let new_topic = topic.to_owned();
        #[allow(clippy::disallowed_methods)] // Ends once the topic exists.
        tokio::spawn(async move {
            let backoff = switchboard_engine::backoff::Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_millis(3_200),
            };
            let mut attempt = 0u32;
            loop {
                let topics = [NewTopic::new(
                    &new_topic,
                    partitions,
                    TopicReplication::Fixed(replication_factor),
                )];
                let created = admin
                    .create_topics(
                        &topics,
                        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
                    )
                    .await;
                match created.as_deref() {
                    Ok([Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists))]) => return,
                    other => {
                        if attempt.is_multiple_of(10) {
                            tracing::warn!(?other, topic = %new_topic, "the media topic could not be created yet; retrying");
                        }
                    }
                }
                tokio::time::sleep(backoff.delay(attempt, crate::supervise::jitter())).await;
                attempt = attempt.saturating_add(1);
            }
        });
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }
}

#[async_trait]
impl MediaEvents for KafkaMediaEvents {
    async fn media_uploaded(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
    ) -> Result<(), StoreError> {
        let Some(event) = MediaUploaded::of(tenant_id, record) else {
            return Ok(());
        };
        let payload = serde_json::to_vec(&event)
            .map_err(|error| unavailable("encoding a media event", &error))?;
        let key = format!("{tenant_id}/{}", record.media_id);
        self.producer
            .send(
                FutureRecord::to(&self.topic).key(&key).payload(&payload),
                PRODUCE_TIMEOUT,
            )
            .await
            .map(drop)
            .map_err(|(error, _)| unavailable("producing a media event", &error))
    }
}
