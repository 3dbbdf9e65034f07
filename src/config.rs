//! The typed configuration tree.
//!
//! Sources merge in this order, later winning: built-in defaults → the TOML file given with
//! `--config` → `SWITCHBOARD__SECTION__KEY` environment variables → command-line flags. The
//! result is validated once, before anything binds. Every key, with its default, is documented
//! in `config.example.toml`; a test checks that file against [`Config::default`].
//! Each component gets its own sub-structure ([`Config::system_settings`],
//! [`Config::websocket_settings`], ...), never the whole tree.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchboard_actors::conversation::ConversationSettings;
use switchboard_actors::restart::RestartPolicy;
use switchboard_actors::system::SystemSettings;
use switchboard_actors::writer::WriterSettings;
use switchboard_engine::ids::TenantId;
use switchboard_engine::rate_limit::{RateLimit, RateLimits};
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::MessageLimits;
use switchboard_transport::auth::{AuthSettings, TenantKey, TenantVerifier};
use switchboard_transport::settings::{HttpSettings, WebSocketSettings};
use switchboard_turn::credentials::{RetiredSecret, SecretRing};
use switchboard_turn::service::{TurnRealm, TurnService};

/// The whole configuration.
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
    /// Where call recordings' media is stored.
    pub recordings: RecordingsConfig,
}

/// Which object store keeps recorded media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStoreBackend {
    /// Files under `<data_dir>/objects`.
    #[default]
    Filesystem,
    /// An S3 service (`recordings.s3_*`); needs a build with the `s3` cargo feature.
    S3,
    /// In memory: lost on exit. For tests.
    Memory,
}

/// `[recordings]`: where call recordings' media is stored. Their metadata (consents, start and
/// stop, quality) is kept by the store `[storage]` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsConfig {
    /// `filesystem`, `s3` or `memory`. Default `filesystem`.
    pub object_store: ObjectStoreBackend,
    /// The S3 endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`), for
    /// `object_store = "s3"`. Default: none.
    pub s3_endpoint: Option<String>,
    /// The bucket; created at start if it does not exist. Default `switchboard-recordings`.
    pub s3_bucket: String,
    /// The region requests are signed for. Default `us-east-1`.
    pub s3_region: String,
    /// The access key id. Default: none.
    pub s3_access_key: Option<String>,
    /// The secret access key (or `SWITCHBOARD__RECORDINGS__S3_SECRET_KEY`). Default: none.
    pub s3_secret_key: Option<String>,
    /// Prepended to every object key in the bucket (`switchboard/`). Default: empty.
    pub s3_key_prefix: String,
    /// Path-style URLs (`<endpoint>/<bucket>/<key>`); false for virtual-hosted ones.
    /// Default true.
    pub s3_path_style: bool,
    /// The longest one S3 request may take, body included, in milliseconds. Default 120000.
    pub s3_request_timeout_ms: u64,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        Self {
            object_store: ObjectStoreBackend::Filesystem,
            s3_endpoint: None,
            s3_bucket: "switchboard-recordings".to_owned(),
            s3_region: "us-east-1".to_owned(),
            s3_access_key: None,
            s3_secret_key: None,
            s3_key_prefix: String::new(),
            s3_path_style: true,
            s3_request_timeout_ms: 120_000,
        }
    }
}

/// `[kafka]`: appends go through a Kafka topic to the MongoDB store (see docs/DELIVERY.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,host:port`); needs a build with the `kafka` cargo feature
    /// and `storage.backend = "mongodb"`. Default: none (no pipeline).
    pub brokers: Option<String>,
    /// The topic accepted entries are appended to. Default `chat.messages`.
    pub messages_topic: String,
    /// The topic persisters answer on. Default `chat.persisted`.
    pub replies_topic: String,
    /// The persisters' consumer group. Default `switchboard-persisters`.
    pub group_id: String,
    /// Partitions of the messages topic when Switchboard creates it. Default 16.
    pub partitions: i32,
    /// Replication factor of the topics when Switchboard creates them. Default 1.
    pub replication_factor: i32,
    /// How long the producer waits to batch records, in milliseconds. Default 2.
    pub linger_ms: u32,
    /// The persisters' consumer-group session timeout, in milliseconds. Default 6000.
    pub session_timeout_ms: u32,
    /// How long an append waits for the persister, in milliseconds. Default 10000.
    pub reply_timeout_ms: u64,
    /// Most records in one persister batch. Default 512.
    pub max_batch: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            messages_topic: "chat.messages".to_owned(),
            replies_topic: "chat.persisted".to_owned(),
            group_id: "switchboard-persisters".to_owned(),
            partitions: 16,
            replication_factor: 1,
            linger_ms: 2,
            session_timeout_ms: 6_000,
            reply_timeout_ms: 10_000,
            max_batch: 512,
        }
    }
}

