//! `[limits]`: what one client may send and how much (rates, sizes, members, forwards, history
//! pages, recording transfers), and its translation into the engine's [`RateLimits`] and the
//! transport's [`HttpSettings`].

use anyhow::bail;
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::TenantId;
use switchboard_engine::rate_limit::{RateLimit, RateLimits};
use switchboard_transport::settings::HttpSettings;

use super::section::{config_section, ensure_positive};

config_section! {
    /// `[limits]`: client-facing limits.
    pub struct LimitsConfig = "limits" {
        /// Sustained sends per user per tenant per minute (token bucket); 0 turns rate
        /// limiting off, for load tests.
        pub messages_per_minute: u32 = 60,
        /// Sends a user may make at once after a quiet period.
        pub messages_burst: u32 = 10,
        /// Edits, deletes and reactions per user per tenant per minute; 0 = unlimited.
        pub operations_per_minute: u32 = 120,
        /// Operations a user may make at once after a quiet period.
        pub operations_burst: u32 = 20,
        /// Changes to conversations (members, roles, profile, archive, moderation) per user
        /// per tenant per minute; 0 = unlimited.
        pub changes_per_minute: u32 = 30,
        /// Changes a user may make at once after a quiet period.
        pub changes_burst: u32 = 10,
        /// Live signals (read and delivered receipts, typing, presence) per user per tenant
        /// per minute; 0 = unlimited.
        pub signals_per_minute: u32 = 600,
        /// Signals a user may send at once after a quiet period.
        pub signals_burst: u32 = 60,
        /// Searches per user per tenant per minute; 0 = unlimited.
        pub search_per_minute: u32 = 60,
        /// Searches a user may make at once after a quiet period.
        pub search_burst: u32 = 10,
        /// Longest message text, in UTF-8 bytes (rejected with `too_large`).
        pub max_message_bytes: usize = 4096,
        /// Largest WebSocket frame: bigger frames get an error frame (`frame_too_large`);
        /// frames over four times this close the connection with 1009.
        pub max_frame_bytes: usize = 64 * 1024,
        /// Largest HTTP request body (413 `too_large`).
        pub max_body_bytes: usize = 64 * 1024,
        /// Concurrent WebSocket connections per user; 0 = unlimited (close 4009).
        pub max_connections_per_user: usize = 16,
        /// Bytes queued for one connection before it is closed as a slow consumer (4008).
        pub outbound_queue_bytes: usize = 1024 * 1024,
        /// Members per conversation, creator included.
        pub max_members: usize = 1000,
        /// Target conversations one forward may name.
        pub forward_max_targets: usize = 5,
        /// Messages one forward may copy.
        pub forward_max_messages: usize = 10,
        /// History page size when `limit` is absent.
        pub history_default_limit: usize = 50,
        /// Largest history page; larger `limit`s are clamped to it.
        pub history_max_limit: usize = 200,
        /// Largest recording media upload (`PUT /v1/recordings/{id}/media`), in bytes (413
        /// `too_large` above it). An upload streams to the object store and is never held
        /// whole: with the filesystem store a node holds a few MiB per upload whatever this is
        /// (4 uploads of 128 MiB at once raised its peak RSS by 30 to 38 MiB, and a test keeps
        /// that under 64 MiB; docs/PERFORMANCE.md), with S3 one 8 MiB part more. A download is
        /// still held whole while it is sent.
        pub max_recording_bytes: usize = 256 * 1024 * 1024,
        /// Recording media uploads and downloads one node serves at once; more are refused
        /// (503 `unavailable`) before anything is read, which bounds the memory they take.
        pub max_concurrent_recording_transfers: usize = 4,
        /// Tenants whose users get rates of their own; keys left out keep the values above:
        ///
        /// ```toml
        /// [[limits.tenant_rates]]
        /// tenant = "acme"
        /// messages_per_minute = 600
        /// messages_burst = 50
        /// ```
        ///
        /// Such entries go after every other `[limits]` key.
        pub tenant_rates: Vec<TenantRatesConfig> = Vec::new(),
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
    /// As `limits.search_per_minute`.
    pub search_per_minute: Option<u32>,
    /// As `limits.search_burst`.
    pub search_burst: Option<u32>,
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
            search: limit(self.search_per_minute, self.search_burst, global.search),
        }
    }
}

impl LimitsConfig {
    /// Checks sizes and counts are positive, and the pairs that bound each other.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "limits",
            [
                ("max_message_bytes", self.max_message_bytes as u64),
                ("max_frame_bytes", self.max_frame_bytes as u64),
                ("max_body_bytes", self.max_body_bytes as u64),
                ("max_recording_bytes", self.max_recording_bytes as u64),
                (
                    "max_concurrent_recording_transfers",
                    self.max_concurrent_recording_transfers as u64,
                ),
                ("outbound_queue_bytes", self.outbound_queue_bytes as u64),
                ("max_members", self.max_members as u64),
                ("forward_max_targets", self.forward_max_targets as u64),
                ("forward_max_messages", self.forward_max_messages as u64),
                ("history_default_limit", self.history_default_limit as u64),
                ("history_max_limit", self.history_max_limit as u64),
            ],
        )?;
        if self.history_default_limit > self.history_max_limit {
            bail!("limits.history_default_limit must not exceed limits.history_max_limit");
        }
        if self.messages_per_minute > 0 && self.messages_burst == 0 {
            bail!("limits.messages_burst must be at least 1 when rate limiting is on");
        }
        for rates in &self.tenant_rates {
            TenantId::parse(&rates.tenant).map_err(|error| {
                anyhow::anyhow!(
                    "limits.tenant_rates: {:?} is not a valid tenant id ({error})",
                    rates.tenant
                )
            })?;
        }
        if self.max_message_bytes >= self.max_frame_bytes {
            bail!("limits.max_message_bytes must be smaller than limits.max_frame_bytes");
        }
        Ok(())
    }

    /// The global rate of each action class.
    pub fn rate_limits(&self) -> RateLimits {
        let limit = |per_minute, burst| RateLimit { per_minute, burst };
        RateLimits {
            messages: limit(self.messages_per_minute, self.messages_burst),
            operations: limit(self.operations_per_minute, self.operations_burst),
            changes: limit(self.changes_per_minute, self.changes_burst),
            signals: limit(self.signals_per_minute, self.signals_burst),
            search: limit(self.search_per_minute, self.search_burst),
        }
    }

    /// Each tenant's own rates, the global ones where it names none.
    pub fn tenant_rate_limits<Map>(&self) -> Map
    where
        Map: FromIterator<(TenantId, RateLimits)>,
    {
        self.tenant_rates
            .iter()
            .filter_map(|rates| {
                // Validated in `validate`; an invalid id cannot reach here.
                let tenant_id = TenantId::parse(&rates.tenant).ok()?;
                Some((tenant_id, rates.applied_to(self.rate_limits())))
            })
            .collect()
    }

    /// The HTTP settings.
    pub fn http_settings(&self) -> HttpSettings {
        HttpSettings {
            max_body_bytes: self.max_body_bytes,
            history_default_limit: self.history_default_limit,
            history_max_limit: self.history_max_limit,
            max_recording_bytes: self.max_recording_bytes,
            max_concurrent_recording_transfers: self.max_concurrent_recording_transfers,
        }
    }
}
