//! Test helpers that more than one crate's tests need, in one place instead of a copy per crate.
//!
//! Only ever a dev-dependency: nothing here is compiled into the server. What lives here:
//! [`CapturedLog`], a `tracing` writer whose lines a test reads back, with
//! [`set_thread_subscriber`] to route one test thread's events to it (the security log, the
//! log filter, the TURN relay's log); the addresses of the servers `scripts/test-services`
//! starts, read from the `SWITCHBOARD_TEST_*` variables, failing loudly with the command that
//! starts a missing server; and [`OwnRedis`], a `redis-server` of one test's own, for the tests
//! that kill and restart Redis under a running deployment.

mod captured_log;
mod servers;

pub use captured_log::{CapturedLog, set_thread_subscriber};
pub use servers::{
    OwnRedis, kafka_brokers, mongodb_uri, redis_server_program, redis_url, s3_variable,
    server_variable,
};
