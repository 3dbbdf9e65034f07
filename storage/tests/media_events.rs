//! The Kafka `MediaEvents` adapter against a real broker (`scripts/test-services start kafka`,
//! named by `SWITCHBOARD_TEST_KAFKA_BROKERS`): a completed upload is produced as one JSON
//! `media.uploaded` record keyed by `<tenant>/<media>` on a topic the adapter creates, and a
//! consumer reads exactly those fields back; media that is not complete produces nothing.

#![cfg(feature = "kafka")]

use std::time::Duration;

use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use switchboard_engine::ids::MediaId;
use switchboard_engine::media::{
    MediaEvents, MediaFamily, MediaFileName, MediaRecord, MediaType, MediaUpdate, WriteLease,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::KafkaMediaEvents;
use switchboard_testing::kafka_brokers;

mod support;

use support::{BASE_MILLIS, tenant, unique, user};

const DEADLINE: Duration = Duration::from_secs(30);

fn complete_record() -> MediaRecord {
    let now = Timestamp(BASE_MILLIS);
    let mut record = MediaRecord::declared(
        MediaId::from_parts(BASE_MILLIS, 42),
        user("alice"),
        MediaFileName::parse("notes.txt").expect("valid"),
        None,
        3,
        now,
        Timestamp(BASE_MILLIS + 60_000),
    );
    let text = MediaType {
        mime: "text/plain".to_owned(),
        family: MediaFamily::Text,
    };
    let lease = WriteLease {
        token: 1,
        until: Timestamp(BASE_MILLIS + 1_000),
    };
    for update in [
        MediaUpdate::BeginWrite {
            offset: 0,
            lease,
            now,
        },
        MediaUpdate::EndWrite {
            token: 1,
            received_bytes: 3,
            media_type: Some(text.clone()),
        },
        MediaUpdate::Complete {
            sha256: "ab".repeat(32),
            media_type: text,
            at: Timestamp(BASE_MILLIS + 5),
            from_parts: false,
        },
    ] {
        record.apply(update).expect("applies");
    }
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_upload_is_one_json_record_on_the_media_topic() {
    let brokers = kafka_brokers();
    let topic = unique("media-events");
    let events = KafkaMediaEvents::start(&brokers, &topic, 1, 1).expect("configured");
    let record = complete_record();
    let uploading = MediaRecord::declared(
        MediaId::from_parts(BASE_MILLIS, 7),
        user("alice"),
        MediaFileName::parse("later.txt").expect("valid"),
        None,
        9,
        Timestamp(BASE_MILLIS),
        Timestamp(BASE_MILLIS + 60_000),
    );
    // Not complete: nothing is produced (and nothing fails).
    events
        .media_uploaded(&tenant("acme"), &uploading)
        .await
        .expect("nothing to produce");
    // The topic is created in the background: produce until the broker takes the record.
    let started = tokio::time::Instant::now();
    loop {
        match events.media_uploaded(&tenant("acme"), &record).await {
            Ok(()) => break,
            Err(error) => {
                assert!(started.elapsed() < DEADLINE, "never produced: {error}");
                tokio::task::yield_now().await;
            }
        }
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", unique("media-events-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[&topic]).expect("subscribed");
    let message = tokio::time::timeout(DEADLINE, consumer.recv())
        .await
        .expect("a record within the deadline")
        .expect("a record");
    assert_eq!(
        message.key(),
        Some(format!("acme/{}", record.media_id).as_bytes())
    );
    let event: serde_json::Value =
        serde_json::from_slice(message.payload().expect("a payload")).expect("JSON");
    assert_eq!(
        event,
        serde_json::json!({
            "type": "media.uploaded",
            "tenant_id": "acme",
            "media_id": record.media_id.to_string(),
            "uploader_id": "alice",
            "file_name": "notes.txt",
            "content_type": "text/plain",
            "size_bytes": 3,
            "sha256": "ab".repeat(32),
            "completed_at": BASE_MILLIS + 5,
        })
    );
}
