//! `[turn]`: the TURN REST API credentials handed to WebRTC callers, the servers they name, the
//! servers' health probes and the embedded relay, and their translation into the
//! [`TurnService`] and the relay's [`RelaySettings`].
//!
//! The file writes the section flat ([`TurnKeys`]: `secret` set or not, `relay_enabled` and the
//! `relay_*` keys); it is read into the typed [`TurnConfig`], whose [`TurnSharedSecret`] says
//! where the signing secret comes from and whose [`TurnRelay`] carries the relay's settings
//! only when it runs.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::TenantId;
use switchboard_engine::time::Timestamp;
use switchboard_turn::credentials::{RetiredSecret, SecretRing};
use switchboard_turn::relay::RelaySettings;
use switchboard_turn::service::{TurnRealm, TurnService};

use super::section::{config_section, ensure_scheme};

config_section! {
    /// `[turn]`: TURN REST API credentials for WebRTC callers (coturn `use-auth-secret`):
    /// username = `<expiry unix seconds>:<tenant>:<user>:<key id>` (tenant and user
    /// percent-encoded, `:` as `%3A` and `%` as `%25`; the key id names the signing secret, so
    /// the embedded relay can find it after a rotation), password =
    /// base64(HMAC-SHA1(secret, username)).
    pub struct TurnKeys = "turn" {
        /// The shared secret that signs credentials (coturn's `static-auth-secret`). Without
        /// one, a random secret is generated on first start and kept in
        /// `<data_dir>/turn-secret`.
        pub secret: Option<String> = None; example r#""a-long-random-shared-secret""#,
        /// Credential lifetime when a client asks for none, in seconds.
        pub ttl_secs: u64 = 3600,
        /// The longest lifetime a client may ask for, in seconds (at most 86400).
        pub max_ttl_secs: u64 = 86_400,
        /// TURN servers handed to clients, e.g. `["turn:turn.example.com:3478?transport=udp",
        /// "turn:turn.example.com:3478?transport=tcp",
        /// "turns:turn.example.com:5349?transport=tcp"]`.
        pub uris: Vec<String> = Vec::new(),
        /// STUN servers handed to clients, e.g. `["stun:turn.example.com:3478"]`.
        pub stun_uris: Vec<String> = Vec::new(),
        /// Every server above is probed with a STUN binding request this often, in
        /// milliseconds (0 turns probing off); clients get reachable servers first, fastest
        /// first, and unreachable ones are left out (unless all are).
        pub health_check_interval_ms: u64 = 30_000,
        /// How long one probe waits for its answer, in milliseconds.
        pub health_check_timeout_ms: u64 = 2_000,
        /// Whether `serve` runs the embedded TURN relay (UDP), which accepts the credentials
        /// handed out (every tenant's secrets, retired ones until their time) and comes first
        /// in `iceServers`.
        pub relay_enabled: bool = true,
        /// The UDP address the embedded relay listens on (port 0 picks a free one).
        pub relay_listen: String = "127.0.0.1:3478".to_owned(),
        /// The address clients are told to reach the relay and its relayed ports at (the
        /// host's public address when callers are elsewhere).
        pub relay_public_ip: String = "127.0.0.1".to_owned(),
        /// The first UDP port relayed allocations may use.
        pub relay_min_port: u16 = 49_152,
        /// The last UDP port relayed allocations may use.
        pub relay_max_port: u16 = 65_535,
        /// The TURN realm the relay names in its challenges.
        pub relay_realm: String = "switchboard".to_owned(),
        /// Secrets replaced by `secret`, still accepted until a Unix time (seconds):
        ///
        /// ```toml
        /// [[turn.retired_secrets]]
        /// secret = "the-previous-secret"
        /// accepted_until_unix = 1767225600
        /// ```
        pub retired_secrets: Vec<RetiredTurnSecretConfig> = Vec::new(),
        /// Tenants with their own secret and servers (these entries, like the retired secrets',
        /// go after every other `[turn]` key):
        ///
        /// ```toml
        /// [[turn.tenants]]
        /// tenant = "acme"
        /// secret = "acme-shared-secret"
        /// uris = ["turn:turn.acme.example:3478?transport=udp"]
        /// stun_uris = ["stun:turn.acme.example:3478"]
        /// ```
        pub tenants: Vec<TenantTurnConfig> = Vec::new(),
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

/// `[turn]`, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "TurnKeys", into = "TurnKeys")]
pub struct TurnConfig {
    /// Where the secret that signs credentials comes from (`secret`).
    pub secret: TurnSharedSecret,
    /// Credential lifetime when a client asks for none, in seconds (`ttl_secs`).
    pub ttl_secs: u64,
    /// The longest lifetime a client may ask for, in seconds (`max_ttl_secs`).
    pub max_ttl_secs: u64,
    /// TURN servers handed to clients (`uris`).
    pub uris: Vec<String>,
    /// STUN servers handed to clients (`stun_uris`).
    pub stun_uris: Vec<String>,
    /// How often every server is probed, in milliseconds; 0 turns probing off
    /// (`health_check_interval_ms`).
    pub health_check_interval_ms: u64,
    /// How long one probe waits, in milliseconds (`health_check_timeout_ms`).
    pub health_check_timeout_ms: u64,
    /// Whether the embedded relay runs, and how (`relay_enabled`, `relay_*`).
    pub relay: TurnRelay,
    /// Secrets replaced by `secret`, still accepted until a time (`retired_secrets`).
    pub retired_secrets: Vec<RetiredTurnSecretConfig>,
    /// Tenants with their own secret and servers (`tenants`).
    pub tenants: Vec<TenantTurnConfig>,
}

/// Where the shared secret that signs TURN credentials comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnSharedSecret {
    /// Generated on first start and kept in `<data_dir>/turn-secret` (`secret` unset).
    GeneratedInDataDir,
    /// Given in the configuration (`secret`), shared with coturn.
    Configured(String),
}

/// Whether `serve` runs the embedded TURN relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnRelay {
    /// No relay (`relay_enabled = false`).
    Off,
    /// The embedded UDP relay, with its settings (`relay_*`).
    Embedded(EmbeddedRelayConfig),
}

