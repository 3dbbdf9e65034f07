//! `[search]`: the message search index (on by default: a tantivy index under
//! `<data_dir>/search` (one directory per generation), or in memory with `storage.backend = "memory"`), how the indexer
//! batches, how far one search looks and how many result pages are cached; and their translation into the search service's
//! [`SearchSettings`].

use std::time::Duration;

use switchboard_actors::search::service::SearchSettings;
use switchboard_engine::ids::TenantId;

use super::section::{config_section, ensure_positive};

config_section! {
    /// `[search]`: full-text search over messages. The indexer follows the store's event log
    /// into the index; a search finds only what its caller can read.
    pub struct SearchConfig = "search" {
        /// Whether messages are indexed and `GET /v1/search/messages` answers (503 when off).
        pub enabled: bool = true,
        /// The most log entries one commit of the index takes (a backlog drains in commits of
        /// this size).
        pub index_batch: usize = 8_192,
        /// How often the indexer reads the event log and commits what it found, in
        /// milliseconds. Each commit costs a segment and later merges, so fewer, larger commits
        /// index faster (the search benchmark: 17,000 messages/s per core in commits of 1,024,
        /// 24,000 in commits of 4,096); a message waits up to this long before it is searchable.
        pub index_interval_ms: u64 = 250,
        /// The most conversations one search looks in (the caller's first ones, in id order).
        pub max_conversations: usize = 10_000,
        /// How long a search with `consistent=true` waits for the index to take everything
        /// stored before it, in milliseconds (then 503).
        pub consistent_wait_ms: u64 = 2_000,
        /// How many pages of message results are cached (0: none). A cached page is used only
        /// while the index is at the generation and commit it was read at, for the same
        /// request and the same scope (memberships and hidden messages are read anew).
        pub result_cache_entries: usize = 1_000,
        /// The niceness indexing runs at, 0 to 19: the indexer's reads of the event log and its
        /// building of changes (on a thread of their own) and the embedded index's writer. At 19
        /// indexing takes only the CPU that serving leaves, so a saturated node keeps its message
        /// throughput and the index catches up when the load drops (`/metrics` shows the lag);
        /// at 0 indexing competes with serving as an equal.
        pub indexer_nice: i32 = 19,
        /// Tenants whose administrators (tokens with the `admin` role) may rebuild every
        /// tenant's documents on this node (`POST /v1/admin/search/reindex?scope=all`): the
        /// tenants of the deployment's operators, never a customer's, since a tenant with its
        /// own signing key mints its own roles. Empty (the default): an administrator rebuilds
        /// their own tenant only, and a rebuild of every tenant happens only when the index's
        /// schema changes (at start).
        pub operator_tenants: Vec<String> = Vec::new(),
    }
}

impl SearchConfig {
    /// Checks the numbers are positive.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        for tenant in &self.operator_tenants {
            anyhow::ensure!(
                TenantId::parse(tenant).is_ok(),
                "search.operator_tenants: {tenant:?} is not a tenant id"
            );
        }
        anyhow::ensure!(
            (0..=19).contains(&self.indexer_nice),
            "search.indexer_nice must be from 0 to 19, not {}",
            self.indexer_nice
        );
        ensure_positive(
            "search",
            [
                ("index_batch", self.index_batch as u64),
                ("index_interval_ms", self.index_interval_ms),
                ("max_conversations", self.max_conversations as u64),
                ("consistent_wait_ms", self.consistent_wait_ms),
            ],
        )
    }

    /// The search service's settings.
    pub fn search_settings(&self, call_timeout: Duration) -> SearchSettings {
        SearchSettings {
            max_conversations: self.max_conversations,
            call_timeout,
            consistent_wait: Duration::from_millis(self.consistent_wait_ms),
            result_cache_entries: self.result_cache_entries,
            operator_tenants: self
                .operator_tenants
                .iter()
                .filter_map(|tenant| TenantId::parse(tenant).ok())
                .collect(),
        }
    }

    /// How often the indexer reads the log.
    pub fn index_interval(&self) -> Duration {
        Duration::from_millis(self.index_interval_ms)
    }
}
