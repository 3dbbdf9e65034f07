//! The typed configuration tree.
//!
//! Sources merge in this order, later winning: built-in defaults → the TOML file given with
//! `--config` → `SWITCHBOARD__SECTION__KEY` environment variables → command-line flags. The
//! result is validated once, before anything binds.
//!
//! Each `[section]` lives in its own module (`config/<section>.rs`), declared with
//! `config_section!` (`config/section.rs`): there each key is written once, with its doc
//! comment and its default, next to the section's validation and its translation into the
//! settings of the component it configures. `config.example.toml` is generated from those declarations (a test
//! fails when it is out of step: `UPDATE_EXPECT=1 cargo test -p switchboard --lib config`
//! rewrites it). Each component gets its own sub-structure ([`Config::system_settings`],
//! [`Config::websocket_settings`], ...), never the whole tree.
//!
//! Mutually exclusive modes are enums carrying their own settings: the storage backend
//! ([`StorageBackend`]), the object store ([`ObjectStoreConfig`]), the TURN secret
//! ([`TurnSharedSecret`]) and the embedded relay ([`TurnRelay`]). The file keeps its flat keys
//! (`backend` with `mongodb_*` or `s3_*`, `secret`, `relay_enabled` with
//! `relay_*`): those sections are read as flat `*Keys` structs and converted.

mod auth;
mod cluster;
mod conversations;
mod kafka;
mod limits;
mod media;
mod objects;
mod search;
mod secrets;
pub mod section;
mod server;
mod storage;
mod turn;
mod websocket;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchboard_actors::restart::RestartPolicy;
use switchboard_actors::system::SystemSettings;
use switchboard_transport::auth::AuthSettings;
use switchboard_transport::settings::{HttpSettings, WebSocketSettings};
use switchboard_turn::service::TurnService;

use self::section::SectionDoc;

pub use auth::{AuthConfig, TenantConfig};
pub use cluster::ClusterConfig;
pub use conversations::ConversationsConfig;
pub use kafka::KafkaConfig;
pub use limits::{LimitsConfig, TenantRatesConfig};
pub use media::{MediaConfig, TenantMediaConfig};
pub use objects::{
    ObjectStoreBackend, ObjectStoreConfig, ObjectsConfig, ObjectsKeys, S3ObjectStoreConfig,
};
pub use search::SearchConfig;
pub use secrets::{
    DEV_SECRET_FILE, MEDIA_LINK_SECRET_FILE, TURN_SECRET_FILE, development_secret,
    media_link_secret, turn_secret,
};
pub use server::{LogFormat, ServerConfig};
pub use storage::{
    MongodbStorageConfig, StorageBackend, StorageBackendName, StorageConfig, StorageKeys,
};
pub use turn::{
    EmbeddedRelayConfig, RetiredTurnSecretConfig, TenantTurnConfig, TurnConfig, TurnKeys,
    TurnRelay, TurnSharedSecret,
};
pub use websocket::WebSocketConfig;

/// The whole configuration: one field per `[section]`, in the order `config.example.toml`
/// lists them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listening, data directory, logs.
    pub server: ServerConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Client-facing limits.
    pub limits: LimitsConfig,
    /// WebSocket timers and buffers.
    pub websocket: WebSocketConfig,
    /// Storage backend and the group-commit writer.
    pub storage: StorageConfig,
    /// Conversation actors.
    pub conversations: ConversationsConfig,
    /// TURN credentials for WebRTC callers.
    pub turn: TurnConfig,
    /// Several engine nodes on one shared store.
    pub cluster: ClusterConfig,
    /// The Kafka persistence pipeline.
    pub kafka: KafkaConfig,
    /// Where stored files' bytes go (media, recordings' media).
    pub objects: ObjectsConfig,
    /// Users' files.
    pub media: MediaConfig,
    /// Full-text search over messages.
    pub search: SearchConfig,
}

/// Every section's documentation, in the order of [`Config`]'s fields and of
/// `config.example.toml`.
pub const SECTIONS: &[SectionDoc] = &[
    SectionDoc::of::<ServerConfig>(),
    SectionDoc::of::<AuthConfig>(),
    SectionDoc::of::<LimitsConfig>(),
    SectionDoc::of::<WebSocketConfig>(),
    SectionDoc::of::<StorageKeys>(),
    SectionDoc::of::<ConversationsConfig>(),
    SectionDoc::of::<TurnKeys>(),
    SectionDoc::of::<ClusterConfig>(),
    SectionDoc::of::<KafkaConfig>(),
    SectionDoc::of::<ObjectsKeys>(),
    SectionDoc::of::<MediaConfig>(),
    SectionDoc::of::<SearchConfig>(),
];

/// Flags given on the command line; each overrides its config key when present.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--listen` → `server.listen`.
    pub listen: Option<String>,
    /// `--data-dir` → `server.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format` → `server.log_format`.
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Merges defaults, the file (if given), the environment and the flags, then validates.
    ///
    /// # Errors
    /// If the file cannot be read, a key is unknown or mistyped, or a value is out of range.
    pub fn load(config_file: Option<&Path>, overrides: &CliOverrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = config_file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("SWITCHBOARD__").split("__"));
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen));
        }
        if let Some(data_dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("server.data_dir", data_dir));
        }
        if let Some(log_format) = &overrides.log_format {
            figment = figment.merge(Serialized::default("server.log_format", log_format));
        }
        objects::ensure_no_recordings_section(&figment)?;
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and cross-field rules: each section checks itself, the cluster and the
    /// pipeline also check the store they need.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.limits.validate()?;
        self.objects.validate()?;
        self.media.validate()?;
        self.search.validate()?;
        self.websocket.validate()?;
        self.storage.validate()?;
        self.conversations.validate()?;
        self.cluster.validate(&self.storage)?;
        self.kafka.validate(&self.storage)?;
        self.turn.validate()?;
        self.server.validate()
    }

    /// The actor system's settings.
    pub fn system_settings(&self) -> SystemSettings {
        SystemSettings {
            conversation: self
                .conversations
                .conversation_settings(&self.limits, self.media.max_attachments),
            writer: self.storage.writer_settings(),
            rate_limits: self.limits.rate_limits(),
            tenant_rate_limits: self.limits.tenant_rate_limits(),
            max_connections_per_user: self.limits.max_connections_per_user,
            max_members: self.limits.max_members,
            forward_max_targets: self.limits.forward_max_targets,
            forward_max_messages: self.limits.forward_max_messages,
            heartbeat_ms: self.websocket.heartbeat_ms,
            call_timeout: Duration::from_millis(self.conversations.call_timeout_ms),
            restart_policy: RestartPolicy::default(),
        }
    }

    /// The WebSocket settings.
    pub fn websocket_settings(&self) -> WebSocketSettings {
        self.websocket.websocket_settings(&self.limits)
    }

    /// The HTTP settings.
    pub fn http_settings(&self) -> HttpSettings {
        self.limits.http_settings()
    }

    /// The authenticator's settings, with the development secret resolved.
    ///
    /// # Errors
    /// For an unknown algorithm, a missing key or an unreadable key file.
    pub fn auth_settings(&self, development_secret: String) -> anyhow::Result<AuthSettings> {
        self.auth.auth_settings(development_secret)
    }

    /// The TURN credential service: the configured secrets and servers, with `default_secret`
    /// (see [`turn_secret`]) for tenants without their own.
    ///
    /// # Errors
    /// An invalid tenant id or URI.
    pub fn turn_service(&self, default_secret: String) -> anyhow::Result<TurnService> {
        self.turn.turn_service(default_secret)
    }
}

#[cfg(test)]
mod tests;
