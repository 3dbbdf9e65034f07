//! Adapters of the [`MediaStore`](switchboard_engine::media::MediaStore) port: media records and
//! each tenant's and user's usage.
//!
//! One module per backend: `memory` (the test double) and `embedded` (a fjall database of its
//! own, which the server opens in `<data_dir>/media`). One suite, `tests/media.rs`, runs on
//! both. The bytes themselves are in the blob port (`crate::blob`), never here.

pub(crate) mod embedded;
pub(crate) mod memory;
