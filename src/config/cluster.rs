//! `[cluster]`: how the engine nodes of a scale-out deployment (several nodes on one MongoDB)
//! reach each other through Redis, and which node this is.

use anyhow::bail;

use super::section::{config_section, ensure_scheme};
use super::storage::StorageConfig;

config_section! {
    /// `[cluster]`: several engine nodes on one shared store.
    pub struct ClusterConfig = "cluster" {
        /// Several engine nodes on one MongoDB (`storage.backend = "mongodb"`) tell each other
        /// what they stored, and who is typing, and share users' rate-limit budgets and
        /// presence, through this Redis server (`redis://host:6379/0`); needs a build with
        /// `--features redis`. Unset: a single node.
        pub redis_url: Option<String> = None; example r#""redis://127.0.0.1:6379/0""#,
        /// This node's id, unique in the deployment; a random one is chosen at start when
        /// unset.
        pub node_id: Option<String> = None; example r#""node-a""#,
        /// What every Redis key and channel of the deployment starts with, so several
        /// deployments (staging and production, or parallel test runs) can share one Redis
        /// server: 1 to 32 letters, digits, `_`, `-` or `.`.
        pub key_prefix: String = "sb".to_owned(),
    }
}

impl ClusterConfig {
    /// Checks the Redis URL (and that the build has the bus and the store is shared), the
    /// node id and the key prefix.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self, storage: &StorageConfig) -> anyhow::Result<()> {
        if let Some(url) = &self.redis_url {
            if !cfg!(feature = "redis") {
                bail!(
                    "cluster.redis_url needs a build with the Redis cluster bus: \
                     cargo build --release --features redis"
                );
            }
            ensure_scheme("cluster.redis_url", url, &["redis://", "rediss://"])?;
            if !storage.is_shared() {
                bail!(
                    "cluster.redis_url needs storage.backend = \"mongodb\": the nodes of a \
                     deployment share one store"
                );
            }
        }
        if let Some(node_id) = &self.node_id
            && (node_id.is_empty() || node_id.len() > 64)
        {
            bail!("cluster.node_id must be 1 to 64 bytes");
        }
        let prefix = &self.key_prefix;
        if prefix.is_empty()
            || prefix.len() > 32
            || !prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
        {
            bail!("cluster.key_prefix must be 1 to 32 letters, digits, _, - or .");
        }
        Ok(())
    }
}
