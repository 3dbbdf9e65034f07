//! The rules of forwarding: which forward requests are acceptable, which originals may be
//! copied, and what each copy looks like.
//!
//! A forward copies messages of one conversation into others. The request names each message
//! and each target at most once (repeats are dropped, keeping the first), at least one of each,
//! and no more than the configured counts. Each copy is a new message of the forwarder's with
//! `forwarded_from` naming the original (the first one, for a copy of a copy) and the
//! `client_id` `<client_id>+<index>`, so retrying the same forward stores nothing twice; that
//! suffix is why a forward's `client_id` is shorter than a send's.

use std::collections::HashSet;

use crate::ids::{ClientId, ConversationId, MessageId};
use crate::model::{ForwardedFrom, Message, NewMessage};
use crate::{Error, Result};

/// The longest `client_id` a forward may use: a client id is at most 64 bytes, and each copy
/// appends `+<index>`.
pub const MAX_FORWARD_CLIENT_ID_BYTES: usize = 62;

/// How much one forward may copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardLimits {
    /// Messages one forward may copy.
    pub max_messages: usize,
    /// Target conversations one forward may name.
    pub max_targets: usize,
}

/// A forward request that passed [`check_forward`]: each message and target once, in the order
/// first named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPlan {
    /// The messages to copy, in order.
    pub message_ids: Vec<MessageId>,
    /// The conversations to copy them into, in order.
    pub targets: Vec<ConversationId>,
}

/// Drops repeated messages and targets, then checks the request's shape.
///
/// # Errors
/// [`Error::Invalid`] for no messages (`message_ids`), no targets (`to`) or a `client_id` over
/// [`MAX_FORWARD_CLIENT_ID_BYTES`]; [`Error::TooLarge`] for more messages or targets than
/// `limits` allow. Checked in that order, so a client sees the first problem.
pub fn check_forward(
    mut message_ids: Vec<MessageId>,
    mut targets: Vec<ConversationId>,
    client_id: &ClientId,
    limits: ForwardLimits,
) -> Result<ForwardPlan> {
    let mut seen = HashSet::new();
    message_ids.retain(|message_id| seen.insert(*message_id));
    let mut seen = HashSet::new();
    targets.retain(|target| seen.insert(*target));
    if message_ids.is_empty() {
        return Err(Error::invalid(
            "message_ids",
            "must name at least one message",
        ));
    }
    if targets.is_empty() {
        return Err(Error::invalid("to", "must name at least one conversation"));
    }
    for (what, count, limit) in [
        ("message_ids", message_ids.len(), limits.max_messages),
        ("to", targets.len(), limits.max_targets),
    ] {
        if count > limit {
            return Err(Error::TooLarge {
                what: what.into(),
                limit,
                actual: count,
            });
        }
    }
    if client_id.as_str().len() > MAX_FORWARD_CLIENT_ID_BYTES {
        return Err(Error::invalid(
            "client_id",
            format!(
                "must be at most {MAX_FORWARD_CLIENT_ID_BYTES} bytes for a forward (each copy appends +<index>)"
            ),
        ));
    }
    Ok(ForwardPlan {
        message_ids,
        targets,
    })
}

/// Checks that `original` may be forwarded.
///
/// # Errors
/// [`Error::Conflict`] for a deleted message.
pub fn check_original(original: &Message) -> Result<()> {
    if original.state.deleted.is_some() {
        return Err(Error::Conflict {
            reason: format!("message {} was deleted", original.message_id),
        });
    }
    Ok(())
}

/// The copy of `original` (found in `source`) that is the `index`th of a forward with
/// `client_id`.
///
/// # Errors
/// [`Error::Invalid`] if the copy's `client_id` is not a valid one (it always is after
/// [`check_forward`]).
pub fn forwarded_copy(
    source: ConversationId,
    original: &Message,
    client_id: &ClientId,
    index: usize,
) -> Result<NewMessage> {
    let origin = original
        .forwarded_from
        .clone()
        .unwrap_or_else(|| ForwardedFrom {
            conversation_id: source,
            message_id: original.message_id,
            sender_id: original.sender_id.clone(),
        });
    Ok(NewMessage {
        client_id: ClientId::parse(&format!("{client_id}+{index}"))?,
        text: original.text.clone(),
        reply_to: None,
        thread_root: None,
        forwarded_from: Some(Box::new(origin)),
        attachments: original
            .attachments
            .iter()
            .map(|attachment| attachment.media_id)
            .collect(),
    })
}

#[cfg(test)]
mod tests;
