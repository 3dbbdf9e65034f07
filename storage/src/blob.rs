//! Adapters of the [`ObjectStore`](switchboard_engine::blob::ObjectStore) port, which
//! keeps recorded media, streamed both ways: a put pulls a byte source, a range read
//! (`get_range`) hands out a byte stream; neither holds the whole object in memory (but for the
//! in-memory double).
//!
//! One module per backend: `memory` (the test double), `embedded` (files under a local
//! directory, the default) and `s3` (cargo feature `s3`). `stream` is what they share while
//! they stream an object in: counting it against its limit and hashing it. One suite,
//! `tests/object_store.rs`, runs on all three.

pub mod embedded;
pub(crate) mod memory;
#[cfg(feature = "s3")]
pub mod s3;
mod stream;
