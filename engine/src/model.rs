//! The chat data model: conversations, members, roles and messages.
//!
//! These are plain data. The rules that govern them live in [`crate::validate`] and
//! [`crate::conversation`]; the storage crate persists them (with serde, in its own versioned
//! binary encoding) and the transport crate renders them to the wire.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientId, ConversationId, Emoji, MediaId, MessageId, Seq, TenantId, UserId};
use crate::media::Attachment;
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

    /// Parses the wire name of a role.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "moderator" => Some(Role::Moderator),
            "member" => Some(Role::Member),
            _ => None,
        }
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
    /// What members see and change as the conversation's profile.
    pub profile: ConversationProfile,
    /// Whether the owner archived it (archived conversations take no new messages).
    pub archived: bool,
    /// Users banned from the conversation: they are not members and cannot be added back
    /// until the ban ends.
    pub bans: Vec<Restriction>,
    /// Members muted in the conversation: they cannot post (reading still works).
    pub mutes: Vec<Restriction>,
}

impl Conversation {
    /// A new, empty-profiled, unarchived conversation with no bans or mutes.
    pub fn new(
        conversation_id: ConversationId,
        tenant_id: TenantId,
        kind: ConversationKind,
        title: Option<String>,
        created_by: UserId,
        created_at: Timestamp,
    ) -> Self {
        Conversation {
            conversation_id,
            tenant_id,
            kind,
            title,
            created_by,
            created_at,
            profile: ConversationProfile::default(),
            archived: false,
            bans: Vec::new(),
            mutes: Vec::new(),
        }
    }

    /// The ban in force on `user_id` at `now`, if any (a ban whose `until` has passed has
    /// ended on its own).
    pub fn ban_at(&self, user_id: &UserId, now: Timestamp) -> Option<&Restriction> {
        in_force(&self.bans, user_id, now)
    }

    /// The mute in force on `user_id` at `now`, if any.
    pub fn mute_at(&self, user_id: &UserId, now: Timestamp) -> Option<&Restriction> {
        in_force(&self.mutes, user_id, now)
    }
}

fn in_force<'a>(
    restrictions: &'a [Restriction],
    user_id: &UserId,
    now: Timestamp,
) -> Option<&'a Restriction> {
    restrictions
        .iter()
        .find(|restriction| &restriction.user_id == user_id && restriction.is_in_force(now))
}

/// The parts of a conversation its admins edit besides the title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationProfile {
    /// A longer description.
    pub description: Option<String>,
    /// An image URL (https).
    pub avatar_url: Option<String>,
}

/// A ban or a mute of one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// Who is restricted.
    pub user_id: UserId,
    /// Who restricted them.
    pub by: UserId,
    /// When.
    pub since: Timestamp,
    /// When it ends on its own; `None` until lifted.
    pub until: Option<Timestamp>,
    /// Why, as the moderator wrote it.
    pub reason: Option<String>,
}

impl Restriction {
    /// Whether it is in force at `now` (expiry is computed, never stored, so it holds across
    /// restarts and needs no timer).
    pub fn is_in_force(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
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
    /// Post in the thread under this root message, in the same conversation.
    pub thread_root: Option<MessageId>,
    /// Set by the server for a forwarded copy (clients cannot set it). Boxed: rare, and it
    /// would double the size of every send request.
    pub forwarded_from: Option<Box<ForwardedFrom>>,
    /// The media to attach, by id (a forwarded copy names its original's).
    pub attachments: Vec<MediaId>,
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
    /// The root of the thread this message was posted in, if any.
    pub thread_root: Option<MessageId>,
    /// Where this message was forwarded from, if it is a forwarded copy.
    pub forwarded_from: Option<ForwardedFrom>,
    /// When the server accepted it.
    pub ts: Timestamp,
    /// What later operations (edits, deletes, reactions, thread replies) made of it.
    pub state: MessageState,
    /// The media it carries, as it was when the message was sent (emptied by a delete).
    /// Last, so the stored layout of a message without any is the one older builds wrote
    /// (see `operations::entry_layout`).
    pub attachments: Vec<Attachment>,
}

/// The original of a forwarded message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedFrom {
    /// The conversation the original is in.
    pub conversation_id: ConversationId,
    /// The original message.
    pub message_id: MessageId,
    /// Who sent the original.
    pub sender_id: UserId,
}

/// The mutable part of a message: what edits, deletes, reactions and thread replies changed.
/// Storage keeps it current (applying [`crate::operations::apply_event`] in the same atomic
/// write as the event), so history shows each message as it is now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    /// When the text was last edited.
    pub edited_at: Option<Timestamp>,
    /// Set once the message is deleted for everyone; its text is then empty.
    pub deleted: Option<Deletion>,
    /// Reactions, in the order each emoji was first used.
    pub reactions: Vec<Reaction>,
    /// How many replies were posted in the thread this message is the root of.
    pub thread_reply_count: u32,
    /// When the last of them was posted.
    pub thread_last_reply_at: Option<Timestamp>,
    /// For a reply in a thread: its number there (1 for the first reply), which is the root's
    /// `thread_reply_count` right after it. Zero for other messages. Lets a client keep the
    /// root's count right by taking the maximum, whether it sees replies live or replayed.
    pub thread_position: u32,
    /// Earlier texts, oldest first (the edit history). Emptied by a hard delete.
    pub previous_versions: Vec<EditVersion>,
}

/// How a message was deleted for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeleteMode {
    /// A tombstone: the text and reactions are gone; the edit history stays, readable by
    /// moderators and stronger roles only.
    ForEveryone,
    /// Purged: text, reactions and edit history are gone (admin and stronger).
    Hard,
}

impl DeleteMode {
    /// The wire name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteMode::ForEveryone => "for_everyone",
            DeleteMode::Hard => "hard",
        }
    }
}

/// Who deleted a message, how and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// How.
    pub mode: DeleteMode,
    /// Who.
    pub deleted_by: UserId,
    /// When.
    pub deleted_at: Timestamp,
}

/// One emoji's reactions on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: Emoji,
    /// Who reacted with it, in id order; its length is the count.
    pub user_ids: Vec<UserId>,
}

/// One earlier text of an edited message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditVersion {
    /// The text before the edit.
    pub text: String,
    /// When it stopped being current (the edit's time).
    pub replaced_at: Timestamp,
    /// The seq of the edit event that replaced it.
    pub replaced_by_seq: Seq,
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

/// Unread counts stop at this many (and are then shown as "at least this many").
pub const MAX_COUNTED_UNREAD: usize = 1000;

/// One member's receipt cursors in a conversation. Both only move forward; `read` never passes
/// `delivered` (reading implies delivery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCursors {
    /// The highest seq the member's clients report as read.
    pub read: Seq,
    /// The highest seq the member's clients report as delivered to a device.
    pub delivered: Seq,
}

impl ReadCursors {
    /// These cursors moved forward by a report (never backward, never past `head`); `read`
    /// also moves `delivered`.
    pub fn advanced(self, read: Option<Seq>, delivered: Option<Seq>, head: Seq) -> ReadCursors {
        let read = read.map_or(self.read, |read| self.read.max(read.min(head)));
        let delivered = delivered
            .map_or(self.delivered, |delivered| {
                self.delivered.max(delivered.min(head))
            })
            .max(read);
        ReadCursors { read, delivered }
    }
}

/// One member's own settings for a conversation; nobody else sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSettings {
    /// Notifications are muted until this time (`None`: not muted).
    pub notifications_muted_until: Option<Timestamp>,
    /// The member archived the conversation for themself.
    pub archived: bool,
    /// The member pinned the conversation.
    pub pinned: bool,
}