/// `[cluster]`: how the engine nodes of a scale-out deployment (several nodes on one MongoDB)
/// tell each other what they stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The Redis server that carries the nodes' notices, their shared rate-limit budgets and
    /// presence (`redis://host:6379/0`); needs a build
    /// with the `redis` cargo feature. Default: none (a single node).
    pub redis_url: Option<String>,
    /// This node's id, unique in the deployment. Default: none, in which case a random one is
    /// chosen at start.
    pub node_id: Option<String>,
    /// What every Redis key and channel of the deployment starts with, so several deployments
    /// (staging and production, or parallel test runs) can share one Redis server: 1 to 32
    /// letters, digits, `_`, `-` or `.`. Default `sb`.
    pub key_prefix: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            node_id: None,
            key_prefix: "sb".to_owned(),
        }
    }
}

/// `[turn]`: the TURN REST API credentials (coturn `use-auth-secret`) handed to WebRTC callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// The shared secret that signs credentials (coturn's `static-auth-secret`). Default: none,
    /// in which case a random one is generated on first start and kept in
    /// `<data_dir>/turn-secret`.
    pub secret: Option<String>,
    /// Secrets replaced by `secret`, still accepted until a time (for the embedded relay).
    /// Default: none.
    pub retired_secrets: Vec<RetiredTurnSecretConfig>,
    /// Credential lifetime when the client asks for none, in seconds. Default 3600.
    pub ttl_secs: u64,
    /// The longest lifetime a client may ask for, in seconds (at most 86400). Default 86400.
    pub max_ttl_secs: u64,
    /// TURN server URIs (`turn:host:3478?transport=udp`, `turns:host:5349?transport=tcp`).
    /// Default: none.
    pub uris: Vec<String>,
    /// STUN server URIs (`stun:host:3478`). Default: none.
    pub stun_uris: Vec<String>,
    /// How often every TURN and STUN server is probed with a STUN binding request, in
    /// milliseconds; 0 turns probing off. Default 30000.
    pub health_check_interval_ms: u64,
    /// How long one probe waits for its answer, in milliseconds. Default 2000.
    pub health_check_timeout_ms: u64,
    /// Tenants with their own secret and servers. Default: none.
    pub tenants: Vec<TenantTurnConfig>,
    /// Whether `serve` runs the embedded TURN relay (UDP), which accepts the credentials
    /// handed out (every realm's secrets, rotation included) and comes first in `iceServers`.
    /// Default true.
    pub relay_enabled: bool,
    /// The UDP address the embedded relay listens on (port 0 picks a free one). Default
    /// `127.0.0.1:3478`.
    pub relay_listen: String,
    /// The address clients are told to reach the relay and its relayed ports at (the host's
    /// public address when callers are elsewhere). Default `127.0.0.1`.
    pub relay_public_ip: String,
    /// The first UDP port relayed allocations may use. Default 49152.
    pub relay_min_port: u16,
    /// The last UDP port relayed allocations may use. Default 65535.
    pub relay_max_port: u16,
    /// The TURN realm the relay names in its challenges. Default `switchboard`.
    pub relay_realm: String,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            secret: None,
            retired_secrets: Vec::new(),
            ttl_secs: 3600,
            max_ttl_secs: 86_400,
            uris: Vec::new(),
            stun_uris: Vec::new(),
            health_check_interval_ms: 30_000,
            health_check_timeout_ms: 2_000,
            tenants: Vec::new(),
            relay_enabled: true,
            relay_listen: "127.0.0.1:3478".to_owned(),
            relay_public_ip: "127.0.0.1".to_owned(),
            relay_min_port: 49_152,
            relay_max_port: 65_535,
            relay_realm: "switchboard".to_owned(),
        }
    }
}

/// One `[[turn.retired_secrets]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredTurnSecretConfig {
    /// The old secret.
    pub secret: String,
    /// Credentials it signed are refused from this Unix time (seconds) on.
    pub accepted_until_unix: u64,
}

