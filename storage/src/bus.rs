//! Adapters of the [`ClusterBus`](switchboard_engine::ports::ClusterBus) port, by which the
//! nodes of a scale-out deployment tell each other what they stored.
//!
//! `memory` is the in-process hub of tests that run several nodes in one process; `redis`
//! (cargo feature `redis`) is Redis pub/sub. One suite, `tests/cluster_bus.rs`, runs on both.
//! Both keep the listeners their node's actors registered in a `registry::Registry`, which
//! removes a listener when its subscription is dropped and never calls one under its lock.

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod registry;
