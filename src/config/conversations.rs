//! `[conversations]`: the conversation actors' timers and caches, and their translation (with
//! the message limits of `[limits]`) into the actors' [`ConversationSettings`].

use std::time::Duration;

use switchboard_actors::conversation::ConversationSettings;
use switchboard_engine::validate::MessageLimits;

use super::limits::LimitsConfig;
use super::section::{config_section, ensure_positive};

config_section! {
    /// `[conversations]`: conversation actors.
    pub struct ConversationsConfig = "conversations" {
        /// Stop a conversation's actor after this long with nobody joined and nothing in
        /// flight, in milliseconds; it reloads from storage on the next request.
        pub idle_stop_after_ms: u64 = 60_000,
        /// Messages per storage read when a client catches up with `since`.
        pub catch_up_page_size: usize = 256,
        /// Recent messages kept encoded per conversation to serve short catch-ups without
        /// reading storage.
        pub recent_frames: usize = 1024,
        /// How long a request may wait for an actor, in milliseconds.
        pub call_timeout_ms: u64 = 10_000,
        /// How long after sending its author may edit a message, or delete it for everyone
        /// without a moderator's role, in milliseconds (15 minutes).
        pub edit_window_ms: u64 = 15 * 60 * 1000,
        /// How long a call rings before it ends unanswered, in milliseconds.
        pub call_ringing_timeout_ms: u64 = 30_000,
        /// How long a call participant whose sessions all disconnected stays in the call, in
        /// milliseconds.
        pub call_disconnect_grace_ms: u64 = 10_000,
        /// How long call participants have to consent to a recording, in milliseconds; a
        /// participant who joins a recorded call gets as long.
        pub call_recording_consent_timeout_ms: u64 = 30_000,
    }
}

impl ConversationsConfig {
    /// Checks the timers and the page size are positive.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "conversations",
            [
                ("idle_stop_after_ms", self.idle_stop_after_ms),
                ("catch_up_page_size", self.catch_up_page_size as u64),
                ("call_timeout_ms", self.call_timeout_ms),
            ],
        )
    }

    /// The conversation actors' settings, with the text limit from `limits` and the
    /// attachment limit from `[media]`.
    pub fn conversation_settings(
        &self,
        limits: &LimitsConfig,
        max_attachments: usize,
    ) -> ConversationSettings {
        ConversationSettings {
            message_limits: MessageLimits {
                max_text_bytes: limits.max_message_bytes,
                edit_window_ms: self.edit_window_ms,
                max_attachments,
            },
            idle_stop_after: Duration::from_millis(self.idle_stop_after_ms),
            catch_up_page_size: self.catch_up_page_size,
            recent_frames: self.recent_frames,
            call_ringing_timeout: Duration::from_millis(self.call_ringing_timeout_ms),
            call_disconnect_grace: Duration::from_millis(self.call_disconnect_grace_ms),
            call_recording_consent_timeout: Duration::from_millis(
                self.call_recording_consent_timeout_ms,
            ),
        }
    }
}