/// The embedded relay's settings (`turn.relay_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedRelayConfig {
    /// The UDP address it listens on (`relay_listen`).
    pub listen: String,
    /// The address clients are told to reach it at (`relay_public_ip`).
    pub public_ip: String,
    /// The first relayed port (`relay_min_port`).
    pub min_port: u16,
    /// The last relayed port (`relay_max_port`).
    pub max_port: u16,
    /// The realm of its challenges (`relay_realm`).
    pub realm: String,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnKeys::default().into()
    }
}

impl Default for EmbeddedRelayConfig {
    fn default() -> Self {
        TurnKeys::default().embedded_relay()
    }
}

impl TurnKeys {
    fn embedded_relay(&self) -> EmbeddedRelayConfig {
        EmbeddedRelayConfig {
            listen: self.relay_listen.clone(),
            public_ip: self.relay_public_ip.clone(),
            min_port: self.relay_min_port,
            max_port: self.relay_max_port,
            realm: self.relay_realm.clone(),
        }
    }
}

impl From<TurnKeys> for TurnConfig {
    fn from(keys: TurnKeys) -> Self {
        let relay = if keys.relay_enabled {
            TurnRelay::Embedded(keys.embedded_relay())
        } else {
            TurnRelay::Off
        };
        TurnConfig {
            secret: match keys.secret {
                Some(secret) => TurnSharedSecret::Configured(secret),
                None => TurnSharedSecret::GeneratedInDataDir,
            },
            ttl_secs: keys.ttl_secs,
            max_ttl_secs: keys.max_ttl_secs,
            uris: keys.uris,
            stun_uris: keys.stun_uris,
            health_check_interval_ms: keys.health_check_interval_ms,
            health_check_timeout_ms: keys.health_check_timeout_ms,
            relay,
            retired_secrets: keys.retired_secrets,
            tenants: keys.tenants,
        }
    }
}

