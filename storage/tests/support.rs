//! What every storage test file shares: ids from short names, names unique to one run, and
//! the addresses of the test servers, read from the `SWITCHBOARD_TEST_*` variables that
//! `scripts/test-services env-file` sets.
//!
//! Each test file includes it with `mod support;` and uses what it needs, hence the
//! `dead_code` allowance. Cargo also builds it as a test target of its own, which holds no
//! test. A variable that is missing fails the test that needs it, loudly, naming the command
//! that starts the server: no test passes because its server is away.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_engine::ids::{ClientId, ConversationId, TenantId, UserId};

/// The time every fixture's ids and timestamps are built from.
pub(crate) const BASE_MILLIS: u64 = 1_700_000_000_000;

pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("test tenant ids are valid")
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

pub(crate) fn client(name: &str) -> ClientId {
    ClientId::parse(name).expect("test client ids are valid")
}

/// Conversation ids that sort like `number` and are adjacent for adjacent numbers, so range
/// scans of one conversation are checked against direct neighbours.
pub(crate) fn conversation_id(number: u128) -> ConversationId {
    ConversationId::from_parts(BASE_MILLIS, number)
}

/// `<prefix>-<process id>-<n>`, with `n` new on every call: a name no other test and no
/// earlier run (against a server that kept its data) has used.
pub(crate) fn unique(prefix: &str) -> String {
    static NAMES: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

/// A tenant of its own (see [`unique`]), for tests on a shared server.
pub(crate) fn unique_tenant(prefix: &str) -> TenantId {
    TenantId::parse(&unique(prefix)).expect("valid tenant id")
}

/// The value of a `SWITCHBOARD_TEST_*` variable that names a server `scripts/test-services`
/// starts.
///
/// # Panics
/// When the variable is not set: the message says how to start the server.
pub(crate) fn server_variable(name: &str, service: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is needed by the tests that run against {service} \
             (scripts/test-services start {service}, then . \"$(scripts/test-services env-file)\")"
        )
    })
}

/// The MongoDB server (`SWITCHBOARD_TEST_MONGODB_URI`).
pub(crate) fn mongodb_uri() -> String {
    server_variable("SWITCHBOARD_TEST_MONGODB_URI", "mongodb")
}

/// The Redis server (`SWITCHBOARD_TEST_REDIS_URL`).
pub(crate) fn redis_url() -> String {
    server_variable("SWITCHBOARD_TEST_REDIS_URL", "redis")
}

/// The Kafka brokers (`SWITCHBOARD_TEST_KAFKA_BROKERS`).
pub(crate) fn kafka_brokers() -> String {
    server_variable("SWITCHBOARD_TEST_KAFKA_BROKERS", "kafka")
}

/// A variable of the S3 service (`SWITCHBOARD_TEST_S3_ENDPOINT`, `_ACCESS_KEY`,
/// `_SECRET_KEY`, `_DATA_DIR`).
pub(crate) fn s3_variable(name: &str) -> String {
    server_variable(name, "s3")
}

/// The `redis-server` program that tests which stop and restart a Redis of their own run
/// (`SWITCHBOARD_TEST_REDIS_SERVER`, else the one on the `PATH`).
pub(crate) fn redis_server_program() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A MongoDB store over a database of its own (named `<prefix>-<process id>-<n>`) on the test
/// server.
#[cfg(feature = "mongodb")]
pub(crate) async fn mongodb_message_store(prefix: &str) -> switchboard_storage::MongoMessageStore {
    switchboard_storage::MongoMessageStore::connect(&mongodb_uri(), &unique(prefix))
        .await
        .expect("the MongoDB store connects")
}
