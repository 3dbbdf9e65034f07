//! `[storage]`: which store backs the engine (embedded, memory or MongoDB) and the group-commit
//! writer, and their translation into the actors' [`WriterSettings`] and the MongoDB adapter's
//! circuit breaker.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use switchboard_actors::writer::WriterSettings;

use super::section::{config_section, ensure_positive, ensure_scheme};

/// Which storage adapter backs the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// The embedded, durable store in `<data_dir>/store` (fjall).
    #[default]
    Embedded,
    /// In memory: lost on exit. For tests and throwaway demos.
    Memory,
    /// A MongoDB deployment shared by every engine node (`storage.mongodb_uri`); needs a
    /// build with the `mongodb` cargo feature.
    Mongodb,
}

config_section! {
    /// `[storage]`: the storage backend and the group-commit writer.
    pub struct StorageConfig = "storage" {
        /// `"embedded"` (durable, in `<data_dir>/store`), `"memory"` (lost on exit) or
        /// `"mongodb"` (shared by every node; needs a build with `--features mongodb`).
        pub backend: StorageBackend = StorageBackend::Embedded,
        /// For `backend = "mongodb"`: the connection string. The engine starts even when
        /// MongoDB is not reachable yet; `/ready` reports it until it is.
        pub mongodb_uri: String = "mongodb://127.0.0.1:27017".to_owned(),
        /// For `backend = "mongodb"`: the database.
        pub mongodb_database: String = "switchboard".to_owned(),
        /// How long a MongoDB operation waits for a reachable server before failing as
        /// `unavailable`, in milliseconds.
        pub mongodb_server_timeout_ms: u64 = 2_000,
        /// After this many consecutive MongoDB failures, calls fail at once (the circuit
        /// opens) until a probe finds the server again.
        pub mongodb_breaker_failures: u32 = 5,
        /// The longest the circuit stays open before the next probe, in milliseconds (it
        /// starts at 500 ms and doubles on each failed probe).
        pub mongodb_breaker_max_cooldown_ms: u64 = 10_000,
        /// Most messages in one group commit (one fsync).
        pub writer_max_batch: usize = 1024,
        /// How long one commit may take before its messages are rejected as `unavailable`, in
        /// milliseconds.
        pub append_timeout_ms: u64 = 10_000,
    }
}

impl StorageConfig {
    /// Checks sizes and timers are positive and, for MongoDB, that the build has the adapter
    /// and the URI and database name are well formed.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "storage",
            [
                ("writer_max_batch", self.writer_max_batch as u64),
                ("append_timeout_ms", self.append_timeout_ms),
                ("mongodb_server_timeout_ms", self.mongodb_server_timeout_ms),
                (
                    "mongodb_breaker_failures",
                    u64::from(self.mongodb_breaker_failures),
                ),
                (
                    "mongodb_breaker_max_cooldown_ms",
                    self.mongodb_breaker_max_cooldown_ms,
                ),
            ],
        )?;
        if self.backend == StorageBackend::Mongodb {
            if !cfg!(feature = "mongodb") {
                bail!(
                    "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
                     cargo build --release --features mongodb"
                );
            }
            ensure_scheme(
                "storage.mongodb_uri",
                &self.mongodb_uri,
                &["mongodb://", "mongodb+srv://"],
            )?;
            let database = &self.mongodb_database;
            if database.is_empty()
                || database.len() > 63
                || database.contains(['/', '\\', '.', ' ', '"', '$'])
            {
                bail!(
                    "storage.mongodb_database must be 1 to 63 bytes without / \\ . space \" or $"
                );
            }
        }
        Ok(())
    }

    /// The group-commit writer's settings.
    pub fn writer_settings(&self) -> WriterSettings {
        WriterSettings {
            max_batch: self.writer_max_batch,
            append_timeout: Duration::from_millis(self.append_timeout_ms),
        }
    }

    /// How long a MongoDB operation waits for a reachable server.
    pub fn mongodb_server_timeout(&self) -> Duration {
        Duration::from_millis(self.mongodb_server_timeout_ms)
    }

    /// The circuit breaker in front of the MongoDB store.
    pub fn mongodb_breaker_settings(&self) -> switchboard_storage::breaker::BreakerSettings {
        let max_cooldown = Duration::from_millis(self.mongodb_breaker_max_cooldown_ms);
        switchboard_storage::breaker::BreakerSettings {
            failures_to_open: self.mongodb_breaker_failures,
            initial_cooldown: Duration::from_millis(500).min(max_cooldown),
            max_cooldown,
        }
    }
}