/// One `[[turn.tenants]]` entry: a tenant's own secret and servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantTurnConfig {
    /// The tenant id.
    pub tenant: String,
    /// The tenant's shared secret.
    pub secret: String,
    /// The tenant's TURN server URIs.
    #[serde(default)]
    pub uris: Vec<String>,
    /// The tenant's STUN server URIs.
    #[serde(default)]
    pub stun_uris: Vec<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Where the embedded store and the generated development secret live. Default `./data`.
    pub data_dir: PathBuf,
    /// `human` (ANSI colours only when standard output is a terminal and `NO_COLOR` is unset or
    /// empty) or `json`. Default `human`.
    pub log_format: LogFormat,
    /// Log filter when `RUST_LOG` is unset. Default `info,lsm_tree=warn,fjall=warn`. Unless it
    /// (or `RUST_LOG`) names the `turn` target, `turn::server=off,turn::allocation=warn` is added
    /// (see [`crate::logging`]).
    pub log_level: String,
    /// How long each shutdown step may take, in milliseconds. Default 10000.
    pub shutdown_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Human,
            log_level: "info,lsm_tree=warn,fjall=warn".to_owned(),
            shutdown_timeout_ms: 10_000,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The HS256 development secret (at least 32 bytes). Default: none, in which case a random
    /// one is generated on first start and kept in `<data_dir>/dev-secret`.
    pub hs256_secret: Option<String>,
    /// When set, tokens carrying `aud` must name this audience. Default: none (tokens carrying
    /// `aud` are refused).
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Default 5.
    pub leeway_seconds: u64,
    /// Known tenants. Default: none, meaning any tenant with the development secret.
    pub tenants: Vec<TenantConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secret: None,
            audience: None,
            leeway_seconds: 5,
            tenants: Vec::new(),
        }
    }
}

/// One `[[limits.tenant_rates]]` entry: a tenant's own rates; keys left out keep the global
/// value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRatesConfig {
    /// The tenant id.
    pub tenant: String,
    /// As `limits.messages_per_minute`.
    pub messages_per_minute: Option<u32>,
    /// As `limits.messages_burst`.
    pub messages_burst: Option<u32>,
    /// As `limits.operations_per_minute`.
    pub operations_per_minute: Option<u32>,
    /// As `limits.operations_burst`.
    pub operations_burst: Option<u32>,
    /// As `limits.changes_per_minute`.
    pub changes_per_minute: Option<u32>,
    /// As `limits.changes_burst`.
    pub changes_burst: Option<u32>,
    /// As `limits.signals_per_minute`.
    pub signals_per_minute: Option<u32>,
    /// As `limits.signals_burst`.
    pub signals_burst: Option<u32>,
}

impl TenantRatesConfig {
    fn applied_to(&self, global: RateLimits) -> RateLimits {
        let limit = |per_minute: Option<u32>, burst: Option<u32>, base: RateLimit| RateLimit {
            per_minute: per_minute.unwrap_or(base.per_minute),
            burst: burst.unwrap_or(base.burst),
        };
        RateLimits {
            messages: limit(
                self.messages_per_minute,
                self.messages_burst,
                global.messages,
            ),
            operations: limit(
                self.operations_per_minute,
                self.operations_burst,
                global.operations,
            ),
            changes: limit(self.changes_per_minute, self.changes_burst, global.changes),
            signals: limit(self.signals_per_minute, self.signals_burst, global.signals),
        }
    }
}

