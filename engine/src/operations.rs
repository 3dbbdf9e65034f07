//! Operations on existing messages (edit, delete, react), the events they leave in a
//! conversation's seq stream, and the pure functions that apply them.
//!
//! A conversation's durable log is a sequence of [`LogEntry`]s: new messages and
//! [`ConversationEvent`]s, each with its own seq, so a client that replays from `since` sees
//! every edit, delete and reaction in order, not only new messages. Storage keeps each message's
//! [`MessageState`](crate::model::MessageState) current by calling [`apply_event`] (and
//! [`apply_thread_reply`]) inside the same atomic write that appends the event, which is why a
//! refusal that depends on the message's current state (already deleted, already reacted) is
//! decided there and reported as a rejected append that consumes no seq.
//!
//! Events carry the state they produce (the new text, the reaction's resulting count), never a
//! delta, so applying them is idempotent: a client that replays a message in its current state
//! and then the events that led there ends with the same view as one that saw them live.
//! Who may do what (author, role, edit window) is decided before an operation is accepted, by
//! [`authorize_operation`], from the actor's role and the target's immutable fields.

use serde::{Deserialize, Serialize};

use crate::call::{CallEndReason, CallKind, RecordingEndReason};
use crate::ids::{CallId, ClientId, ConversationId, Emoji, MessageId, RecordingId, Seq, UserId};
use crate::membership::{LeaveReason, ModerationAction};
use crate::model::{
    ConversationKind, DeleteMode, Deletion, EditVersion, Member, Message, MessageRef, Reaction,
    Role,
};
use crate::permissions::{self, Action};
use crate::time::Timestamp;
use crate::validate::{MessageLimits, validate_text};
use crate::{Error, Result};

/// How many distinct reactions one message may carry.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 50;

/// Something a member asks to do to an existing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOperation {
    /// Replace the text (author only, within the edit window).
    Edit {
        /// The message.
        message_id: MessageId,
        /// The new text.
        text: String,
    },
    /// Delete for everyone (a tombstone) or hard (purged).
    Delete {
        /// The message.
        message_id: MessageId,
        /// How.
        mode: DeleteMode,
    },
    /// Add a reaction.
    React {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: Emoji,
    },
    /// Remove one's own reaction.
    Unreact {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: Emoji,
    },
}

impl MessageOperation {
    /// The message the operation targets.
    pub fn message_id(&self) -> MessageId {
        match self {
            MessageOperation::Edit { message_id, .. }
            | MessageOperation::Delete { message_id, .. }
            | MessageOperation::React { message_id, .. }
            | MessageOperation::Unreact { message_id, .. } => *message_id,
        }
    }
}

/// An operation with its idempotency key, as a client submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperation {
    /// The client's idempotency key (shared with sends: unique per conversation).
    pub client_id: ClientId,
    /// What to do.
    pub operation: MessageOperation,
}

