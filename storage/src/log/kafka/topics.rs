//! Creating the pipeline's topics, retried with capped, jittered backoff until the cluster answers.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use switchboard_engine::StoreError;
use switchboard_engine::backoff::Backoff;

use super::*;

/// How long topic creation waits before trying again: 100 ms, doubling up to 3.2 s.
pub(super) const TOPICS_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_millis(3_200),
};

pub(super) async fn create_topics_until_done(settings: &KafkaSettings) {
    let mut attempt = 0u32;
    loop {
        match create_topics(settings).await {
            Ok(()) => return,
            Err(error) => {
                if attempt.is_multiple_of(10) {
                    tracing::warn!(%error, "the Kafka topics could not be created yet; retrying");
                }
                tokio::time::sleep(TOPICS_BACKOFF.delay(attempt, crate::supervise::jitter())).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

pub(super) async fn create_topics(settings: &KafkaSettings) -> Result<(), StoreError> {
    let admin: AdminClient<DefaultClientContext> = client_config(settings)
        .create()
        .map_err(|error| kafka_unavailable("creating the admin client", &error))?;
    let replication = || TopicReplication::Fixed(settings.replication_factor);
    let topics = [
        NewTopic::new(&settings.messages_topic, settings.partitions, replication()),
        // One partition: every node reads every reply and keeps its own.
        NewTopic::new(&settings.replies_topic, 1, replication()),
    ];
    let results = admin
        .create_topics(
            &topics,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|error| kafka_unavailable("creating the topics", &error))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(StoreError::Unavailable(format!(
                    "Kafka: could not create the topic {topic}: {code}"
                )));
            }
        }
    }
    Ok(())
}
