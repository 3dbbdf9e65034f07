//! Adapters of the [`MediaStore`](switchboard_engine::media::MediaStore) port: media records and
//! each tenant's and user's usage.
//!
//! One module per backend: `memory` (the test double), `embedded` (a fjall database of its
//! own, which the server opens in `<data_dir>/media`) and `mongo` (cargo feature `mongodb`,
//! collections in the MongoDB store's database, shared by every node). `kafka` (cargo feature
//! `kafka`) is the other media port, `MediaEvents`: completed uploads as records on a topic.
//! One suite,
//! `tests/media.rs`, runs on all three. The bytes themselves are in the blob port
//! (`crate::blob`), never here.

pub(crate) mod embedded;
#[cfg(feature = "kafka")]
pub(crate) mod kafka;
pub(crate) mod memory;
#[cfg(feature = "mongodb")]
pub(crate) mod mongo;