/// What an event in the seq stream records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConversationEventBody {
    /// A message's text was replaced.
    MessageEdited {
        /// The message.
        message_id: MessageId,
        /// The new text; `None` once the message was deleted (the content is gone).
        text: Option<String>,
    },
    /// A message was deleted for everyone.
    MessageDeleted {
        /// The message.
        message_id: MessageId,
        /// How.
        mode: DeleteMode,
    },
    /// A reaction was added.
    ReactionAdded {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: Emoji,
        /// How many users now react with it.
        count: u32,
    },
    /// A reaction was removed.
    ReactionRemoved {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: Emoji,
        /// How many users now react with it.
        count: u32,
    },
    /// Users became members.
    MembersAdded {
        /// The new members.
        members: Vec<Member>,
    },
    /// A member left or was removed.
    MemberLeft {
        /// Who.
        user_id: UserId,
        /// Why.
        reason: LeaveReason,
    },
    /// A member's role changed.
    RoleChanged {
        /// Who.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Ownership changed hands; the previous owner is now an admin.
    OwnerChanged {
        /// The previous owner.
        previous_owner: UserId,
        /// The new owner.
        owner: UserId,
    },
    /// The title or profile changed (the event carries the new values of all three).
    ConversationUpdated {
        /// The title.
        title: Option<String>,
        /// The description.
        description: Option<String>,
        /// The avatar URL.
        avatar_url: Option<String>,
    },
    /// The conversation was archived or unarchived.
    ConversationArchived {
        /// The new state.
        archived: bool,
    },
    /// A moderator kicked, banned, unbanned, muted or unmuted a user.
    Moderated {
        /// What.
        action: ModerationAction,
        /// Whom.
        user_id: UserId,
        /// When a ban or mute ends on its own.
        until: Option<Timestamp>,
        /// Why.
        reason: Option<String>,
    },
    /// A member started a call (it rings for the others); `actor_id` is the caller.
    CallStarted {
        /// The call.
        call_id: CallId,
        /// Audio or video.
        kind: CallKind,
    },
    /// A call ended.
    CallEnded {
        /// The call.
        call_id: CallId,
        /// Audio or video.
        kind: CallKind,
        /// Why it ended.
        reason: CallEndReason,
        /// From the first answer to the end, in milliseconds; 0 if nobody answered.
        duration_ms: u64,
        /// Everyone who was in the call, the caller included.
        participants: Vec<UserId>,
    },
    /// Every participant consented: a call's recording started (`actor_id` asked for it). The
    /// consent trail is kept in the recording's metadata ([`crate::recording`]), not here, so
    /// that erasing the recording erases it.
    RecordingStarted {
        /// The recording.
        recording_id: RecordingId,
        /// The call.
        call_id: CallId,
    },
    /// A recording ended, or was cancelled before it started.
    RecordingEnded {
        /// The recording.
        recording_id: RecordingId,
        /// The call.
        call_id: CallId,
        /// Why.
        reason: RecordingEndReason,
        /// Whether it had started.
        was_recording: bool,
        /// How long it ran, in milliseconds.
        duration_ms: u64,
    },
}

/// One participant's consent to a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingConsent {
    /// Who.
    pub user_id: UserId,
    /// When they consented.
    pub at: Timestamp,
}

impl ConversationEventBody {
    /// The message the event is about, for operations on messages.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            ConversationEventBody::MessageEdited { message_id, .. }
            | ConversationEventBody::MessageDeleted { message_id, .. }
            | ConversationEventBody::ReactionAdded { message_id, .. }
            | ConversationEventBody::ReactionRemoved { message_id, .. } => Some(*message_id),
            _ => None,
        }
    }

    /// Whether the event changes the conversation itself (members, roles, profile, archive,
    /// moderation) rather than a message or a call.
    pub fn changes_conversation(&self) -> bool {
        self.message_id().is_none() && !self.is_call()
    }

    /// Whether the event records a call starting or ending.
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            ConversationEventBody::CallStarted { .. }
                | ConversationEventBody::CallEnded { .. }
                | ConversationEventBody::RecordingStarted { .. }
                | ConversationEventBody::RecordingEnded { .. }
        )
    }
}

/// One event in a conversation's seq stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationEvent {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its position in the conversation (assigned by storage).
    pub seq: Seq,
    /// The event's own id.
    pub event_id: MessageId,
    /// Who caused it.
    pub actor_id: UserId,
    /// The actor's idempotency key.
    pub client_id: ClientId,
    /// When the server accepted it.
    pub ts: Timestamp,
    /// What happened.
    pub body: ConversationEventBody,
}

impl ConversationEvent {
    /// A new event, before storage gives it a seq.
    pub fn new(
        conversation_id: ConversationId,
        event_id: MessageId,
        actor_id: UserId,
        client_id: ClientId,
        ts: Timestamp,
        body: ConversationEventBody,
    ) -> Self {
        ConversationEvent {
            conversation_id,
            seq: Seq::ZERO,
            event_id,
            actor_id,
            client_id,
            ts,
            body,
        }
    }

