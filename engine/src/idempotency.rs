//! Idempotency keys: whose they are, and what counts as repeating a request.
//!
//! A `client_id` is scoped by its author: the key of an entry is (tenant, conversation, author,
//! `client_id`), the way Matrix scopes a `txnId` to a device and Stripe scopes a key to an
//! account. Two members who happen to pick the same `client_id` (counters, UUID prefixes)
//! therefore never collide: each one's request is stored as their own.
//!
//! The same author reusing a key is a retry only if it asks for the same thing. [`RequestShape`]
//! is what a request asked for, reduced to what a retry must repeat: the text and references of
//! a send, the target and arguments of an operation on a message. It can be read off a request
//! ([`RequestShape::of_new_message`], [`RequestShape::of_operation`]) and off the entry the
//! request produced ([`RequestShape::of_entry`]), including a stored entry that later operations
//! changed (an edited message still shows its original text in its edit history). Where a stored
//! entry no longer shows a part of its request (a deleted message's text, an edit's text scrubbed
//! by a delete), that part is not compared: a retry cannot be told from a new request there, and
//! the documented answer for a retry, the original, is the safe one.
//!
//! Changes to the conversation itself (members, roles, profile, moderation) and the server's own
//! records (calls, recordings) have [`RequestShape::Unchecked`]: what they store depends on the
//! conversation when they were made (a member added twice is added once), so a later request
//! cannot be compared with what was stored, and a repeat by the same author answers the
//! original, as it always has.

use std::hash::{BuildHasher, Hash, Hasher};

use crate::Error;
use crate::ids::{ConversationId, Emoji, MediaId, MessageId};
use crate::model::{DeleteMode, Message, NewMessage};
use crate::operations::{ConversationEventBody, LogEntry, MessageOperation};

/// What a request asked for, as far as a retry with the same key must repeat it. See the module
/// documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestShape<'a> {
    /// A new message. `text` is `None` when a stored message no longer shows its original text
    /// (deleted without an edit history).
    Send {
        /// The original text.
        text: Option<&'a str>,
        /// The message it replies to.
        reply_to: Option<MessageId>,
        /// The thread it was posted in.
        thread_root: Option<MessageId>,
        /// A digest of the media it attached, in order; `None` once a delete removed them.
        attachments: Option<u64>,
    },
    /// A forwarded copy, identified by its original (the text is the original's at the time of
    /// the forward, which an edit of the original may change between a forward and its retry).
    Forward {
        /// The conversation of the original.
        conversation_id: ConversationId,
        /// The original message.
        message_id: MessageId,
    },
    /// An edit. `text` is `None` once a delete scrubbed it from the stored event.
    Edit {
        /// The edited message.
        message_id: MessageId,
        /// The new text.
        text: Option<&'a str>,
    },
    /// A delete for everyone (or hard).
    Delete {
        /// The deleted message.
        message_id: MessageId,
        /// How.
        mode: DeleteMode,
    },
    /// A reaction added.
    React {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: &'a Emoji,
    },
    /// A reaction removed.
    Unreact {
        /// The message.
        message_id: MessageId,
        /// The reaction.
        emoji: &'a Emoji,
    },
    /// A change to the conversation or a server record: not compared (see the module
    /// documentation).
    Unchecked,
}

/// A digest of the media a send attached, in order (only compared within a process).
fn attachments_digest(media_ids: impl Iterator<Item = MediaId>) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0xa77a).build_hasher();
    for media_id in media_ids {
        media_id.hash(&mut hasher);
    }
    hasher.finish()
}

/// A compact digest of a [`RequestShape`] read off a request or a new entry, for remembering
/// recent keys in memory. It is never stored: it need only agree with itself within a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestFingerprint(u64);

impl<'a> RequestShape<'a> {
    /// The shape of a send request.
    pub fn of_new_message(new_message: &'a NewMessage) -> Self {
        match &new_message.forwarded_from {
            Some(origin) => RequestShape::Forward {
                conversation_id: origin.conversation_id,
                message_id: origin.message_id,
            },
            None => RequestShape::Send {
                text: Some(&new_message.text),
                reply_to: new_message.reply_to,
                thread_root: new_message.thread_root,
                attachments: Some(attachments_digest(new_message.attachments.iter().copied())),
            },
        }
    }

    /// The shape of an operation on a message.
    pub fn of_operation(operation: &'a MessageOperation) -> Self {
        match operation {
            MessageOperation::Edit { message_id, text } => RequestShape::Edit {
                message_id: *message_id,
                text: Some(text),
            },
            MessageOperation::Delete { message_id, mode } => RequestShape::Delete {
                message_id: *message_id,
                mode: *mode,
            },
            MessageOperation::React { message_id, emoji } => RequestShape::React {
                message_id: *message_id,
                emoji,
            },
            MessageOperation::Unreact { message_id, emoji } => RequestShape::Unreact {
                message_id: *message_id,
                emoji,
            },
        }
    }