/// One `[[auth.tenants]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant id (the `tenant` claim).
    pub id: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`. Default `HS256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// HS256 only: the tenant's own secret. Default: the development secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// RS256/ES256/EdDSA: the PEM public key, inline.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// RS256/ES256/EdDSA: a file holding the PEM public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Sustained sends per user per tenant per minute; 0 turns rate limiting off. Default 60.
    pub messages_per_minute: u32,
    /// Sends a user may make at once after a quiet period. Default 10.
    pub messages_burst: u32,
    /// Edits, deletes and reactions per user per tenant per minute; 0 = unlimited. Default 120.
    pub operations_per_minute: u32,
    /// Operations at once after a quiet period. Default 20.
    pub operations_burst: u32,
    /// Changes to conversations (members, roles, profile, archive, moderation) per user per
    /// tenant per minute; 0 = unlimited. Default 30.
    pub changes_per_minute: u32,
    /// Changes at once after a quiet period. Default 10.
    pub changes_burst: u32,
    /// Live signals (receipts, typing, presence) per user per tenant per minute; 0 = unlimited.
    /// Default 600.
    pub signals_per_minute: u32,
    /// Signals at once after a quiet period. Default 60.
    pub signals_burst: u32,
    /// Tenants whose users get rates of their own. Default: none.
    pub tenant_rates: Vec<TenantRatesConfig>,
    /// Longest message text, in UTF-8 bytes. Default 4096.
    pub max_message_bytes: usize,
    /// Largest WebSocket frame answered with an error frame; four times this closes the
    /// connection (1009). Default 65536.
    pub max_frame_bytes: usize,
    /// Largest HTTP request body. Default 65536.
    pub max_body_bytes: usize,
    /// Concurrent WebSocket connections per user; 0 = unlimited. Default 16.
    pub max_connections_per_user: usize,
    /// Bytes queued for one connection before it is closed as a slow consumer (4008).
    /// Default 1048576.
    pub outbound_queue_bytes: usize,
    /// Members per conversation, creator included. Default 1000.
    pub max_members: usize,
    /// Target conversations one forward may name. Default 5.
    pub forward_max_targets: usize,
    /// Messages one forward may copy. Default 10.
    pub forward_max_messages: usize,
    /// History page size when `limit` is absent. Default 50.
    pub history_default_limit: usize,
    /// Largest history page; larger requests are clamped. Default 200.
    pub history_max_limit: usize,
    /// Largest recording media upload (`PUT /v1/recordings/{id}/media`), in bytes. An upload
    /// streams to the object store and is never held whole: with the filesystem store a node
    /// holds a few MiB per upload whatever this is (4 uploads of 128 MiB at once raised its
    /// peak RSS by 30 to 38 MiB, and a test keeps that under 64 MiB; docs/PERFORMANCE.md), with
    /// S3 one 8 MiB part more. A download is still held whole while it is sent. Default
    /// 268435456 (256 MiB).
    pub max_recording_bytes: usize,
    /// Recording media uploads and downloads one node serves at once; more are refused (503
    /// `unavailable`) before anything is read, which bounds the memory they take. Default 4.
    pub max_concurrent_recording_transfers: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            messages_per_minute: 60,
            messages_burst: 10,
            operations_per_minute: 120,
            operations_burst: 20,
            changes_per_minute: 30,
            changes_burst: 10,
            signals_per_minute: 600,
            signals_burst: 60,
            tenant_rates: Vec::new(),
            max_message_bytes: 4096,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024,
            max_connections_per_user: 16,
            outbound_queue_bytes: 1024 * 1024,
            max_members: 1000,
            forward_max_targets: 5,
            forward_max_messages: 10,
            history_default_limit: 50,
            history_max_limit: 200,
            max_recording_bytes: 256 * 1024 * 1024,
            max_concurrent_recording_transfers: 4,
        }
    }
}

/// `[websocket]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSocketConfig {
    /// Server ping interval, in milliseconds. Default 25000.
    pub heartbeat_ms: u64,
    /// Close a connection that sends nothing for this long (4010), in milliseconds.
    /// Default 60000.
    pub idle_timeout_ms: u64,
    /// Read buffer per connection, in bytes. Default 1024 (chat frames are small; larger frames
    /// are read in several chunks).
    pub read_buffer_bytes: usize,
    /// Invalid frames tolerated per minute before closing (1008). Default 30.
    pub max_protocol_errors_per_minute: u32,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            heartbeat_ms: 25_000,
            idle_timeout_ms: 60_000,
            read_buffer_bytes: 1024,
            max_protocol_errors_per_minute: 30,
        }
    }
}

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

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `embedded`, `memory` or `mongodb`. Default `embedded`.
    pub backend: StorageBackend,
    /// The MongoDB connection string, for `backend = "mongodb"`. Default
    /// `mongodb://127.0.0.1:27017`.
    pub mongodb_uri: String,
    /// The MongoDB database, for `backend = "mongodb"`. Default `switchboard`.
    pub mongodb_database: String,
    /// How long a MongoDB operation waits for a reachable server before failing as
    /// `unavailable`, in milliseconds. Default 2000.
    pub mongodb_server_timeout_ms: u64,
    /// After this many consecutive MongoDB failures, calls fail at once (the circuit opens)
    /// until a probe finds the server again. Default 5.
    pub mongodb_breaker_failures: u32,
    /// The longest the circuit stays open before the next probe, in milliseconds (it starts at
    /// 500 ms and doubles on each failed probe). Default 10000.
    pub mongodb_breaker_max_cooldown_ms: u64,
    /// Most messages in one group commit. Default 1024.
    pub writer_max_batch: usize,
    /// How long one commit may take before its messages are rejected as `unavailable`,
    /// in milliseconds. Default 10000.
    pub append_timeout_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: StorageBackend::Embedded,
            mongodb_uri: "mongodb://127.0.0.1:27017".to_owned(),
            mongodb_database: "switchboard".to_owned(),
            mongodb_server_timeout_ms: 2_000,
            mongodb_breaker_failures: 5,
            mongodb_breaker_max_cooldown_ms: 10_000,
            writer_max_batch: 1024,
            append_timeout_ms: 10_000,
        }
    }
}

