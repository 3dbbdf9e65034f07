//! The servers tests run against: the shared ones `scripts/test-services` starts, named by the
//! `SWITCHBOARD_TEST_*` variables its `env-file` sets, and a Redis of a test's own.
//!
//! A variable that is missing fails the test that needs it, naming the command that starts the
//! server: no test passes because its server is away.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The value of a `SWITCHBOARD_TEST_*` variable that names a server `scripts/test-services`
/// starts.
///
/// # Panics
/// When the variable is not set: the message says how to start the server.
pub fn server_variable(name: &str, service: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is needed by the tests that run against {service} \
             (scripts/test-services start {service}, then . \"$(scripts/test-services env-file)\")"
        )
    })
}

/// The MongoDB server (`SWITCHBOARD_TEST_MONGODB_URI`).
pub fn mongodb_uri() -> String {
    server_variable("SWITCHBOARD_TEST_MONGODB_URI", "mongodb")
}

/// The Redis server (`SWITCHBOARD_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    server_variable("SWITCHBOARD_TEST_REDIS_URL", "redis")
}

/// The Kafka brokers (`SWITCHBOARD_TEST_KAFKA_BROKERS`).
pub fn kafka_brokers() -> String {
    server_variable("SWITCHBOARD_TEST_KAFKA_BROKERS", "kafka")
}

/// A variable of the S3 service (`SWITCHBOARD_TEST_S3_ENDPOINT`, `_ACCESS_KEY`,
/// `_SECRET_KEY`, `_DATA_DIR`).
pub fn s3_variable(name: &str) -> String {
    server_variable(name, "s3")
}

/// The `redis-server` program that tests which stop and restart a Redis of their own run
/// (`SWITCHBOARD_TEST_REDIS_SERVER`, else the one on the `PATH`).
pub fn redis_server_program() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A `redis-server` of one test's own on 127.0.0.1 (so the test can kill it), without
/// persistence, keeping its files in a directory the test owns. Killed, and waited for, when
/// dropped: a test restarts it by dropping it and starting another on the same port.
pub struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    /// Starts one on `port`, with its working files in `directory`.
    ///
    /// # Panics
    /// When the program cannot be started (the message says to install redis-server).
    pub fn start(port: u16, directory: &Path) -> Self {
        let program = redis_server_program();
        let child = Command::new(&program)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(directory)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{program} starts ({error}); install redis-server"));
        OwnRedis { child }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
