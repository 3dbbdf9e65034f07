//! What the server tells a client, as domain values, and the port that turns them into bytes.
//!
//! Actors decide *what* to send ([`ServerEvent`]); the transport crate decides *how* it looks on
//! the wire by implementing [`EventEncoder`]. Fan-out encodes an event once and hands every
//! recipient a clone of the same [`EncodedFrame`] (a reference-counted buffer), so sending to a
//! thousand members costs one serialization.

use bytes::Bytes;

use crate::Error;
use crate::call::CallNotice;
use crate::ids::{
    CallId, ClientId, ConversationId, MessageId, RequestId, Seq, SessionId, TenantId, UserId,
};
use crate::model::{MessageRef, ReadCursors};
use crate::operations::LogEntry;
use crate::ports::IceServers;
use crate::time::Timestamp;

/// Where a send stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Accepted and being made durable.
    Pending,
    /// Durable: survives a crash of the process.
    Delivered(MessageRef),
    /// Refused; nothing was stored for this attempt.
    Rejected(Error),
}

/// Whether a user is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceStatus {
    /// At least one session open, and not away.
    Online,
    /// At least one session open, and the user said they are away.
    Away,
    /// No session open.
    Offline,
}

impl PresenceStatus {
    /// The wire name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }
}

/// One user's presence as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEntry {
    /// The user.
    pub user_id: UserId,
    /// Online, away or offline.
    pub status: PresenceStatus,
    /// For an offline user: when their last session closed (unknown if never seen since the
    /// server started).
    pub last_seen: Option<Timestamp>,
}

/// A frame the server sends to a WebSocket client.
#[derive(Debug, Clone, Copy)]
pub enum ServerEvent<'a> {
    /// The first frame of every authenticated session.
    Welcome {
        /// This connection's session id.
        session_id: SessionId,
        /// The authenticated user.
        user_id: &'a UserId,
        /// The authenticated tenant.
        tenant_id: &'a TenantId,
        /// How often the server pings, in milliseconds.
        heartbeat_ms: u64,
    },
    /// Reply to a successful `join`.
    Joined {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The conversation joined.
        conversation_id: ConversationId,
        /// The newest durable seq at the moment of joining.
        head: Seq,
    },
    /// Reply to `leave`.
    Left {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The conversation left.
        conversation_id: ConversationId,
    },
    /// The state of a `send`.
    Ack {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The send's idempotency key.
        client_id: &'a ClientId,
        /// Where the send stands.
        outcome: &'a AckOutcome,
    },
    /// A durable log entry (a message or an operation's event), live or replayed.
    Entry(&'a LogEntry),
    /// A member's receipt cursors moved (never persisted in the seq stream).
    Receipt {
        /// The `read`/`delivered` request this replies to (only in the reply to its sender).
        request_id: Option<&'a RequestId>,
        /// The conversation.
        conversation_id: ConversationId,
        /// Whose cursors.
        user_id: &'a UserId,
        /// The cursors now.
        cursors: ReadCursors,
    },
    /// Stands in, for one member, for an entry about a message that member deleted for
    /// themself: the seq stream stays gapless without showing the message.
    Skipped {
        /// The conversation.
        conversation_id: ConversationId,
        /// The entry's seq.
        seq: Seq,
    },
    /// A call notice for the sessions it concerns (never stored).
    Call {
        /// The request id to echo (the caller's `call.invite` only).
        request_id: Option<&'a RequestId>,
        /// The conversation.
        conversation_id: ConversationId,
        /// The call.
        call_id: CallId,
        /// Who acted (the caller, the member who answered, the signal's sender).
        from: &'a UserId,
        /// What happened.
        notice: &'a CallNotice,
    },
    /// A recording's media was stored or the recording was erased (never stored in the seq
    /// stream; sent to the conversation's joined sessions).
    Recording {
        /// The conversation.
        conversation_id: ConversationId,
        /// What happened.
        notice: &'a crate::recording::RecordingNotice,
    },
    /// A member started or stopped typing (never stored).
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Who.
        user_id: &'a UserId,
        /// Started (true) or stopped.
        started: bool,
        /// For a start: after how long a client should consider it stopped if nothing else
        /// arrives.
        expires_in_ms: u64,
    },
    /// A watched user's presence changed.
    Presence {
        /// Always `None` (kept for symmetry with replies).
        request_id: Option<&'a RequestId>,
        /// Whose.
        user_id: &'a UserId,
        /// Now.
        status: PresenceStatus,
        /// For offline: since when.
        last_seen: Option<Timestamp>,
    },
    /// Reply to `subscribe_presence`: the presence now of each user the session may watch.
    PresenceState {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The users now watched, with their presence.
        users: &'a [PresenceEntry],
        /// Users named that share no conversation with the caller (not watched).
        refused: &'a [UserId],
    },
    /// Reply to `turn_credentials`.
    IceServers {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The credentials and servers.
        servers: &'a IceServers,
    },
    /// Reply to a `delete` with mode `for_me`.
    Hidden {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
        /// The conversation.
        conversation_id: ConversationId,
        /// The message now hidden for the user.
        message_id: MessageId,
    },
    /// Reply to an application-level `ping`.
    Pong {
        /// The request this replies to.
        request_id: Option<&'a RequestId>,
    },
    /// A request failed.
    Error {
        /// The request this replies to, when it could be read.
        request_id: Option<&'a RequestId>,
        /// Why.
        error: &'a Error,
    },
}

/// One encoded server frame: UTF-8 text, cheap to clone (reference counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame(Bytes);

impl EncodedFrame {
    /// Wraps encoded text.
    pub fn from_text(text: String) -> Self {
        EncodedFrame(Bytes::from(text))
    }

    /// The encoded bytes (always valid UTF-8).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The number of encoded bytes; what a frame costs in an outbound queue.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the frame is empty (never true for a real event).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Turns server events into wire frames. Implemented by the transport crate.
pub trait EventEncoder: Send + Sync + 'static {
    /// Encodes one event.
    fn encode(&self, event: &ServerEvent<'_>) -> EncodedFrame;
}