/// `[conversations]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConversationsConfig {
    /// Stop a conversation actor after this long with nobody joined, in milliseconds.
    /// Default 60000.
    pub idle_stop_after_ms: u64,
    /// Messages per storage read when a client catches up. Default 256.
    pub catch_up_page_size: usize,
    /// Recent messages kept encoded per conversation for fast catch-up. Default 1024.
    pub recent_frames: usize,
    /// How long a request may wait for an actor, in milliseconds. Default 10000.
    pub call_timeout_ms: u64,
    /// How long after sending its author may edit a message, or delete it for everyone
    /// without a moderator's role, in milliseconds. Default 900000 (15 minutes).
    pub edit_window_ms: u64,
    /// How long a call rings before it ends unanswered, in milliseconds. Default 30000.
    pub call_ringing_timeout_ms: u64,
    /// How long a call participant whose sessions all disconnected stays in the call, in
    /// milliseconds. Default 10000.
    pub call_disconnect_grace_ms: u64,
    /// How long call participants have to consent to a recording, in milliseconds (a
    /// participant who joins a recorded call gets as long). Default 30000.
    pub call_recording_consent_timeout_ms: u64,
}

impl Default for ConversationsConfig {
    fn default() -> Self {
        ConversationsConfig {
            idle_stop_after_ms: 60_000,
            catch_up_page_size: 256,
            recent_frames: 1024,
            call_timeout_ms: 10_000,
            edit_window_ms: 15 * 60 * 1000,
            call_ringing_timeout_ms: 30_000,
            call_disconnect_grace_ms: 10_000,
            call_recording_consent_timeout_ms: 30_000,
        }
    }
}

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
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and cross-field rules.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            (
                "limits.max_message_bytes",
                self.limits.max_message_bytes as u64,
            ),
            ("limits.max_frame_bytes", self.limits.max_frame_bytes as u64),
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64),
            (
                "limits.max_recording_bytes",
                self.limits.max_recording_bytes as u64,
            ),
            (
                "limits.max_concurrent_recording_transfers",
                self.limits.max_concurrent_recording_transfers as u64,
            ),
            (
                "recordings.s3_request_timeout_ms",
                self.recordings.s3_request_timeout_ms,
            ),
            (
                "limits.outbound_queue_bytes",
                self.limits.outbound_queue_bytes as u64,
            ),
            ("limits.max_members", self.limits.max_members as u64),
            (
                "limits.forward_max_targets",
                self.limits.forward_max_targets as u64,
            ),
            (
                "limits.forward_max_messages",
                self.limits.forward_max_messages as u64,
            ),
            (
                "limits.history_default_limit",
                self.limits.history_default_limit as u64,
            ),
            (
                "limits.history_max_limit",
                self.limits.history_max_limit as u64,
            ),
            ("websocket.heartbeat_ms", self.websocket.heartbeat_ms),
            ("websocket.idle_timeout_ms", self.websocket.idle_timeout_ms),
            (
                "websocket.read_buffer_bytes",
                self.websocket.read_buffer_bytes as u64,
            ),
            (
                "storage.writer_max_batch",
                self.storage.writer_max_batch as u64,
            ),
            ("storage.append_timeout_ms", self.storage.append_timeout_ms),
            (
                "storage.mongodb_server_timeout_ms",
                self.storage.mongodb_server_timeout_ms,
            ),
            (
                "storage.mongodb_breaker_failures",
                u64::from(self.storage.mongodb_breaker_failures),
            ),
            (
                "storage.mongodb_breaker_max_cooldown_ms",
                self.storage.mongodb_breaker_max_cooldown_ms,
            ),
            (
                "conversations.idle_stop_after_ms",
                self.conversations.idle_stop_after_ms,
            ),
            (
                "conversations.catch_up_page_size",
                self.conversations.catch_up_page_size as u64,
            ),
            (
                "conversations.call_timeout_ms",
                self.conversations.call_timeout_ms,
            ),
            (
                "server.shutdown_timeout_ms",
                self.server.shutdown_timeout_ms,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!("{key} must be greater than 0");
            }
        }
        if self.storage.backend == StorageBackend::Mongodb {
            if !cfg!(feature = "mongodb") {
                bail!(
                    "storage.backend = \"mongodb\" needs a build with the MongoDB adapter: \
                     cargo build --release --features mongodb"
                );
            }
            if !(self.storage.mongodb_uri.starts_with("mongodb://")
                || self.storage.mongodb_uri.starts_with("mongodb+srv://"))
            {
                bail!("storage.mongodb_uri must start with mongodb:// or mongodb+srv://");
            }
            if self.storage.mongodb_database.is_empty()
                || self.storage.mongodb_database.len() > 63
                || self
                    .storage
                    .mongodb_database
                    .contains(['/', '\\', '.', ' ', '"', '$'])
            {
                bail!(
                    "storage.mongodb_database must be 1 to 63 bytes without / \\ . space \" or $"
                );
            }
        }
        if let Some(url) = &self.cluster.redis_url {
            if !cfg!(feature = "redis") {
                bail!(
                    "cluster.redis_url needs a build with the Redis cluster bus: \
                     cargo build --release --features redis"
                );
            }
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("cluster.redis_url must start with redis:// or rediss://");
            }
            if self.storage.backend != StorageBackend::Mongodb {
                bail!(
                    "cluster.redis_url needs storage.backend = \"mongodb\": the nodes of a \
                     deployment share one store"
                );
            }
        }
        if self.kafka.brokers.is_some() {
            if !cfg!(feature = "kafka") {
                bail!(
                    "kafka.brokers needs a build with the Kafka pipeline: \
                     cargo build --release --features kafka"
                );
            }
            if self.storage.backend != StorageBackend::Mongodb {
                bail!(
                    "kafka.brokers needs storage.backend = \"mongodb\": the pipeline persists to it"
                );
            }
            if self.kafka.partitions < 1 || self.kafka.replication_factor < 1 {
                bail!("kafka.partitions and kafka.replication_factor must be at least 1");
            }
            if self.kafka.reply_timeout_ms == 0 || self.kafka.max_batch == 0 {
                bail!("kafka.reply_timeout_ms and kafka.max_batch must be greater than 0");
            }
        }
        if let Some(node_id) = &self.cluster.node_id
            && (node_id.is_empty() || node_id.len() > 64)
        {
            bail!("cluster.node_id must be 1 to 64 bytes");
        }
        let prefix = &self.cluster.key_prefix;
        if prefix.is_empty()
            || prefix.len() > 32
            || !prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
        {
            bail!("cluster.key_prefix must be 1 to 32 letters, digits, _, - or .");
        }
        if self.recordings.object_store == ObjectStoreBackend::S3 {
            if !cfg!(feature = "s3") {
                bail!(
                    "recordings.object_store = \"s3\" needs a build with the S3 adapter: \
                     cargo build --release --features s3"
                );
            }
            let missing: Vec<&str> = [
                ("recordings.s3_endpoint", &self.recordings.s3_endpoint),
                ("recordings.s3_access_key", &self.recordings.s3_access_key),
                ("recordings.s3_secret_key", &self.recordings.s3_secret_key),
            ]
            .into_iter()
            .filter(|(_, value)| value.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| name)
            .collect();
            if !missing.is_empty() {
                bail!(
                    "recordings.object_store = \"s3\" needs {}",
                    missing.join(", ")
                );
            }
        }
        if self.limits.history_default_limit > self.limits.history_max_limit {
            bail!("limits.history_default_limit must not exceed limits.history_max_limit");
        }
        if self.limits.messages_per_minute > 0 && self.limits.messages_burst == 0 {
            bail!("limits.messages_burst must be at least 1 when rate limiting is on");
        }
        if self.websocket.idle_timeout_ms <= self.websocket.heartbeat_ms {
            bail!("websocket.idle_timeout_ms must be longer than websocket.heartbeat_ms");
        }
        for rates in &self.limits.tenant_rates {
            TenantId::parse(&rates.tenant).map_err(|error| {
                anyhow::anyhow!(
                    "limits.tenant_rates: {:?} is not a valid tenant id ({error})",
                    rates.tenant
                )
            })?;
        }
        if self.turn.max_ttl_secs == 0 || self.turn.max_ttl_secs > 86_400 {
            bail!("turn.max_ttl_secs must be between 1 and 86400");
        }
        if self.turn.relay_enabled {
            self.relay_settings()?;
        }
        if self.turn.ttl_secs == 0 || self.turn.ttl_secs > self.turn.max_ttl_secs {
            bail!("turn.ttl_secs must be between 1 and turn.max_ttl_secs");
        }
        let uri_lists = [
            (&self.turn.uris, "turn.uris", &["turn:", "turns:"][..]),
            (
                &self.turn.stun_uris,
                "turn.stun_uris",
                &["stun:", "stuns:"][..],
            ),
        ];
        for (uris, key, schemes) in uri_lists {
            for uri in uris {
                if !schemes.iter().any(|scheme| uri.starts_with(scheme)) {
                    bail!("{key}: {uri:?} must start with {}", schemes.join(" or "));
                }
            }
        }
        if self.limits.max_message_bytes >= self.limits.max_frame_bytes {
            bail!("limits.max_message_bytes must be smaller than limits.max_frame_bytes");
        }
        self.server
            .listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("server.listen {:?} is not an address", self.server.listen))?;
        Ok(())
    }

    /// The global rate of each action class.
    fn rate_limits(&self) -> RateLimits {
        let limits = &self.limits;
        let limit = |per_minute, burst| RateLimit { per_minute, burst };
        RateLimits {
            messages: limit(limits.messages_per_minute, limits.messages_burst),
            operations: limit(limits.operations_per_minute, limits.operations_burst),
            changes: limit(limits.changes_per_minute, limits.changes_burst),
            signals: limit(limits.signals_per_minute, limits.signals_burst),
        }
    }

    /// The actor system's settings.
    pub fn system_settings(&self) -> SystemSettings {
        SystemSettings {
            conversation: ConversationSettings {
                message_limits: MessageLimits {
                    max_text_bytes: self.limits.max_message_bytes,
                    edit_window_ms: self.conversations.edit_window_ms,
                },
                idle_stop_after: Duration::from_millis(self.conversations.idle_stop_after_ms),
                catch_up_page_size: self.conversations.catch_up_page_size,
                recent_frames: self.conversations.recent_frames,
                call_ringing_timeout: Duration::from_millis(
                    self.conversations.call_ringing_timeout_ms,
                ),
                call_disconnect_grace: Duration::from_millis(
                    self.conversations.call_disconnect_grace_ms,
                ),
                call_recording_consent_timeout: Duration::from_millis(
                    self.conversations.call_recording_consent_timeout_ms,
                ),
            },
            writer: WriterSettings {
                max_batch: self.storage.writer_max_batch,
                append_timeout: Duration::from_millis(self.storage.append_timeout_ms),
            },
            rate_limits: self.rate_limits(),
            tenant_rate_limits: self
                .limits
                .tenant_rates
                .iter()
                .filter_map(|rates| {
                    // Validated in `validate`; an invalid id cannot reach here.
                    let tenant_id = TenantId::parse(&rates.tenant).ok()?;
                    Some((tenant_id, rates.applied_to(self.rate_limits())))
                })
                .collect(),
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
        WebSocketSettings {
            max_frame_bytes: self.limits.max_frame_bytes,
            hard_max_frame_bytes: self.limits.max_frame_bytes.saturating_mul(4),
            outbound_queue_bytes: self.limits.outbound_queue_bytes,
            heartbeat: Duration::from_millis(self.websocket.heartbeat_ms),
            idle_timeout: Duration::from_millis(self.websocket.idle_timeout_ms),
            read_buffer_bytes: self.websocket.read_buffer_bytes,
            max_protocol_errors_per_minute: self.websocket.max_protocol_errors_per_minute,
            ..WebSocketSettings::default()
        }
    }

    /// The HTTP settings.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            max_body_bytes: self.limits.max_body_bytes,
            history_default_limit: self.limits.history_default_limit,
            history_max_limit: self.limits.history_max_limit,
            max_recording_bytes: self.limits.max_recording_bytes,
            max_concurrent_recording_transfers: self.limits.max_concurrent_recording_transfers,
        }
    }

    /// The authenticator's settings, with the development secret resolved.
    ///
    /// # Errors
    /// For an unknown algorithm, a missing key or an unreadable key file.
    pub fn auth_settings(&self, development_secret: String) -> anyhow::Result<AuthSettings> {
        let mut tenants = Vec::new();
        for tenant in &self.auth.tenants {
            let tenant_id = TenantId::parse(&tenant.id).with_context(|| {
                format!("auth.tenants: {:?} is not a valid tenant id", tenant.id)
            })?;
            let public_key = || -> anyhow::Result<String> {
                match (&tenant.public_key_pem, &tenant.public_key_file) {
                    (Some(pem), None) => Ok(pem.clone()),
                    (None, Some(path)) => std::fs::read_to_string(path).with_context(|| {
                        format!(
                            "reading the key of tenant {tenant_id} from {}",
                            path.display()
                        )
                    }),
                    _ => bail!(
                        "tenant {tenant_id} needs exactly one of public_key_pem and public_key_file"
                    ),
                }
            };
            let verifier = match tenant.algorithm.as_deref().unwrap_or("HS256") {
                "HS256" => match &tenant.secret {
                    Some(secret) => TenantVerifier::Hs256 {
                        secret: secret.clone(),
                    },
                    None => TenantVerifier::DevelopmentSecret,
                },
                "RS256" => TenantVerifier::Rs256 {
                    public_key_pem: public_key()?,
                },
                "ES256" => TenantVerifier::Es256 {
                    public_key_pem: public_key()?,
                },
                "EdDSA" => TenantVerifier::EdDsa {
                    public_key_pem: public_key()?,
                },
                other => bail!(
                    "tenant {tenant_id}: algorithm {other:?} is not one of HS256, RS256, ES256, EdDSA"
                ),
            };
            tenants.push(TenantKey {
                tenant_id,
                verifier,
            });
        }
        Ok(AuthSettings {
            development_secret,
            audience: self.auth.audience.clone(),
            leeway_secs: self.auth.leeway_seconds,
            tenants,
        })
    }
}

