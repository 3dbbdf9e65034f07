//! The engine's requests built from wire text, for WebSocket frames and HTTP bodies alike: ids,
//! [`ConversationChange`]s and [`MessageOperation`]s. Both edges call these, so a rule or an
//! error message about a request's fields is written once.
//!
//! Optional inputs are `Option`s because a WebSocket frame may leave any field out; HTTP bodies
//! type their required fields and pass `Some`. Each function checks its fields in the order the
//! arguments are listed, which decides which error a client with several mistakes sees.

use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, Emoji, MediaId, MessageId, UserId};
use switchboard_engine::membership::{ConversationChange, ModerationAction};
use switchboard_engine::model::{DeleteMode, Role};
use switchboard_engine::operations::MessageOperation;

/// A required field's value, or `invalid <field>: is required`.
///
/// # Errors
/// [`Error::Invalid`] when the field is absent.
pub fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

/// A conversation id.
///
/// # Errors
/// [`Error::Invalid`] when it is not a ULID.
pub fn conversation_id(text: &str) -> Result<ConversationId, Error> {
    ConversationId::parse(text)
}

/// A message id in the named field (`message_id`, `reply_to`, `thread_root`, ...).
///
/// # Errors
/// [`Error::Invalid`] naming the field when it is not a message id.
pub fn message_id(field: &'static str, text: &str) -> Result<MessageId, Error> {
    MessageId::parse(text).map_err(|_| Error::invalid(field, "must be a message id"))
}

/// The media a new message attaches (`attachments`), none when the field is absent. How many
/// are allowed and whether one is named twice is checked with the message's other limits.
///
/// # Errors
/// [`Error::Invalid`] (`attachments`) for an entry that is not a media id.
pub fn media_ids<S: AsRef<str>>(values: Option<&[S]>) -> Result<Vec<MediaId>, Error> {
    values
        .unwrap_or_default()
        .iter()
        .map(|value| {
            MediaId::parse(value.as_ref())
                .map_err(|_| Error::invalid("attachments", "must be a list of media ids"))
        })
        .collect()
}

/// A new message's text: required unless the message attaches media, when it defaults to
/// empty (a photo without a caption).
///
/// # Errors
/// [`Error::Invalid`] (`text`) when it is absent and nothing is attached.
pub fn message_text(text: Option<String>, attachments: &[MediaId]) -> Result<String, Error> {
    match text {
        Some(text) => Ok(text),
        None if !attachments.is_empty() => Ok(String::new()),
        None => Err(Error::invalid("text", "is required")),
    }
}

/// Parses a role below owner's: `admin`, `moderator` or `member`.
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_role(role: Option<&str>) -> Result<Role, Error> {
    role.and_then(Role::parse)
        .ok_or_else(|| Error::invalid("role", "must be admin, moderator or member"))
}

/// Parses a moderation action: `kick`, `ban`, `unban`, `mute` or `unmute`.
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_moderation_action(action: Option<&str>) -> Result<ModerationAction, Error> {
    action
        .and_then(ModerationAction::parse)
        .ok_or_else(|| Error::invalid("action", "must be kick, ban, unban, mute or unmute"))
}

/// Parses a delete mode for everyone: `for_everyone` (the default when absent) or `hard`
/// (`for_me` is handled before this, as it is not an operation in the seq stream).
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_delete_mode(mode: Option<&str>) -> Result<DeleteMode, Error> {
    match mode {
        None | Some("for_everyone") => Ok(DeleteMode::ForEveryone),
        Some("hard") => Ok(DeleteMode::Hard),
        Some(_) => Err(Error::invalid(
            "mode",
            "must be \"for_everyone\", \"hard\" or \"for_me\"",
        )),
    }
}

/// `add_members`: the users to add.
///
/// # Errors
/// [`Error::Invalid`] when `user_ids` is absent or names an invalid user id.
pub fn add_members<S: AsRef<str>>(user_ids: Option<&[S]>) -> Result<ConversationChange, Error> {
    Ok(ConversationChange::AddMembers {
        user_ids: required(user_ids, "user_ids")?
            .iter()
            .map(|text| UserId::parse(text.as_ref()))
            .collect::<Result<_, _>>()?,
    })
}

/// `change_role`: a member's new role.
///
/// # Errors
/// [`Error::Invalid`] for a role that is not admin, moderator or member.
pub fn change_role(user_id: UserId, role: Option<&str>) -> Result<ConversationChange, Error> {
    Ok(ConversationChange::ChangeRole {
        user_id,
        role: parse_role(role)?,
    })
}

/// `moderate`: an action on a member (the action is checked before the user).
///
/// # Errors
/// [`Error::Invalid`] for an unknown action, or an absent or invalid user id.
pub fn moderate(
    action: Option<&str>,
    user_id: Option<&str>,
    duration_ms: Option<u64>,
    reason: Option<String>,
) -> Result<ConversationChange, Error> {
    Ok(ConversationChange::Moderate {
        action: parse_moderation_action(action)?,
        user_id: UserId::parse(required(user_id, "user_id")?)?,
        duration_ms,
        reason,
    })
}

/// `edit`: a message's new text.
///
/// # Errors
/// [`Error::Invalid`] when the text is absent.
pub fn edit(message_id: MessageId, text: Option<String>) -> Result<MessageOperation, Error> {
    Ok(MessageOperation::Edit {
        message_id,
        text: required(text, "text")?,
    })
}

/// What a delete asks for.
#[derive(Debug)]
pub enum Deletion {
    /// `for_me`: hide the message for the caller only (not an operation in the seq stream).
    ForMe,
    /// A delete for everyone (a tombstone) or a hard delete.
    Operation(MessageOperation),
}

/// `delete`: by `mode` (`for_everyone` when absent, `hard` or `for_me`).
///
/// # Errors
/// [`Error::Invalid`] for any other mode.
pub fn delete(message_id: MessageId, mode: Option<&str>) -> Result<Deletion, Error> {
    if mode == Some("for_me") {
        return Ok(Deletion::ForMe);
    }
    Ok(Deletion::Operation(MessageOperation::Delete {
        message_id,
        mode: parse_delete_mode(mode)?,
    }))
}

/// `react`: add the caller's reaction.
///
/// # Errors
/// [`Error::Invalid`] when the emoji is absent or not a single emoji or a `:name:`.
pub fn react(message_id: MessageId, emoji: Option<&str>) -> Result<MessageOperation, Error> {
    Ok(MessageOperation::React {
        message_id,
        emoji: Emoji::parse(required(emoji, "emoji")?)?,
    })
}

/// `unreact`: remove the caller's reaction.
///
/// # Errors
/// [`Error::Invalid`] when the emoji is absent or not a single emoji or a `:name:`.
pub fn unreact(message_id: MessageId, emoji: Option<&str>) -> Result<MessageOperation, Error> {
    Ok(MessageOperation::Unreact {
        message_id,
        emoji: Emoji::parse(required(emoji, "emoji")?)?,
    })
}
