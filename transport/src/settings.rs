//! The transport's tunables, as plain structs. The root binary fills them from its typed
//! configuration (where every key is documented with its default).

use std::time::Duration;

/// WebSocket limits and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// Frames larger than this get an `error` frame with `frame_too_large`.
    pub max_frame_bytes: usize,
    /// Frames larger than this close the connection with 1009 (an abusive client).
    pub hard_max_frame_bytes: usize,
    /// The per-connection outbound queue limit; overflow closes with 4008 (slow consumer).
    pub outbound_queue_bytes: usize,
    /// How often the server pings.
    pub heartbeat: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed with 4010.
    pub idle_timeout: Duration,
    /// tungstenite's read buffer per connection.
    pub read_buffer_bytes: usize,
    /// tungstenite's write buffer target per connection: frames are buffered up to this size
    /// and written with one syscall per flush (0 would write every frame with its own syscall).
    pub write_buffer_bytes: usize,
    /// Invalid frames tolerated per minute before closing with 1008.
    pub max_protocol_errors_per_minute: u32,
    /// Most frames written per socket flush.
    pub max_frames_per_flush: usize,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        WebSocketSettings {
            max_frame_bytes: 64 * 1024,
            hard_max_frame_bytes: 256 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            heartbeat: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            read_buffer_bytes: 1024,
            write_buffer_bytes: 16 * 1024,
            max_protocol_errors_per_minute: 30,
            max_frames_per_flush: 64,
        }
    }
}

/// HTTP API limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// The largest request body accepted; larger gets 413 `too_large`.
    pub max_body_bytes: usize,
    /// History page size when `limit` is absent.
    pub history_default_limit: usize,
    /// The largest history page; larger `limit`s are clamped to it.
    pub history_max_limit: usize,
    /// The largest recording media upload; larger gets 413 `too_large` (from a declared
    /// `Content-Length` before the body is read, otherwise as soon as the streamed body passes
    /// it).
    pub max_recording_bytes: usize,
    /// Recording media uploads and downloads served at once; more get 503 `unavailable`.
    pub max_concurrent_recording_transfers: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 64 * 1024,
            history_default_limit: 50,
            history_max_limit: 200,
            max_recording_bytes: 256 * 1024 * 1024,
            max_concurrent_recording_transfers: 4,
        }
    }
}