/// The file that holds the generated development secret.
pub const DEV_SECRET_FILE: &str = "dev-secret";
/// The file that holds the generated TURN secret.
pub const TURN_SECRET_FILE: &str = "turn-secret";

impl Config {
    /// The embedded TURN relay's settings (`[turn] relay_*`).
    ///
    /// # Errors
    /// If an address does not parse, the port range is empty, or the realm is empty.
    pub fn relay_settings(&self) -> anyhow::Result<switchboard_turn::relay::RelaySettings> {
        let turn = &self.turn;
        let listen = turn.relay_listen.parse().with_context(|| {
            format!(
                "turn.relay_listen {:?} is not an ip:port",
                turn.relay_listen
            )
        })?;
        let public_ip = turn.relay_public_ip.parse().with_context(|| {
            format!(
                "turn.relay_public_ip {:?} is not an IP address",
                turn.relay_public_ip
            )
        })?;
        if turn.relay_min_port == 0 || turn.relay_max_port < turn.relay_min_port {
            bail!("turn.relay_min_port must be at least 1 and at most turn.relay_max_port");
        }
        if turn.relay_realm.is_empty() {
            bail!("turn.relay_realm must not be empty");
        }
        Ok(switchboard_turn::relay::RelaySettings {
            listen,
            public_ip,
            min_port: turn.relay_min_port,
            max_port: turn.relay_max_port,
            realm: turn.relay_realm.clone(),
        })
    }