    /// The event for an accepted operation, before storage applies it (seq and counts are
    /// filled in by storage).
    pub fn from_operation(
        conversation_id: ConversationId,
        event_id: MessageId,
        actor_id: UserId,
        new_operation: NewOperation,
        ts: Timestamp,
    ) -> Self {
        let body = match new_operation.operation {
            MessageOperation::Edit { message_id, text } => ConversationEventBody::MessageEdited {
                message_id,
                text: Some(text),
            },
            MessageOperation::Delete { message_id, mode } => {
                ConversationEventBody::MessageDeleted { message_id, mode }
            }
            MessageOperation::React { message_id, emoji } => ConversationEventBody::ReactionAdded {
                message_id,
                emoji,
                count: 0,
            },
            MessageOperation::Unreact { message_id, emoji } => {
                ConversationEventBody::ReactionRemoved {
                    message_id,
                    emoji,
                    count: 0,
                }
            }
        };
        ConversationEvent {
            conversation_id,
            seq: Seq::ZERO,
            event_id,
            actor_id,
            client_id: new_operation.client_id,
            ts,
            body,
        }
    }
}

/// One entry of a conversation's durable log. Its stored layout (serde) is in
/// [`entry_layout`]: a message without attachments keeps the layout it had before messages
/// could carry any.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "messages are most entries; boxing them would add an allocation per message on the hot path"
)]
pub enum LogEntry {
    /// A new message (stored in its current state).
    Message(Message),
    /// An operation's event.
    Event(ConversationEvent),
}

impl LogEntry {
    /// The entry's seq.
    pub fn seq(&self) -> Seq {
        match self {
            LogEntry::Message(message) => message.seq,
            LogEntry::Event(event) => event.seq,
        }
    }

    /// Sets the entry's seq (storage does, at append).
    pub fn set_seq(&mut self, seq: Seq) {
        match self {
            LogEntry::Message(message) => message.seq = seq,
            LogEntry::Event(event) => event.seq = seq,
        }
    }

    /// The conversation the entry belongs to.
    pub fn conversation_id(&self) -> ConversationId {
        match self {
            LogEntry::Message(message) => message.conversation_id,
            LogEntry::Event(event) => event.conversation_id,
        }
    }

    /// The entry's idempotency key.
    pub fn client_id(&self) -> &ClientId {
        match self {
            LogEntry::Message(message) => &message.client_id,
            LogEntry::Event(event) => &event.client_id,
        }
    }

    /// When the entry was made (the message's or the event's time).
    pub fn timestamp(&self) -> Timestamp {
        match self {
            LogEntry::Message(message) => message.ts,
            LogEntry::Event(event) => event.ts,
        }
    }

    /// The message, when the entry is one.
    pub fn as_message(&self) -> Option<&Message> {
        match self {
            LogEntry::Message(message) => Some(message),
            LogEntry::Event(_) => None,
        }
    }

    /// Who made the entry (the sender, or the event's actor).
    pub fn author(&self) -> &UserId {
        match self {
            LogEntry::Message(message) => &message.sender_id,
            LogEntry::Event(event) => &event.actor_id,
        }
    }

    /// The entry's id (the message id, or the event id).
    pub fn entry_id(&self) -> MessageId {
        match self {
            LogEntry::Message(message) => message.message_id,
            LogEntry::Event(event) => event.event_id,
        }
    }

    /// What an acknowledgement of this entry reports.
    pub fn reference(&self) -> MessageRef {
        match self {
            LogEntry::Message(message) => message.reference(),
            LogEntry::Event(event) => MessageRef {
                message_id: event.event_id,
                seq: event.seq,
                ts: event.ts,
            },
        }
    }
}

/// What applying an event to its message requires beyond the message itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyEffects {
    /// Seqs of earlier `MessageEdited` events whose text must be scrubbed from the log with
    /// [`scrub_edited_text`] (the message was deleted, so its content must not replay).
    pub scrub_edit_seqs: Vec<Seq>,
}