    /// The shape of the request that produced `entry`, as far as the entry still shows it.
    pub fn of_entry(entry: &'a LogEntry) -> Self {
        match entry {
            LogEntry::Message(message) => Self::of_message(message),
            LogEntry::Event(event) => match &event.body {
                ConversationEventBody::MessageEdited { message_id, text } => RequestShape::Edit {
                    message_id: *message_id,
                    text: text.as_deref(),
                },
                ConversationEventBody::MessageDeleted { message_id, mode } => {
                    RequestShape::Delete {
                        message_id: *message_id,
                        mode: *mode,
                    }
                }
                ConversationEventBody::ReactionAdded {
                    message_id, emoji, ..
                } => RequestShape::React {
                    message_id: *message_id,
                    emoji,
                },
                ConversationEventBody::ReactionRemoved {
                    message_id, emoji, ..
                } => RequestShape::Unreact {
                    message_id: *message_id,
                    emoji,
                },
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
                | ConversationEventBody::RecordingEnded { .. } => RequestShape::Unchecked,
            },
        }
    }

    fn of_message(message: &'a Message) -> Self {
        if let Some(origin) = &message.forwarded_from {
            return RequestShape::Forward {
                conversation_id: origin.conversation_id,
                message_id: origin.message_id,
            };
        }
        // The text the message was sent with: the first entry of its edit history if it was
        // edited; unknown once a delete removed it with no history left.
        let original_text = match message.state.previous_versions.first() {
            Some(first) => Some(first.text.as_str()),
            None if message.state.deleted.is_some() => None,
            None => Some(message.text.as_str()),
        };
        RequestShape::Send {
            text: original_text,
            reply_to: message.reply_to,
            thread_root: message.thread_root,
            attachments: message.state.deleted.is_none().then(|| {
                attachments_digest(
                    message
                        .attachments
                        .iter()
                        .map(|attachment| attachment.media_id),
                )
            }),
        }
    }

    /// Whether this request (read off a request or a new entry) repeats `stored`, the shape of
    /// the entry stored under the same author and key. Parts `stored` no longer shows match
    /// anything.
    pub fn repeats(&self, stored: &RequestShape<'_>) -> bool {
        fn same_text(request: Option<&str>, stored: Option<&str>) -> bool {
            match (request, stored) {
                (Some(request), Some(stored)) => request == stored,
                _ => true,
            }
        }
        match (self, stored) {
            (
                RequestShape::Send {
                    text,
                    reply_to,
                    thread_root,
                    attachments,
                },
                RequestShape::Send {
                    text: stored_text,
                    reply_to: stored_reply_to,
                    thread_root: stored_thread_root,
                    attachments: stored_attachments,
                },
            ) => {
                same_text(*text, *stored_text)
                    && reply_to == stored_reply_to
                    && thread_root == stored_thread_root
                    && (attachments.is_none()
                        || stored_attachments.is_none()
                        || attachments == stored_attachments)
            }
            (
                RequestShape::Edit { message_id, text },
                RequestShape::Edit {
                    message_id: stored_message_id,
                    text: stored_text,
                },
            ) => message_id == stored_message_id && same_text(*text, *stored_text),
            (RequestShape::Unchecked, RequestShape::Unchecked) => true,
            (request, stored) => request == stored,
        }
    }

    /// The digest of this shape, for a shape read off a request or a new entry (whose parts are
    /// all known).
    pub fn fingerprint(&self) -> RequestFingerprint {
        RequestFingerprint(foldhash::fast::FixedState::with_seed(0x5eed).hash_one(self))
    }

    /// Decides what a request with this shape gets when its author already used its key for the
    /// entry of shape `stored`: `Ok` for a retry, answered with the original.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key was used for a different request.
    pub fn check_repeat(&self, stored: &RequestShape<'_>) -> Result<(), Error> {
        if self.repeats(stored) {
            Ok(())
        } else {
            Err(reused_for_another_request())
        }
    }
}

impl RequestFingerprint {
    /// Decides what a request with this fingerprint gets when its author's key is remembered
    /// with `remembered`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the key was used for a different request.
    pub fn check_repeat(self, remembered: RequestFingerprint) -> Result<(), Error> {
        if self == remembered {
            Ok(())
        } else {
            Err(reused_for_another_request())
        }
    }
}

/// The refusal of a key its author already used for a different request.
pub fn reused_for_another_request() -> Error {
    Error::Conflict {
        reason: "this client_id was already used for a different request; use a new client_id"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests;
