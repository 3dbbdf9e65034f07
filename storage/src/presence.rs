//! Adapters of the [`PresenceDirectory`](switchboard_engine::ports::PresenceDirectory) port:
//! each node's view of each user, aggregated by the port's rules.
//!
//! `memory` is one map for the nodes of one process; `redis` (cargo feature `redis`) keeps a
//! hash per user keyed by node, with a liveness key per node. One suite,
//! `tests/presence_directory.rs`, runs on both.

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
