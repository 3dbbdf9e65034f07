//! Storage adapters for Switchboard's [`MessageStore`](switchboard_engine::ports::MessageStore) port.
//!
//! [`EmbeddedMessageStore`] is the durable default: an LSM-tree database (fjall) in a local
//! directory, with one keyspace per table and one fsync per append batch.
//! [`MemoryMessageStore`] keeps the same tables in ordered maps behind a mutex; it is the fast,
//! deterministic test double and loses everything when dropped.
//! `MongoMessageStore` (cargo feature `mongodb`) is the shared store of scale-out deployments:
//! one MongoDB database for every engine node, with seqs kept gapless by a compare-and-set on
//! each conversation's head inside the append's transaction.
//! Both satisfy one contract, checked by the shared conformance suite in `tests/conformance.rs`.
//! Keys are built in the `keys` module (tenant first, length-prefixed, so tenants can never
//! alias one another) and values in the `codec` module (a format-version byte, then postcard).

#![warn(missing_docs)]

mod codec;
mod embedded;
mod error;
mod keys;
mod memory;
#[cfg(feature = "mongodb")]
mod mongo;
mod staging;

pub use embedded::EmbeddedMessageStore;
pub use error::{Error, Result};
pub use memory::MemoryMessageStore;
#[cfg(feature = "mongodb")]
pub use mongo::MongoMessageStore;
