//! Adapters of the [`RecordingStore`](switchboard_engine::recording::RecordingStore) port:
//! recording metadata and the audit log.
//!
//! One module per backend: `memory` (the test double), `embedded` (a fjall database of its
//! own) and `mongo` (cargo feature `mongodb`, collections in the MongoDB store's database).
//! One suite, `tests/recordings.rs`, runs on all three.

pub(crate) mod embedded;
pub(crate) mod memory;
#[cfg(feature = "mongodb")]
pub(crate) mod mongo;
