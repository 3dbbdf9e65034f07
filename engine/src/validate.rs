//! Validation rules for what clients submit.
//!
//! One function per kind of input, each returning the exact [`Error`] a client will see. Both the
//! WebSocket and the HTTP paths reach these through the conversation state machine, so the two
//! can never disagree.

use crate::media::attachment::{DEFAULT_MAX_ATTACHMENTS, check_attachment_ids};
use crate::model::{ConversationKind, NewMessage};
use crate::{Error, Result};

/// Limits that apply to message content and to operations on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLimits {
    /// The longest message text accepted, in UTF-8 bytes.
    pub max_text_bytes: usize,
    /// How long after sending its author may edit a message (and delete it for everyone
    /// without a moderator's role), in milliseconds.
    pub edit_window_ms: u64,
    /// How many media items one message may attach.
    pub max_attachments: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        MessageLimits {
            max_text_bytes: 4096,
            edit_window_ms: 15 * 60 * 1000,
            max_attachments: DEFAULT_MAX_ATTACHMENTS,
        }
    }
}

/// Checks a new message's text and attachment list against the limits. The text may be empty
/// when the message attaches media.
///
/// # Errors
/// [`Error::Invalid`] for empty or whitespace-only text without attachments, text with a NUL
/// character, or an attachment named twice; [`Error::TooLarge`] for text over
/// `limits.max_text_bytes` or more than `limits.max_attachments` attachments.
pub fn validate_new_message(new_message: &NewMessage, limits: &MessageLimits) -> Result<()> {
    check_attachment_ids(&new_message.attachments, limits.max_attachments)?;
    if new_message.attachments.is_empty() {
        validate_text(&new_message.text, limits)
    } else {
        // A photo needs no caption.
        check_text_content(&new_message.text, limits)
    }
}

/// Checks a message text (new or edited) against the limits.
///
/// # Errors
/// As [`validate_new_message`].
pub fn validate_text(text: &str, limits: &MessageLimits) -> Result<()> {
    check_text_content(text, limits)?;
    if text.trim().is_empty() {
        return Err(Error::invalid("text", "must not be empty"));
    }
    Ok(())
}

/// Checks a text's length and characters (not that it says something).
fn check_text_content(text: &str, limits: &MessageLimits) -> Result<()> {
    if text.len() > limits.max_text_bytes {
        return Err(Error::TooLarge {
            what: "text".into(),
            limit: limits.max_text_bytes,
            actual: text.len(),
        });
    }
    if text.contains('\0') {
        return Err(Error::invalid("text", "must not contain NUL characters"));
    }
    Ok(())
}

/// The longest conversation title accepted, in UTF-8 bytes.
pub const MAX_TITLE_BYTES: usize = 256;

/// Checks the shape of a new conversation: its title and how many other members it names.
///
/// # Errors
/// [`Error::Invalid`] if a direct conversation does not name exactly one other user or names its
/// creator, or the title is blank; [`Error::TooLarge`] if the title or the member list is too long.
pub fn validate_new_conversation(
    kind: ConversationKind,
    title: Option<&str>,
    n_other_members: usize,
    creator_listed: bool,
    max_members: usize,
) -> Result<()> {
    if let Some(title) = title {
        if title.len() > MAX_TITLE_BYTES {
            return Err(Error::TooLarge {
                what: "title".into(),
                limit: MAX_TITLE_BYTES,
                actual: title.len(),
            });
        }
        if title.trim().is_empty() {
            return Err(Error::invalid("title", "must not be blank when present"));
        }
    }
    if kind == ConversationKind::Direct && (n_other_members != 1 || creator_listed) {
        return Err(Error::invalid(
            "members",
            "a direct conversation names exactly one other user",
        ));
    }
    if n_other_members + 1 > max_members {
        return Err(Error::TooLarge {
            what: "members".into(),
            limit: max_members,
            actual: n_other_members + 1,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
