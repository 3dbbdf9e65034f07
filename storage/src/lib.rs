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
//! The [`ObjectStore`](switchboard_engine::recording::ObjectStore) adapters keep recorded
//! media: `MemoryObjectStore` (the test double), `object_files::FilesystemObjectStore` (files
//! under a local directory, the embedded default) and `s3::S3ObjectStore` (cargo feature `s3`),
//! checked by `tests/object_store.rs`.
//! Keys are built in the `keys` module (tenant first, length-prefixed, so tenants can never
//! alias one another) and values in the `codec` module (a format-version byte, then postcard).

#![warn(missing_docs)]

pub mod breaker;
mod cluster_memory;
mod codec;
mod delegate;
mod embedded;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
mod keys;
mod memory;
#[cfg(feature = "mongodb")]
mod mongo;
pub mod object_files;
mod object_memory;
mod object_stream;
mod presence_memory;
mod recordings_embedded;
mod recordings_memory;
#[cfg(feature = "redis")]
mod redis_bus;
#[cfg(feature = "redis")]
mod redis_limits;
#[cfg(feature = "redis")]
mod redis_presence;
#[cfg(feature = "s3")]
pub mod s3;
mod shared_limits;
mod staging;
mod supervise;

pub use cluster_memory::{MemoryClusterBus, MemoryClusterHub};
pub use embedded::EmbeddedMessageStore;
pub use error::{Error, Result};
pub use memory::MemoryMessageStore;
#[cfg(feature = "mongodb")]
pub use mongo::{MongoMessageStore, MongoRecordingStore};
pub use object_memory::MemoryObjectStore;
pub use presence_memory::{MemoryPresenceDirectory, MemoryPresenceHub};
pub use recordings_embedded::EmbeddedRecordingStore;
pub use recordings_memory::MemoryRecordingStore;
#[cfg(feature = "redis")]
pub use redis_bus::RedisClusterBus;
#[cfg(feature = "redis")]
pub use redis_limits::RedisRateLimiter;
#[cfg(feature = "redis")]
pub use redis_presence::RedisPresenceDirectory;
pub use shared_limits::MemoryRateLimiter;
