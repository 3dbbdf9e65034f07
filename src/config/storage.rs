//! `[storage]`: which store backs the engine (embedded, memory or MongoDB, with the MongoDB
//! keys only in the MongoDB mode) and the group-commit writer, and their translation into the
//! actors' [`WriterSettings`] and the MongoDB adapter's circuit breaker.
//!
//! The file writes the section flat ([`StorageKeys`]: `backend` names the mode, `mongodb_*`
//! configure it); it is read into the typed [`StorageConfig`], whose [`StorageBackend`] carries
//! the MongoDB settings only when MongoDB is chosen.

use std::time::Duration;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use switchboard_actors::writer::WriterSettings;

use super::section::{config_section, ensure_positive, ensure_scheme};

/// The `backend` key: which storage adapter backs the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackendName {
    /// The embedded, durable store in `<data_dir>/store` (fjall).
    #[default]
    Embedded,
    /// In memory: lost on exit. For tests and throwaway demos.
    Memory,
    /// A MongoDB deployment shared by every engine node; needs a build with the `mongodb`
    /// cargo feature.
    Mongodb,
}

config_section! {
    /// `[storage]`: the storage backend and the group-commit writer.
    pub struct StorageKeys = "storage" {
        /// `"embedded"` (durable, in `<data_dir>/store`), `"memory"` (lost on exit) or
        /// `"mongodb"` (shared by every node; needs a build with `--features mongodb`).
        pub backend: StorageBackendName = StorageBackendName::Embedded,
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

/// `[storage]`, typed: the backend with its own settings, and the group-commit writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StorageKeys", into = "StorageKeys")]
pub struct StorageConfig {
    /// Which store backs the engine (`backend`, `mongodb_*`).
    pub backend: StorageBackend,
    /// Most messages in one group commit (`writer_max_batch`).
    pub writer_max_batch: usize,
    /// How long one commit may take, in milliseconds (`append_timeout_ms`).
    pub append_timeout_ms: u64,
}

/// Which storage adapter backs the engine, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageBackend {
    /// The embedded, durable store in `<data_dir>/store` (fjall).
    Embedded,
    /// In memory: lost on exit. For tests and throwaway demos.
    Memory,
    /// A MongoDB deployment shared by every engine node; needs a build with the `mongodb`
    /// cargo feature.
    Mongodb(MongodbStorageConfig),
}

/// The MongoDB store's settings (`storage.mongodb_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct MongodbStorageConfig {
    /// The connection string (`mongodb_uri`).
    pub uri: String,
    /// The database (`mongodb_database`).
    pub database: String,
    /// How long an operation waits for a reachable server, in milliseconds
    /// (`mongodb_server_timeout_ms`).
    pub server_timeout_ms: u64,
    /// Consecutive failures that open the circuit (`mongodb_breaker_failures`).
    pub breaker_failures: u32,
    /// The longest the circuit stays open, in milliseconds
    /// (`mongodb_breaker_max_cooldown_ms`).
    pub breaker_max_cooldown_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::from_keys(StorageKeys::default())
    }
}

impl Default for MongodbStorageConfig {
    fn default() -> Self {
        StorageKeys::default().mongodb()
    }
}

impl StorageKeys {
    /// The MongoDB settings these keys give, whichever backend they choose.
    fn mongodb(&self) -> MongodbStorageConfig {
        MongodbStorageConfig {
            uri: self.mongodb_uri.clone(),
            database: self.mongodb_database.clone(),
            server_timeout_ms: self.mongodb_server_timeout_ms,
            breaker_failures: self.mongodb_breaker_failures,
            breaker_max_cooldown_ms: self.mongodb_breaker_max_cooldown_ms,
        }
    }
}

impl TryFrom<StorageKeys> for StorageConfig {
    type Error = anyhow::Error;

