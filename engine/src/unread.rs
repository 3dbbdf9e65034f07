//! The unread rule: which entries of a conversation's log count as unread for a member.
//!
//! It is written once, here. The embedded and in-memory stores count with
//! [`counts_as_unread`] itself; the MongoDB store counts with a query over the fields it
//! stores beside each entry, and a test in its adapter checks that query against this rule on
//! a table of entries, so the two cannot drift apart.

use crate::ids::UserId;
use crate::operations::LogEntry;

/// Whether `entry` counts as unread for `user_id`: a message (not an event), not deleted, sent
/// by someone else. What a member has read is the part of the log at or before their read
/// cursor; the stores count the entries after it that satisfy this rule.
pub fn counts_as_unread(entry: &LogEntry, user_id: &UserId) -> bool {
    entry
        .as_message()
        .is_some_and(|message| message.sender_id != *user_id && message.state.deleted.is_none())
}
