//! What a client can ask of its session: [`ClientRequest`], one variant per client frame the
//! transport parses (join, leave, send, operate, change, typing, receipt, hide, presence, calls,
//! ICE servers, ping). The transport builds them; the session actor carries them out.

use switchboard_engine::call::CallAction;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, RequestId, Seq, UserId};
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::NewMessage;
use switchboard_engine::operations::NewOperation;

/// A request from a client, already parsed and shape-checked by the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientRequest {
    /// A call action in a conversation (invite, accept, reject, cancel, hang up, or a signal
    /// for another participant).
    Call {
        /// Echoed in replies.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// What.
        action: CallAction,
    },
    /// Subscribe to a conversation, optionally replaying after `since`.
    Join {
        /// Echoed in replies.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// Replay everything after this seq first.
        since: Option<Seq>,
    },
    /// Stop receiving a conversation's live events.
    Leave {
        /// Echoed in replies.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
    },
    /// Send a message.
    Send {
        /// Echoed in every ack.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// The message.
        new_message: NewMessage,
    },
    /// Edit, delete or react to a message.
    Operate {
        /// Echoed in every ack.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// The operation.
        new_operation: NewOperation,
    },
    /// Change the conversation itself (members, roles, moderation).
    Change {
        /// Echoed in every ack.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// The idempotency key.
        client_id: ClientId,
        /// The change.
        change: ConversationChange,
    },
    /// Started or stopped typing.
    Typing {
        /// Echoed in an error, if any.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// Started (true) or stopped.
        started: bool,
    },
    /// Ask for TURN credentials and ICE servers.
    IceServers {
        /// Echoed in the reply.
        request_id: Option<RequestId>,
        /// The lifetime wanted, in seconds (the configured default when absent).
        ttl_secs: Option<u64>,
    },
    /// Say one is away, or back.
    SetPresence {
        /// Echoed in an error, if any.
        request_id: Option<RequestId>,
        /// Away (true) or online.
        away: bool,
    },
    /// Watch the presence of users one shares a conversation with.
    SubscribePresence {
        /// Echoed in the reply.
        request_id: Option<RequestId>,
        /// Whom.
        user_ids: Vec<UserId>,
    },
    /// Delete a message for oneself only.
    Hide {
        /// Echoed in the reply.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// Which message.
        message_id: MessageId,
    },
    /// Report messages as read and/or delivered.
    Receipt {
        /// Echoed in the reply.
        request_id: Option<RequestId>,
        /// Which conversation.
        conversation_id: ConversationId,
        /// Read through this seq.
        read: Option<Seq>,
        /// Delivered through this seq.
        delivered: Option<Seq>,
    },
    /// Application-level ping.
    Ping {
        /// Echoed in the pong.
        request_id: Option<RequestId>,
    },
}