    /// The typed section. The MongoDB numbers must be positive whichever backend is chosen,
    /// as they always had to be.
    fn try_from(keys: StorageKeys) -> anyhow::Result<Self> {
        keys.mongodb().ensure_positive()?;
        Ok(StorageConfig::from_keys(keys))
    }
}

impl From<StorageConfig> for StorageKeys {
    fn from(config: StorageConfig) -> Self {
        let (backend, mongodb) = match config.backend {
            StorageBackend::Embedded => (StorageBackendName::Embedded, None),
            StorageBackend::Memory => (StorageBackendName::Memory, None),
            StorageBackend::Mongodb(mongodb) => (StorageBackendName::Mongodb, Some(mongodb)),
        };
        let mongodb = mongodb.unwrap_or_default();
        StorageKeys {
            backend,
            mongodb_uri: mongodb.uri,
            mongodb_database: mongodb.database,
            mongodb_server_timeout_ms: mongodb.server_timeout_ms,
            mongodb_breaker_failures: mongodb.breaker_failures,
            mongodb_breaker_max_cooldown_ms: mongodb.breaker_max_cooldown_ms,
            writer_max_batch: config.writer_max_batch,
            append_timeout_ms: config.append_timeout_ms,
        }
    }
}

impl StorageConfig {
    fn from_keys(keys: StorageKeys) -> Self {
        let backend = match keys.backend {
            StorageBackendName::Embedded => StorageBackend::Embedded,
            StorageBackendName::Memory => StorageBackend::Memory,
            StorageBackendName::Mongodb => StorageBackend::Mongodb(keys.mongodb()),
        };
        StorageConfig {
            backend,
            writer_max_batch: keys.writer_max_batch,
            append_timeout_ms: keys.append_timeout_ms,
        }
    }

    /// Whether every node of a deployment can share this store (MongoDB).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, StorageBackend::Mongodb(_))
    }

    /// Checks the writer's numbers are positive and, for MongoDB, its settings.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "storage",
            [
                ("writer_max_batch", self.writer_max_batch as u64),
                ("append_timeout_ms", self.append_timeout_ms),
            ],
        )?;
        if let StorageBackend::Mongodb(mongodb) = &self.backend {
            mongodb.validate()?;
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
}

impl MongodbStorageConfig {
    fn ensure_positive(&self) -> anyhow::Result<()> {
        ensure_positive(
            "storage",
            [
                ("mongodb_server_timeout_ms", self.server_timeout_ms),
                ("mongodb_breaker_failures", u64::from(self.breaker_failures)),
                (
                    "mongodb_breaker_max_cooldown_ms",
                    self.breaker_max_cooldown_ms,
                ),
            ],
        )
    }

    /// Checks the build has the adapter, the numbers are positive, and the URI and database
    /// name are well formed.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.ensure_positive()?;
        if !cfg!(feature = "mongodb") {
            bail!(
                "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
                 cargo build --release --features mongodb"
            );
        }
        ensure_scheme(
            "storage.mongodb_uri",
            &self.uri,
            &["mongodb://", "mongodb+srv://"],
        )?;
        let database = &self.database;
        if database.is_empty()
            || database.len() > 63
            || database.contains(['/', '\\', '.', ' ', '"', '$'])
        {
            bail!("storage.mongodb_database must be 1 to 63 bytes without / \\ . space \" or $");
        }
        Ok(())
    }

    /// How long an operation waits for a reachable server.
    pub fn server_timeout(&self) -> Duration {
        Duration::from_millis(self.server_timeout_ms)
    }

    /// The circuit breaker in front of the MongoDB store.
    pub fn breaker_settings(&self) -> switchboard_storage::breaker::BreakerSettings {
        let max_cooldown = Duration::from_millis(self.breaker_max_cooldown_ms);
        switchboard_storage::breaker::BreakerSettings {
            failures_to_open: self.breaker_failures,
            initial_cooldown: Duration::from_millis(500).min(max_cooldown),
            max_cooldown,
        }
    }
}