/// Applies `event` to the message it targets (which storage has just loaded or staged), and
/// completes the event with the state it produced. `event.seq` must already be assigned.
///
/// # Errors
/// [`Error::Conflict`] if the message's current state refuses the event (deleted, reaction
/// already present or absent); [`Error::TooLarge`] past [`MAX_REACTIONS_PER_MESSAGE`] distinct
/// reactions. Nothing is changed then.
pub fn apply_event(target: &mut Message, event: &mut ConversationEvent) -> Result<ApplyEffects> {
    let mut effects = ApplyEffects::default();
    let state = &mut target.state;
    let deleted = state.deleted.as_ref().map(|deletion| deletion.mode);
    match &mut event.body {
        ConversationEventBody::MessageEdited { text, .. } => {
            if deleted.is_some() {
                return Err(Error::Conflict {
                    reason: "the message was deleted".to_owned(),
                });
            }
            let Some(new_text) = text.clone() else {
                return Err(Error::invalid("text", "is required"));
            };
            let old_text = std::mem::replace(&mut target.text, new_text);
            state.previous_versions.push(EditVersion {
                text: old_text,
                replaced_at: event.ts,
                replaced_by_seq: event.seq,
            });
            state.edited_at = Some(event.ts);
        }
        ConversationEventBody::MessageDeleted { mode, .. } => {
            match (deleted, *mode) {
                (Some(DeleteMode::Hard), _)
                | (Some(DeleteMode::ForEveryone), DeleteMode::ForEveryone) => {
                    return Err(Error::Conflict {
                        reason: "the message is already deleted".to_owned(),
                    });
                }
                (Some(DeleteMode::ForEveryone), DeleteMode::Hard) | (None, _) => {}
            }
            effects.scrub_edit_seqs = state
                .previous_versions
                .iter()
                .map(|version| version.replaced_by_seq)
                .collect();
            target.text.clear();
            target.attachments.clear();
            state.reactions.clear();
            if *mode == DeleteMode::Hard {
                state.previous_versions.clear();
            }
            state.deleted = Some(Deletion {
                mode: *mode,
                deleted_by: event.actor_id.clone(),
                deleted_at: event.ts,
            });
        }
        ConversationEventBody::ReactionAdded { emoji, count, .. } => {
            if deleted.is_some() {
                return Err(Error::Conflict {
                    reason: "the message was deleted".to_owned(),
                });
            }
            let n_distinct = state.reactions.len();
            let reaction = match state
                .reactions
                .iter_mut()
                .position(|reaction| reaction.emoji == *emoji)
            {
                Some(position) => &mut state.reactions[position],
                None => {
                    if n_distinct >= MAX_REACTIONS_PER_MESSAGE {
                        return Err(Error::TooLarge {
                            what: "distinct reactions on the message".into(),
                            limit: MAX_REACTIONS_PER_MESSAGE,
                            actual: n_distinct + 1,
                        });
                    }
                    state.reactions.push(Reaction {
                        emoji: emoji.clone(),
                        user_ids: Vec::new(),
                    });
                    let last = state.reactions.len() - 1;
                    &mut state.reactions[last]
                }
            };
            match reaction.user_ids.binary_search(&event.actor_id) {
                Ok(_) => {
                    return Err(Error::Conflict {
                        reason: "you already reacted with this emoji".to_owned(),
                    });
                }
                Err(position) => reaction.user_ids.insert(position, event.actor_id.clone()),
            }
            *count = u32::try_from(reaction.user_ids.len()).unwrap_or(u32::MAX);
        }
        ConversationEventBody::ReactionRemoved { emoji, count, .. } => {
            let removed = state
                .reactions
                .iter()
                .position(|reaction| reaction.emoji == *emoji)
                .and_then(|position| {
                    let reaction = &mut state.reactions[position];
                    let user = reaction.user_ids.binary_search(&event.actor_id).ok()?;
                    reaction.user_ids.remove(user);
                    Some((position, reaction.user_ids.len()))
                });
            let Some((position, remaining)) = removed else {
                return Err(Error::Conflict {
                    reason: "you have not reacted with this emoji".to_owned(),
                });
            };
            if remaining == 0 {
                state.reactions.remove(position);
            }
            *count = u32::try_from(remaining).unwrap_or(u32::MAX);
        }
        ConversationEventBody::MembersAdded { .. }
        | ConversationEventBody::MemberLeft { .. }
        | ConversationEventBody::RoleChanged { .. }
        | ConversationEventBody::OwnerChanged { .. }
        | ConversationEventBody::ConversationUpdated { .. }
        | ConversationEventBody::ConversationArchived { .. }
        | ConversationEventBody::Moderated { .. }
        | ConversationEventBody::CallStarted { .. }
        | ConversationEventBody::CallEnded { .. }
        | ConversationEventBody::RecordingStarted { .. }
        | ConversationEventBody::RecordingEnded { .. } => {
            return Err(Error::invalid(
                "event",
                "is about the conversation, not a message",
            ));
        }
    }
    Ok(effects)
}

