//! Adapters of the [`SharedRateLimiter`](switchboard_engine::ports::SharedRateLimiter) port:
//! rate-limit budgets shared by every node of a deployment.
//!
//! `memory` keeps token buckets in a map; `redis` (cargo feature `redis`) runs a GCRA script
//! on Redis's own clock. One suite, `tests/shared_rate_limits.rs`, runs on both.

pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
