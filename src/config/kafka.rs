//! `[kafka]`: the pipeline that appends through a Kafka topic to the MongoDB store (see
//! docs/DELIVERY.md), and its translation into the adapter's `KafkaSettings`.

use anyhow::bail;

use super::section::config_section;
use super::storage::StorageConfig;

config_section! {
    /// `[kafka]`: appends go through Kafka to MongoDB: the node produces each accepted entry
    /// (idempotent producer, acks=all) and a persister consumer group writes the store.
    pub struct KafkaConfig = "kafka" {
        /// Bootstrap servers (`host:port,host:port`); needs `storage.backend = "mongodb"` and
        /// a build with `--features kafka`. Unset: appends go to the store directly.
        pub brokers: Option<String> = None; example r#""127.0.0.1:9092""#,
        /// The topic accepted entries are appended to, keyed by conversation.
        pub messages_topic: String = "chat.messages".to_owned(),
        /// The topic persisters answer appending nodes on.
        pub replies_topic: String = "chat.persisted".to_owned(),
        /// The topic every completed upload is announced on, as a JSON `media.uploaded` record
        /// keyed by `<tenant>/<media_id>`: `type`, `tenant_id`, `media_id`, `uploader_id`,
        /// `file_name`, `conversation_id` (if any), `content_type`, `size_bytes`, `sha256`,
        /// `completed_at`.
        pub media_topic: String = "chat.media".to_owned(),
        /// The persisters' consumer group.
        pub group_id: String = "switchboard-persisters".to_owned(),
        /// Partitions of the messages topic when Switchboard creates it.
        pub partitions: i32 = 16,
        /// Replication factor of the topics when Switchboard creates them.
        pub replication_factor: i32 = 1,
        /// How long the producer waits to batch records, in milliseconds.
        pub linger_ms: u32 = 2,
        /// The persisters' consumer-group session timeout, in milliseconds.
        pub session_timeout_ms: u32 = 6_000,
        /// How long an append waits for the persister before it is rejected as `unavailable`
        /// (outcome unknown), in milliseconds.
        pub reply_timeout_ms: u64 = 10_000,
        /// Most records in one persister batch (one MongoDB transaction).
        pub max_batch: usize = 512,
    }
}

impl KafkaConfig {
    /// When a pipeline is configured: checks the build has it, the store is MongoDB, and the
    /// topic and batch numbers are positive.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self, storage: &StorageConfig) -> anyhow::Result<()> {
        if self.brokers.is_none() {
            return Ok(());
        }
        if !cfg!(feature = "kafka") {
            bail!(
                "kafka.brokers needs a build with the Kafka pipeline: \
                 cargo build --release --features kafka"
            );
        }
        if !storage.is_shared() {
            bail!("kafka.brokers needs storage.backend = \"mongodb\": the pipeline persists to it");
        }
        if self.partitions < 1 || self.replication_factor < 1 {
            bail!("kafka.partitions and kafka.replication_factor must be at least 1");
        }
        if self.reply_timeout_ms == 0 || self.max_batch == 0 {
            bail!("kafka.reply_timeout_ms and kafka.max_batch must be greater than 0");
        }
        Ok(())
    }

    /// The pipeline's settings, for `brokers` and this node's id.
    #[cfg(feature = "kafka")]
    pub fn kafka_settings(
        &self,
        brokers: &str,
        node_id: String,
    ) -> switchboard_storage::kafka::KafkaSettings {
        switchboard_storage::kafka::KafkaSettings {
            brokers: brokers.to_owned(),
            messages_topic: self.messages_topic.clone(),
            replies_topic: self.replies_topic.clone(),
            group_id: self.group_id.clone(),
            node_id,
            partitions: self.partitions,
            replication_factor: self.replication_factor,
            linger_ms: self.linger_ms,
            session_timeout_ms: self.session_timeout_ms,
            reply_timeout: std::time::Duration::from_millis(self.reply_timeout_ms),
            max_batch: self.max_batch,
        }
    }
}