    /// The TURN credential service: the configured secrets and servers, with `default_secret`
    /// (see [`turn_secret`]) for tenants without their own.
    ///
    /// # Errors
    /// An invalid tenant id or URI.
    pub fn turn_service(&self, default_secret: String) -> anyhow::Result<TurnService> {
        let turn = &self.turn;
        let realm = |secret: &str, uris: &[String], stun_uris: &[String]| TurnRealm {
            secrets: SecretRing::new(secret.as_bytes().to_vec()),
            turn_uris: uris.to_vec(),
            stun_uris: stun_uris.to_vec(),
        };
        let mut default_realm = realm(&default_secret, &turn.uris, &turn.stun_uris);
        default_realm.secrets.retired = turn
            .retired_secrets
            .iter()
            .map(|retired| RetiredSecret {
                secret: retired.secret.as_bytes().to_vec(),
                accepted_until: Timestamp(retired.accepted_until_unix.saturating_mul(1000)),
            })
            .collect();
        let mut tenant_realms = Vec::new();
        for tenant in &turn.tenants {
            let tenant_id = TenantId::parse(&tenant.tenant).with_context(|| {
                format!("turn.tenants: {:?} is not a valid tenant id", tenant.tenant)
            })?;
            tenant_realms.push((
                tenant_id,
                realm(&tenant.secret, &tenant.uris, &tenant.stun_uris),
            ));
        }
        Ok(TurnService::new(
            default_realm,
            tenant_realms,
            turn.ttl_secs,
            turn.max_ttl_secs,
        ))
    }
}

