//! The chat data model: conversations, members, roles and messages.
//!
//! These are plain data. The rules that govern them live in [`crate::validate`] and
//! [`crate::conversation`]; the storage crate persists them (with serde, in its own versioned
//! binary encoding) and the transport crate renders them to the wire.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use crate::time::Timestamp;

/// What kind of conversation this is; it decides who may post.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConversationKind {
    /// Exactly two users.
    Direct,
    /// Any number of members, all of whom may post.
    Group,
    /// Members read; only owners, admins and moderators post.
    Channel,
}

impl ConversationKind {
    /// The wire name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
            ConversationKind::Channel => "channel",
        }
    }

    /// Parses the wire name of a kind.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "direct" => Some(ConversationKind::Direct),
            "group" => Some(ConversationKind::Group),
            "channel" => Some(ConversationKind::Channel),
            _ => None,
        }
    }
}

/// A member's role, strongest first. The derived order makes `Owner < Admin < ...`, so "at least
/// moderator" is `role <= Role::Moderator`; use [`Role::at_least`] instead of comparing directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Created the conversation (or received ownership); exactly one per conversation.
    Owner,
    /// Manages members and settings.
    Admin,
    /// Moderates messages and members.
    Moderator,
    /// An ordinary participant.
    Member,
}

impl Role {
    /// Whether this role is `minimum` or stronger.
    pub fn at_least(self, minimum: Role) -> bool {
        self <= minimum
    }

    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Member => "member",
        }
    }
}

/// A conversation's own attributes (not its members or messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The conversation's id.
    pub conversation_id: ConversationId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Its kind.
    pub kind: ConversationKind,
    /// An optional human title.
    pub title: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: Timestamp,
}

/// One user's membership in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: Timestamp,
}

/// A conversation together with its member list: what a conversation actor loads on start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSnapshot {
    /// The conversation's attributes.
    pub conversation: Conversation,
    /// Every member, in user id order.
    pub members: Vec<Member>,
}

impl ConversationSnapshot {
    /// The member entry for `user_id`, if they are a member.
    pub fn member(&self, user_id: &UserId) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| &member.user_id == user_id)
    }
}

/// What a client asks to send; the server assigns everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The client's idempotency key.
    pub client_id: ClientId,
    /// The message body.
    pub text: String,
    /// The message this one replies to, in the same conversation.
    pub reply_to: Option<MessageId>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Its position in the conversation.
    pub seq: Seq,
    /// Its server-assigned id.
    pub message_id: MessageId,
    /// Who sent it.
    pub sender_id: UserId,
    /// The sender's idempotency key.
    pub client_id: ClientId,
    /// The body.
    pub text: String,
    /// The message it replies to.
    pub reply_to: Option<MessageId>,
    /// When the server accepted it.
    pub ts: Timestamp,
}

impl Message {
    /// The identifying triple of this message.
    pub fn reference(&self) -> MessageRef {
        MessageRef {
            message_id: self.message_id,
            seq: self.seq,
            ts: self.ts,
        }
    }
}

/// Enough of a stored message to acknowledge a send: what a repeated `client_id` resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The message id.
    pub message_id: MessageId,
    /// Its position.
    pub seq: Seq,
    /// When it was accepted.
    pub ts: Timestamp,
}
