//! `[server]`: where the server listens, where it keeps its data, how it logs and how long
//! shutdown may take.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::section::{config_section, ensure_positive};

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

config_section! {
    /// `[server]`: listening, data directory, logs.
    pub struct ServerConfig = "server" {
        /// Address to listen on (HTTP API and WebSocket on the same port).
        pub listen: String = "127.0.0.1:8080".to_owned(),
        /// How many connections the kernel queues for the server to accept (`listen(2)`'s
        /// backlog; the kernel caps it at `net.core.somaxconn`). When clients reconnect all at
        /// once, a connection that finds the queue full waits a second for its retry.
        pub listen_backlog: u32 = 4096,
        /// Whether the kernel may back the heap with transparent huge pages. Off: zeroing a
        /// fresh 2 MiB page per heap growth took 28% of the CPU in a connect storm and gained
        /// nothing at saturation (`src/process.rs`, docs/PERFORMANCE.md).
        pub transparent_huge_pages: bool = false,
        /// Where the embedded store (`<data_dir>/store`) and the generated development
        /// secret (`<data_dir>/dev-secret`) live.
        pub data_dir: PathBuf = PathBuf::from("./data"),
        /// `"human"` (ANSI colours only when standard output is a terminal and `NO_COLOR` is
        /// unset or empty) or `"json"`.
        pub log_format: LogFormat = LogFormat::Human,
        /// Log filter used when `RUST_LOG` is unset (tracing-subscriber `EnvFilter` syntax).
        /// Unless this filter (or `RUST_LOG`) names the `turn` target, the embedded TURN
        /// relay's library is quieted (`turn::server=off,turn::allocation=warn`; see
        /// `src/logging.rs`): it logs a line per datagram anyone can send. The relay counts
        /// refused credentials in `switchboard_turn_relay_auth_failures_total` and logs them
        /// sampled.
        pub log_level: String = "info,lsm_tree=warn,fjall=warn".to_owned(),
        /// How long each shutdown step may take, in milliseconds.
        pub shutdown_timeout_ms: u64 = 10_000,
    }
}

impl ServerConfig {
    /// Checks that the timeout and the backlog are positive and the address parses.
    ///
    /// # Errors
    /// Names the offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "server",
            [
                ("shutdown_timeout_ms", self.shutdown_timeout_ms),
                ("listen_backlog", u64::from(self.listen_backlog)),
            ],
        )?;
        self.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("server.listen {:?} is not an address", self.listen))?;
        Ok(())
    }
}
