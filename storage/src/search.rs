//! Adapters of the [`SearchIndex`](switchboard_engine::search::SearchIndex) port: an index of
//! messages with the log position it reflects.
//!
//! `memory` is the reference: every search runs the engine's matcher
//! (`switchboard_engine::search::matching`) over every document in the scope, so it is
//! obviously right and linear in the corpus. One suite, `tests/search.rs`, holds every adapter
//! to its answers.

pub(crate) mod memory;