/// The TURN secret: the configured one, or the one kept in the data directory, or a new random
/// one written there (readable by the owner only).
///
/// # Errors
/// If the data directory cannot be created or the secret file cannot be read or written.
pub fn turn_secret(turn: &TurnConfig, data_dir: &Path) -> anyhow::Result<String> {
    match &turn.secret {
        Some(secret) => Ok(secret.clone()),
        None => secret_file(&data_dir.join(TURN_SECRET_FILE), data_dir),
    }
}

/// The development secret: the configured one, or the one kept in the data directory, or a new
/// random one written there (readable by the owner only). Never a built-in default.
///
/// # Errors
/// If the data directory cannot be created or the secret file cannot be read or written.
pub fn development_secret(auth: &AuthConfig, data_dir: &Path) -> anyhow::Result<String> {
    if let Some(secret) = &auth.hs256_secret {
        return Ok(secret.clone());
    }
    secret_file(&data_dir.join(DEV_SECRET_FILE), data_dir)
}

/// The secret kept in `path`, or a new random one written there (owner-readable only).
fn secret_file(path: &Path, data_dir: &Path) -> anyhow::Result<String> {
    let path = path.to_path_buf();
    if path.exists() {
        let secret = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(secret.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let secret = hex::encode(bytes);
    write_private_file(&path, &secret)?;
    // Another process may have won the race to create it; the file is the truth.
    let stored =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(stored.trim().to_owned())
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file
            .write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests;