/// Removes the text of a `MessageEdited` event whose message was deleted; other events are left
/// as they are.
pub fn scrub_edited_text(event: &mut ConversationEvent) {
    if let ConversationEventBody::MessageEdited { text, .. } = &mut event.body {
        *text = None;
    }
}

/// Counts a new reply in its thread's root, and numbers the reply.
///
/// # Errors
/// [`Error::Invalid`] if the root is itself a reply in a thread (threads do not nest);
/// [`Error::Conflict`] if the root was deleted.
pub fn apply_thread_reply(root: &mut Message, reply: &mut Message) -> Result<()> {
    if root.thread_root.is_some() {
        return Err(Error::invalid(
            "thread_root",
            "is a reply in a thread; threads do not nest",
        ));
    }
    if root.state.deleted.is_some() {
        return Err(Error::Conflict {
            reason: "the thread's root message was deleted".to_owned(),
        });
    }
    root.state.thread_reply_count = root.state.thread_reply_count.saturating_add(1);
    root.state.thread_last_reply_at = Some(reply.ts);
    reply.state.thread_position = root.state.thread_reply_count;
    Ok(())
}

/// Decides whether `actor_id` (of role `role`) may apply `operation` to `target` at `now`:
/// the rules that depend only on who is asking and on the target's immutable fields.
///
/// # Errors
/// [`Error::Forbidden`] (not the author, edit window over, role too weak), or the validation
/// errors of the new text.
pub fn authorize_operation(
    kind: ConversationKind,
    role: Role,
    actor_id: &UserId,
    operation: &MessageOperation,
    target: &Message,
    now: Timestamp,
    limits: &MessageLimits,
) -> Result<()> {
    let is_author = target.sender_id == *actor_id;
    let within_window = now.millis_since(target.ts) <= limits.edit_window_ms;
    match operation {
        MessageOperation::Edit { text, .. } => {
            if !is_author {
                return Err(Error::Forbidden {
                    reason: "only the author may edit a message".into(),
                });
            }
            if !within_window {
                return Err(Error::Forbidden {
                    reason: "the edit window of this message is over".into(),
                });
            }
            permissions::check(kind, role, Action::Post, None, None)?;
            validate_text(text, limits)
        }
        MessageOperation::Delete {
            mode: DeleteMode::ForEveryone,
            ..
        } => {
            if is_author && within_window {
                return Ok(());
            }
            permissions::check(kind, role, Action::DeleteOthersMessages, None, None).map_err(|_| {
                Error::Forbidden {
                    reason: if is_author {
                        "the delete window of your message is over; a moderator may still delete it"
                            .into()
                    } else {
                        "only the author or a moderator may delete this message".into()
                    },
                }
            })
        }
        MessageOperation::Delete {
            mode: DeleteMode::Hard,
            ..
        } => permissions::check(kind, role, Action::HardDelete, None, None),
        MessageOperation::React { .. } | MessageOperation::Unreact { .. } => {
            permissions::check(kind, role, Action::React, None, None)
        }
    }
}

mod entry_layout;

#[cfg(test)]
mod tests;
