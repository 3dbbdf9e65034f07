//! What appending one log entry does to the rest of its conversation's log, shared by every
//! adapter so that they cannot disagree.
//!
//! An adapter assigns the entry its seq and then calls [`stage_entry`] with a [`LogView`]: its
//! own reads, overlaid with whatever earlier entries of the same batch staged. Staging applies
//! the engine's pure rules ([`apply_event`], [`apply_thread_reply`], [`scrub_edited_text`]) to
//! the entries the new one touches and returns them, rewritten; the adapter writes the new entry
//! and the rewrites in the same atomic batch, or, on a refusal, writes nothing and consumes no
//! seq.

use switchboard_engine::idempotency::RequestShape;
use switchboard_engine::ids::{MessageId, Seq};
use switchboard_engine::membership::apply_change;
use switchboard_engine::model::{ConversationSnapshot, Message};
use switchboard_engine::operations::{
    LogEntry, apply_event, apply_thread_reply, scrub_edited_text,
};
use switchboard_engine::ports::AppendOutcome;
use switchboard_engine::{Error, StoreError};

/// A conversation's log as the batch being staged sees it.
pub(crate) trait LogView {
    /// The entry at `seq`.
    fn entry_at(&self, seq: Seq) -> Result<Option<LogEntry>, StoreError>;

    /// The seq of the message with this id.
    fn message_seq(&self, message_id: MessageId) -> Result<Option<Seq>, StoreError>;

    /// The conversation and its members.
    fn conversation(&self) -> Result<Option<ConversationSnapshot>, StoreError>;
}

/// Why staging did not produce writes.
#[derive(Debug)]
pub(crate) enum StageError {
    /// The entry is refused; nothing is written and no seq is consumed.
    Refused(Error),
    /// The store could not be read, or is damaged.
    Store(StoreError),
}

impl From<StoreError> for StageError {
    fn from(error: StoreError) -> Self {
        StageError::Store(error)
    }
}

fn load_message(
    view: &impl LogView,
    message_id: MessageId,
    missing: impl FnOnce() -> Error,
) -> Result<Message, StageError> {
    let Some(seq) = view.message_seq(message_id)? else {
        return Err(StageError::Refused(missing()));
    };
    match view.entry_at(seq)? {
        Some(LogEntry::Message(message)) => Ok(message),
        _ => Err(StageError::Store(StoreError::Corrupt(format!(
            "message id index points at seq {seq}, which holds no message"
        )))),
    }
}

/// What appending `candidate` gets when its author's `client_id` is already stored as
/// `stored`: a duplicate answered with the original when it repeats the same request, a
/// conflict when the author used the key for another one ([`RequestShape::repeats`]).
pub(crate) fn repeat_outcome(stored: &LogEntry, candidate: &LogEntry) -> AppendOutcome {
    match RequestShape::of_entry(candidate).check_repeat(&RequestShape::of_entry(stored)) {
        Ok(()) => AppendOutcome::DuplicateClientId {
            existing: stored.reference(),
        },
        Err(error) => AppendOutcome::Refused { error },
    }
}

/// What staging one entry produced.
pub(crate) struct Staged {
    /// Earlier entries the new one changed, rewritten, in the order they must be written.
    pub(crate) rewrites: Vec<LogEntry>,
    /// Whether staging completed the new entry beyond its seq (so the caller must be told).
    pub(crate) completed: bool,
    /// The conversation as the entry left it, when the entry changes the conversation itself.
    pub(crate) conversation: Option<ConversationSnapshot>,
}

/// Applies `entry` (its seq already assigned) to the entries it touches, completing `entry`
/// itself where the rules say (an event's resulting state, a reply's thread position).
pub(crate) fn stage_entry(view: &impl LogView, entry: &mut LogEntry) -> Result<Staged, StageError> {
    let mut rewrites = Vec::new();
    let mut completed = false;
    let mut conversation = None;
    match entry {
        LogEntry::Message(message) => {
            if let Some(reply_to) = message.reply_to {
                load_message(view, reply_to, || {
                    Error::invalid("reply_to", "does not name a message of this conversation")
                })?;
            }
            if let Some(root_id) = message.thread_root {
                let mut root = load_message(view, root_id, || {
                    Error::invalid(
                        "thread_root",
                        "does not name a message of this conversation",
                    )
                })?;
                apply_thread_reply(&mut root, message).map_err(StageError::Refused)?;
                rewrites.push(LogEntry::Message(root));
                completed = true;
            }
        }
        // A call's start or end is a record: nothing else changes with it.
        LogEntry::Event(event) if event.body.is_call() => {}
        LogEntry::Event(event) if event.body.changes_conversation() => {
            let Some(mut snapshot) = view.conversation()? else {
                return Err(StageError::Refused(Error::NotFound));
            };
            apply_change(&mut snapshot, event);
            conversation = Some(snapshot);
        }
        LogEntry::Event(event) => {
            let message_id = event.body.message_id().ok_or_else(|| {
                StageError::Store(StoreError::Corrupt(
                    "an event about a message names no message".to_owned(),
                ))
            })?;
            let mut target = load_message(view, message_id, || Error::NotFound)?;
            let effects = apply_event(&mut target, event).map_err(StageError::Refused)?;
            rewrites.push(LogEntry::Message(target));
            completed = true;
            for seq in effects.scrub_edit_seqs {
                if let Some(LogEntry::Event(mut edit)) = view.entry_at(seq)? {
                    scrub_edited_text(&mut edit);
                    rewrites.push(LogEntry::Event(edit));
                }
            }
        }
    }
    Ok(Staged {
        rewrites,
        completed,
        conversation,
    })
}
