//! Adapters of the [`SearchIndex`](switchboard_engine::search::SearchIndex) port: an index of
//! messages with the log position it reflects.
//!
//! `memory` is the reference: every search runs the engine's matcher
//! (`switchboard_engine::search::matching`) over every document in the scope, so it is
//! obviously right and linear in the corpus. `embedded` is the real index: tantivy, in the
//! data directory, with the engine's analyzer as its tokenizer. One suite, `tests/search.rs`,
//! holds both to the same answers. [`recent`] keeps users' recent searches;
//! [`generations`] says which whole index is current and makes new ones for rebuilds.

pub(crate) mod embedded;
pub(crate) mod generations;
pub(crate) mod memory;
pub(crate) mod recent;
