//! Storage adapters for Switchboard's [`MessageStore`](switchboard_engine::ports::MessageStore) port.
//!
//! [`EmbeddedMessageStore`] is the durable default: an LSM-tree database (fjall) in a local
//! directory, with one keyspace per table and one fsync per append batch.
//! [`MemoryMessageStore`] keeps the same tables in ordered maps behind a mutex; it is the fast,
//! deterministic test double and loses everything when dropped.
//! `MongoMessageStore` (cargo feature `mongodb`) is the shared store of scale-out deployments:
//! one MongoDB database for every engine node, with seqs kept gapless by a compare-and-set on
//! each conversation's head inside the append's transaction.
//! All three satisfy one contract, checked by the shared conformance suite in
//! `tests/conformance.rs`.
//! The crate also holds the [`ClusterBus`](switchboard_engine::ports::ClusterBus) adapters by
//! which the nodes of a scale-out deployment tell each other what they stored:
//! `MemoryClusterHub` (nodes in one process) and `RedisClusterBus` (cargo feature `redis`),
//! checked by one suite in `tests/cluster_bus.rs`; and the
//! [`SharedRateLimiter`](switchboard_engine::ports::SharedRateLimiter) adapters
//! (`MemoryRateLimiter`, `RedisRateLimiter`), checked by `tests/shared_rate_limits.rs`; and the
//! [`PresenceDirectory`](switchboard_engine::ports::PresenceDirectory) adapters
//! (`MemoryPresenceHub`, `RedisPresenceDirectory`), checked by `tests/presence_directory.rs`.
//! The [`RecordingStore`](switchboard_engine::recording::RecordingStore) adapters keep
//! recording metadata and the audit log: `MemoryRecordingStore`, `EmbeddedRecordingStore` (a
//! fjall database of its own) and `MongoRecordingStore`, checked by `tests/recordings.rs`.
//! The [`ObjectStore`](switchboard_engine::blob::ObjectStore) adapters keep recorded
//! media: `MemoryObjectStore` (the test double), [`FilesystemObjectStore`] (files under a local
//! directory, the embedded default; also at its old path `object_files`) and `s3::S3ObjectStore` (cargo feature `s3`),
//! checked by `tests/object_store.rs`.
//! The [`MediaStore`](switchboard_engine::media::MediaStore) adapters keep media records and
//! usage: `MemoryMediaStore` and `EmbeddedMediaStore` (a fjall database of its own), checked by
//! `tests/media.rs`.
//!
//! # Layout
//! One folder per port, one module per backend inside it, named the same way everywhere
//! (`memory`, `embedded`, `mongo`, `redis`, `s3`, `kafka`): `log/` (the `MessageStore`),
//! `blob/` (the `ObjectStore`), `media/` (the `MediaStore`), `recordings/` (the `RecordingStore`), `bus/` (the
//! `ClusterBus`), `limits/` (the `SharedRateLimiter`) and `presence/` (the
//! `PresenceDirectory`). What several ports share stays at the root: `keys`, `codec`,
//! `supervise` and the crate's `error`.
//! Keys are built in the `keys` module (tenant first, length-prefixed, so tenants can never
//! alias one another) and values in the `codec` module (a format-version byte, then postcard).

#![warn(missing_docs)]

mod blob;
mod bus;
mod codec;
mod error;
mod keys;
mod limits;
mod log;
mod media;
mod presence;
mod recordings;
mod search;
mod supervise;

pub use blob::embedded as object_files;
pub use blob::embedded::FilesystemObjectStore;
pub use blob::memory::MemoryObjectStore;
#[cfg(feature = "s3")]
pub use blob::s3;
pub use bus::memory::{MemoryClusterBus, MemoryClusterHub};
#[cfg(feature = "redis")]
pub use bus::redis::RedisClusterBus;
pub use error::{Error, Result};
pub use limits::memory::MemoryRateLimiter;
#[cfg(feature = "redis")]
pub use limits::redis::RedisRateLimiter;
pub use log::breaker;
pub use log::embedded::EmbeddedMessageStore;
#[cfg(feature = "kafka")]
pub use log::kafka;
pub use log::memory::MemoryMessageStore;
#[cfg(feature = "mongodb")]
pub use log::mongo::MongoMessageStore;
pub use media::embedded::EmbeddedMediaStore;
#[cfg(feature = "kafka")]
pub use media::kafka::KafkaMediaEvents;
pub use media::memory::MemoryMediaStore;
#[cfg(feature = "mongodb")]
pub use media::mongo::MongoMediaStore;
pub use presence::memory::{MemoryPresenceDirectory, MemoryPresenceHub};
#[cfg(feature = "redis")]
pub use presence::redis::RedisPresenceDirectory;
pub use recordings::embedded::EmbeddedRecordingStore;
pub use recordings::memory::MemoryRecordingStore;
#[cfg(feature = "mongodb")]
pub use recordings::mongo::MongoRecordingStore;
pub use search::embedded::EmbeddedSearchIndex;
pub use search::generations::{
    EmbeddedSearchGenerations, MemorySearchGenerations, OpenedGeneration,
};
pub use search::memory::MemorySearchIndex;
pub use search::recent::embedded::EmbeddedRecentSearches;
pub use search::recent::memory::MemoryRecentSearches;
#[cfg(feature = "mongodb")]
pub use search::recent::mongo::MongoRecentSearches;
