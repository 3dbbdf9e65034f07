//! Adapters of the [`ClusterBus`](switchboard_engine::ports::ClusterBus) port, by which the
//! nodes of a scale-out deployment tell each other what they stored.
//!
//! `memory` is the in-process hub of tests that run several nodes in one process; `redis`
//! (cargo feature `redis`) is Redis pub/sub. One suite, `tests/cluster_bus.rs`, runs on both.

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
