//! The rule that makes a direct conversation unique per pair of users.
//!
//! A direct conversation has exactly two members, and there is at most one per pair in a
//! tenant. The pair is always written lower user id first, so `(a, b)` and `(b, a)` name the
//! same conversation. Creating one (the actors) and indexing it (every storage adapter) use this
//! one definition.

use crate::ids::UserId;
use crate::model::{ConversationKind, Member};

/// The two user ids in order, lower first.
pub fn ordered<'a>(first: &'a UserId, second: &'a UserId) -> (&'a UserId, &'a UserId) {
    if first <= second {
        (first, second)
    } else {
        (second, first)
    }
}

/// The pair of a direct conversation (lower user id first); `None` for other kinds, or a direct
/// conversation that does not have exactly two members.
pub fn direct_pair(kind: ConversationKind, members: &[Member]) -> Option<(UserId, UserId)> {
    match (kind, members) {
        (ConversationKind::Direct, [first, second]) => {
            let (first, second) = ordered(&first.user_id, &second.user_id);
            Some((first.clone(), second.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
