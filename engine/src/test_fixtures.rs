//! What the engine's unit tests build their cases from: ids from short names and a
//! conversation with the members a test names. Compiled for tests only.

use crate::ids::{ConversationId, TenantId, UserId};
use crate::model::{Conversation, ConversationKind, ConversationSnapshot, Member, Role};
use crate::time::Timestamp;

/// A user id from a short name.
pub(crate) fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

/// Conversation 1 of tenant `t1`, created at time 0 by `creator`, with `members` (each with its
/// role, joined at time 0).
pub(crate) fn conversation_with(
    kind: ConversationKind,
    name: Option<&str>,
    creator: &str,
    members: &[(&str, Role)],
) -> ConversationSnapshot {
    ConversationSnapshot {
        conversation: Conversation::new(
            ConversationId::from_parts(1, 1),
            TenantId::parse("t1").expect("valid tenant"),
            kind,
            name.map(str::to_owned),
            user(creator),
            Timestamp(0),
        ),
        members: members
            .iter()
            .map(|(name, role)| Member {
                user_id: user(name),
                role: *role,
                joined_at: Timestamp(0),
            })
            .collect(),
    }
}
