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

#[allow(unused_imports)] // each test file uses some of them
pub(crate) use switchboard_testing::{
    kafka_brokers, mongodb_uri, redis_url, s3_variable, server_variable,
};

/// A MongoDB store over a database of its own (named `<prefix>-<process id>-<n>`) on the test
/// server.
#[cfg(feature = "mongodb")]
pub(crate) async fn mongodb_message_store(prefix: &str) -> switchboard_storage::MongoMessageStore {
    switchboard_storage::MongoMessageStore::connect(&mongodb_uri(), &unique(prefix))
        .await
        .expect("the MongoDB store connects")
}