impl From<TurnConfig> for TurnKeys {
    fn from(config: TurnConfig) -> Self {
        let (relay_enabled, relay) = match config.relay {
            TurnRelay::Off => (false, EmbeddedRelayConfig::default()),
            TurnRelay::Embedded(relay) => (true, relay),
        };
        TurnKeys {
            secret: match config.secret {
                TurnSharedSecret::Configured(secret) => Some(secret),
                TurnSharedSecret::GeneratedInDataDir => None,
            },
            ttl_secs: config.ttl_secs,
            max_ttl_secs: config.max_ttl_secs,
            uris: config.uris,
            stun_uris: config.stun_uris,
            health_check_interval_ms: config.health_check_interval_ms,
            health_check_timeout_ms: config.health_check_timeout_ms,
            relay_enabled,
            relay_listen: relay.listen,
            relay_public_ip: relay.public_ip,
            relay_min_port: relay.min_port,
            relay_max_port: relay.max_port,
            relay_realm: relay.realm,
            retired_secrets: config.retired_secrets,
            tenants: config.tenants,
        }
    }
}

impl TurnConfig {
    /// Checks the lifetimes, the relay's settings (when it runs) and the URI schemes.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_ttl_secs == 0 || self.max_ttl_secs > 86_400 {
            bail!("turn.max_ttl_secs must be between 1 and 86400");
        }
        if let TurnRelay::Embedded(relay) = &self.relay {
            relay.relay_settings()?;
        }
        if self.ttl_secs == 0 || self.ttl_secs > self.max_ttl_secs {
            bail!("turn.ttl_secs must be between 1 and turn.max_ttl_secs");
        }
        let uri_lists = [
            (&self.uris, "turn.uris", &["turn:", "turns:"][..]),
            (&self.stun_uris, "turn.stun_uris", &["stun:", "stuns:"][..]),
        ];
        for (uris, key, schemes) in uri_lists {
            for uri in uris {
                ensure_scheme(&format!("{key}: {uri:?}"), uri, schemes)?;
            }
        }
        Ok(())
    }

    /// The TURN credential service: the configured secrets and servers, with `default_secret`
    /// (see [`super::turn_secret`]) for tenants without their own.
    ///
    /// # Errors
    /// An invalid tenant id or URI.
    pub fn turn_service(&self, default_secret: String) -> anyhow::Result<TurnService> {
        let realm = |secret: &str, uris: &[String], stun_uris: &[String]| TurnRealm {
            secrets: SecretRing::new(secret.as_bytes().to_vec()),
            turn_uris: uris.to_vec(),
            stun_uris: stun_uris.to_vec(),
        };
        let mut default_realm = realm(&default_secret, &self.uris, &self.stun_uris);
        default_realm.secrets.retired = self
            .retired_secrets
            .iter()
            .map(|retired| RetiredSecret {
                secret: retired.secret.as_bytes().to_vec(),
                accepted_until: Timestamp(retired.accepted_until_unix.saturating_mul(1000)),
            })
            .collect();
        let mut tenant_realms = Vec::new();
        for tenant in &self.tenants {
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
            self.ttl_secs,
            self.max_ttl_secs,
        ))
    }
}

impl EmbeddedRelayConfig {
    /// The embedded TURN relay's settings (`relay_*`).
    ///
    /// # Errors
    /// If an address does not parse, the port range is empty, or the realm is empty.
    pub fn relay_settings(&self) -> anyhow::Result<RelaySettings> {
        let listen = self
            .listen
            .parse()
            .with_context(|| format!("turn.relay_listen {:?} is not an ip:port", self.listen))?;
        let public_ip = self.public_ip.parse().with_context(|| {
            format!(
                "turn.relay_public_ip {:?} is not an IP address",
                self.public_ip
            )
        })?;
        if self.min_port == 0 || self.max_port < self.min_port {
            bail!("turn.relay_min_port must be at least 1 and at most turn.relay_max_port");
        }
        if self.realm.is_empty() {
            bail!("turn.relay_realm must not be empty");
        }
        Ok(RelaySettings {
            listen,
            public_ip,
            min_port: self.min_port,
            max_port: self.max_port,
            realm: self.realm.clone(),
        })
    }
}
