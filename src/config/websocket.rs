//! `[websocket]`: the WebSocket timers and buffers, and their translation (with the frame and
//! queue sizes of `[limits]`) into the transport's [`WebSocketSettings`].

use std::time::Duration;

use anyhow::bail;
use switchboard_transport::settings::WebSocketSettings;

use super::limits::LimitsConfig;
use super::section::{config_section, ensure_positive};

config_section! {
    /// `[websocket]`: WebSocket timers and buffers.
    pub struct WebSocketConfig = "websocket" {
        /// How often the server pings, in milliseconds (announced in `welcome`).
        pub heartbeat_ms: u64 = 25_000,
        /// Close a connection that sends nothing, not even a pong, for this long (4010), in
        /// milliseconds.
        pub idle_timeout_ms: u64 = 60_000,
        /// Read buffer per connection, in bytes. Small buffers keep idle connections cheap;
        /// frames larger than this are read in several chunks (1 KiB measured as fast as
        /// 4 KiB for chat traffic, docs/PERFORMANCE.md).
        pub read_buffer_bytes: usize = 1024,
        /// Invalid frames tolerated per minute before closing with 1008.
        pub max_protocol_errors_per_minute: u32 = 30,
    }
}

impl WebSocketConfig {
    /// Checks the timers and the buffer are positive and the idle timeout outlasts a ping.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "websocket",
            [
                ("heartbeat_ms", self.heartbeat_ms),
                ("idle_timeout_ms", self.idle_timeout_ms),
                ("read_buffer_bytes", self.read_buffer_bytes as u64),
            ],
        )?;
        if self.idle_timeout_ms <= self.heartbeat_ms {
            bail!("websocket.idle_timeout_ms must be longer than websocket.heartbeat_ms");
        }
        Ok(())
    }

    /// The WebSocket settings, with the frame and queue sizes from `limits`.
    pub fn websocket_settings(&self, limits: &LimitsConfig) -> WebSocketSettings {
        WebSocketSettings {
            max_frame_bytes: limits.max_frame_bytes,
            hard_max_frame_bytes: limits.max_frame_bytes.saturating_mul(4),
            outbound_queue_bytes: limits.outbound_queue_bytes,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            read_buffer_bytes: self.read_buffer_bytes,
            max_protocol_errors_per_minute: self.max_protocol_errors_per_minute,
            ..WebSocketSettings::default()
        }
    }
}
