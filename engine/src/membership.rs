//! Changes to a conversation itself: members, roles, ownership, profile, archiving and
//! moderation (kick, ban, mute), as requests, the events they leave in the seq stream, and the
//! pure functions that decide and apply them.
//!
//! The conversation actor is the only writer of its conversation, and it holds the member list,
//! so these rules are decided there: [`authorize_change`] checks a request against the
//! conversation as it will be once everything already accepted is stored, and returns the event
//! to record. [`apply_change`] is total (it cannot refuse): storage runs it in the same atomic
//! write that appends the event, and the actor runs it on its own copy when storage reports the
//! event durable, so the two never disagree.
//!
//! Bans and mutes carry an optional `until`; whether one is in force is computed from the time
//! of the request ([`crate::model::Restriction::is_in_force`]), so they end on their own with no
//! timer, across restarts, and tests move time by passing it.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::model::{ConversationSnapshot, Member, Restriction, Role};
use crate::operations::{ConversationEvent, ConversationEventBody};
use crate::permissions::{self, Action};
use crate::time::Timestamp;
use crate::validate::MAX_TITLE_BYTES;
use crate::{Error, Result};

/// The longest description accepted, in UTF-8 bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 2048;
/// The longest avatar URL accepted, in bytes.
pub const MAX_AVATAR_URL_BYTES: usize = 2048;
/// The longest moderation reason accepted, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 512;
/// How many users one request may add.
pub const MAX_MEMBERS_PER_ADD: usize = 100;

/// A field of an update: left alone, cleared, or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Leave the field as it is.
    #[default]
    Keep,
    /// Clear the field.
    Clear,
    /// Set the field.
    Set(T),
}

impl<T: Clone> Patch<T> {
    fn applied_to(&self, current: &Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current.clone(),
            Patch::Clear => None,
            Patch::Set(value) => Some(value.clone()),
        }
    }
}

/// A moderation action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModerationAction {
    /// Remove a member; they may be added again.
    Kick,
    /// Remove a member (if they are one) and keep them out until unbanned or the ban ends.
    Ban,
    /// Lift a ban.
    Unban,
    /// Keep a member from posting until unmuted or the mute ends.
    Mute,
    /// Lift a mute.
    Unmute,
}

impl ModerationAction {
    /// The wire name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationAction::Kick => "kick",
            ModerationAction::Ban => "ban",
            ModerationAction::Unban => "unban",
            ModerationAction::Mute => "mute",
            ModerationAction::Unmute => "unmute",
        }
    }

    /// Parses the wire name of an action.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "kick" => Some(ModerationAction::Kick),
            "ban" => Some(ModerationAction::Ban),
            "unban" => Some(ModerationAction::Unban),
            "mute" => Some(ModerationAction::Mute),
            "unmute" => Some(ModerationAction::Unmute),
            _ => None,
        }
    }

    /// The past-tense name used in event types (`moderation.banned`).
    pub fn event_name(self) -> &'static str {
        match self {
            ModerationAction::Kick => "kicked",
            ModerationAction::Ban => "banned",
            ModerationAction::Unban => "unbanned",
            ModerationAction::Mute => "muted",
            ModerationAction::Unmute => "unmuted",
        }
    }
}

/// Why a member left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaveReason {
    /// They left.
    Left,
    /// An admin removed them.
    Removed,
}

impl LeaveReason {
    /// The wire name of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Left => "left",
            LeaveReason::Removed => "removed",
        }
    }
}

/// A change a member asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationChange {
    /// Add users as members.
    AddMembers {
        /// Who.
        user_ids: Vec<UserId>,
    },
    /// Remove another member.
    RemoveMember {
        /// Who.
        user_id: UserId,
    },
    /// Leave the conversation.
    Leave,
    /// Give another member a role below owner.
    ChangeRole {
        /// Who.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Hand ownership to another member (the old owner becomes an admin).
    TransferOwnership {
        /// The new owner.
        user_id: UserId,
    },
    /// Change the title and profile.
    Update {
        /// The title.
        title: Patch<String>,
        /// The description.
        description: Patch<String>,
        /// The avatar URL.
        avatar_url: Patch<String>,
    },
    /// Archive or unarchive.
    Archive {
        /// The new state.
        archived: bool,
    },
    /// Kick, ban, unban, mute or unmute a user.
    Moderate {
        /// What.
        action: ModerationAction,
        /// Whom.
        user_id: UserId,
        /// For bans and mutes: how long, in milliseconds; `None` until lifted.
        duration_ms: Option<u64>,
        /// Why.
        reason: Option<String>,
    },
}

fn member_role(snapshot: &ConversationSnapshot, user_id: &UserId) -> Option<Role> {
    snapshot.member(user_id).map(|member| member.role)
}

fn check_text(field: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.len() > limit {
        return Err(Error::TooLarge {
            what: field.into(),
            limit,
            actual: value.len(),
        });
    }
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "must not be blank when present"));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

fn check_patch(field: &'static str, patch: &Patch<String>, limit: usize) -> Result<()> {
    match patch {
        Patch::Set(value) => check_text(field, value, limit),
        Patch::Keep | Patch::Clear => Ok(()),
    }
}

fn not_a_member(user_id: &UserId) -> Error {
    Error::Conflict {
        reason: format!("{user_id} is not a member"),
    }
}

/// Decides whether `actor_id` may make `change` to the conversation `snapshot` (as it will be
/// once everything accepted before is stored) at `now`, and returns the event to record.
///
/// # Errors
/// [`Error::NotMember`] for an actor who is not a member; [`Error::Forbidden`] where the
/// permission matrix, a ban or the kind of conversation refuses; [`Error::Conflict`] for a
/// change that makes no sense in the current state (adding members who all are members
/// already, unbanning someone who is not banned, changing an archived conversation);
/// [`Error::Invalid`] and [`Error::TooLarge`] for bad values, including more than
/// `max_members` members.
pub fn authorize_change(
    snapshot: &ConversationSnapshot,
    actor_id: &UserId,
    change: ConversationChange,
    now: Timestamp,
    max_members: usize,
) -> Result<ConversationEventBody> {
    let conversation = &snapshot.conversation;
    let kind = conversation.kind;
    let actor_role = member_role(snapshot, actor_id).ok_or(Error::NotMember)?;
    let check = |action: Action, target: Option<Role>, new_role: Option<Role>| {
        permissions::check(kind, actor_role, action, target, new_role)
    };
    if conversation.archived && !matches!(change, ConversationChange::Archive { .. }) {
        return Err(Error::Conflict {
            reason: "the conversation is archived; unarchive it first".to_owned(),
        });
    }
    match change {
        ConversationChange::AddMembers { user_ids } => {
            check(Action::AddMembers, None, None)?;
            if user_ids.is_empty() {
                return Err(Error::invalid("user_ids", "must name at least one user"));
            }
            if user_ids.len() > MAX_MEMBERS_PER_ADD {
                return Err(Error::TooLarge {
                    what: "user_ids".into(),
                    limit: MAX_MEMBERS_PER_ADD,
                    actual: user_ids.len(),
                });
            }
            let mut new_members: Vec<Member> = Vec::new();
            for user_id in user_ids {
                if snapshot.member(&user_id).is_some()
                    || new_members.iter().any(|member| member.user_id == user_id)
                {
                    continue;
                }
                if conversation.ban_at(&user_id, now).is_some() {
                    return Err(Error::Forbidden {
                        reason: "a user named is banned from this conversation".into(),
                    });
                }
                new_members.push(Member {
                    user_id,
                    role: Role::Member,
                    joined_at: now,
                });
            }
            if new_members.is_empty() {
                return Err(Error::Conflict {
                    reason: "every user named is a member already".to_owned(),
                });
            }
            let total = snapshot.members.len() + new_members.len();
            if total > max_members {
                return Err(Error::TooLarge {
                    what: "members".into(),
                    limit: max_members,
                    actual: total,
                });
            }
            Ok(ConversationEventBody::MembersAdded {
                members: new_members,
            })
        }
        ConversationChange::RemoveMember { user_id } => {
            if &user_id == actor_id {
                return Err(Error::invalid("user_id", "use leave to leave yourself"));
            }
            let target = member_role(snapshot, &user_id).ok_or_else(|| not_a_member(&user_id))?;
            check(Action::RemoveMember, Some(target), None)?;
            Ok(ConversationEventBody::MemberLeft {
                user_id,
                reason: LeaveReason::Removed,
            })
        }
        ConversationChange::Leave => {
            check(Action::Leave, None, None)?;
            Ok(ConversationEventBody::MemberLeft {
                user_id: actor_id.clone(),
                reason: LeaveReason::Left,
            })
        }
        ConversationChange::ChangeRole { user_id, role } => {
            if role == Role::Owner {
                return Err(Error::invalid(
                    "role",
                    "ownership is handed over with transfer_ownership",
                ));
            }
            if &user_id == actor_id {
                return Err(Error::invalid("user_id", "you cannot change your own role"));
            }
            let target = member_role(snapshot, &user_id).ok_or_else(|| not_a_member(&user_id))?;
            check(Action::ChangeRole, Some(target), Some(role))?;
            if target == role {
                return Err(Error::Conflict {
                    reason: format!("{user_id} already has that role"),
                });
            }
            Ok(ConversationEventBody::RoleChanged { user_id, role })
        }
        ConversationChange::TransferOwnership { user_id } => {
            check(Action::TransferOwnership, None, None)?;
            if &user_id == actor_id {
                return Err(Error::invalid("user_id", "you are the owner already"));
            }
            member_role(snapshot, &user_id).ok_or_else(|| not_a_member(&user_id))?;
            Ok(ConversationEventBody::OwnerChanged {
                previous_owner: actor_id.clone(),
                owner: user_id,
            })
        }
        ConversationChange::Update {
            title,
            description,
            avatar_url,
        } => {
            check(Action::UpdateConversation, None, None)?;
            check_patch("title", &title, MAX_TITLE_BYTES)?;
            check_patch("description", &description, MAX_DESCRIPTION_BYTES)?;
            check_patch("avatar_url", &avatar_url, MAX_AVATAR_URL_BYTES)?;
            if let Patch::Set(url) = &avatar_url
                && !url.starts_with("https://")
            {
                return Err(Error::invalid("avatar_url", "must be an https:// URL"));
            }
            Ok(ConversationEventBody::ConversationUpdated {
                title: title.applied_to(&conversation.title),
                description: description.applied_to(&conversation.profile.description),
                avatar_url: avatar_url.applied_to(&conversation.profile.avatar_url),
            })
        }
        ConversationChange::Archive { archived } => {
            check(Action::Archive, None, None)?;
            if conversation.archived == archived {
                return Err(Error::Conflict {
                    reason: if archived {
                        "the conversation is archived already".to_owned()
                    } else {
                        "the conversation is not archived".to_owned()
                    },
                });
            }
            Ok(ConversationEventBody::ConversationArchived { archived })
        }
        ConversationChange::Moderate {
            action,
            user_id,
            duration_ms,
            reason,
        } => {
            if &user_id == actor_id {
                return Err(Error::invalid("user_id", "you cannot moderate yourself"));
            }
            if let Some(reason) = &reason {
                check_text("reason", reason, MAX_REASON_BYTES)?;
            }
            let target = member_role(snapshot, &user_id);
            check(Action::Moderate, target, None)?;
            if duration_ms == Some(0) {
                return Err(Error::invalid("duration_ms", "must be at least 1"));
            }
            let timed = matches!(action, ModerationAction::Ban | ModerationAction::Mute);
            if duration_ms.is_some() && !timed {
                return Err(Error::invalid(
                    "duration_ms",
                    "only bans and mutes take a duration",
                ));
            }
            match action {
                ModerationAction::Kick | ModerationAction::Mute if target.is_none() => {
                    return Err(not_a_member(&user_id));
                }
                ModerationAction::Unban if conversation.ban_at(&user_id, now).is_none() => {
                    return Err(Error::Conflict {
                        reason: format!("{user_id} is not banned"),
                    });
                }
                ModerationAction::Unmute if conversation.mute_at(&user_id, now).is_none() => {
                    return Err(Error::Conflict {
                        reason: format!("{user_id} is not muted"),
                    });
                }
                _ => {}
            }
            Ok(ConversationEventBody::Moderated {
                action,
                user_id,
                until: duration_ms.map(|duration_ms| now.plus_millis(duration_ms)),
                reason,
            })
        }
    }
}

fn upsert(restrictions: &mut Vec<Restriction>, restriction: Restriction) {
    restrictions.retain(|existing| existing.user_id != restriction.user_id);
    restrictions.push(restriction);
}

fn remove_member(snapshot: &mut ConversationSnapshot, user_id: &UserId) {
    snapshot.members.retain(|member| &member.user_id != user_id);
}

/// Applies a recorded change to the conversation. Total: events were authorized when they were
/// accepted, so applying one never fails (a change that no longer fits, such as removing
/// someone already gone, leaves the conversation as it is). Other events are ignored.
pub fn apply_change(snapshot: &mut ConversationSnapshot, event: &ConversationEvent) {
    let now = event.ts;
    let conversation = &mut snapshot.conversation;
    // Ended restrictions are dropped whenever the conversation changes, so the lists stay short.
    conversation
        .bans
        .retain(|restriction| restriction.is_in_force(now));
    conversation
        .mutes
        .retain(|restriction| restriction.is_in_force(now));
    match &event.body {
        ConversationEventBody::MembersAdded { members } => {
            for member in members {
                if snapshot.member(&member.user_id).is_none() {
                    snapshot.members.push(member.clone());
                }
            }
            snapshot
                .members
                .sort_by(|left, right| left.user_id.cmp(&right.user_id));
        }
        ConversationEventBody::MemberLeft { user_id, .. } => remove_member(snapshot, user_id),
        ConversationEventBody::RoleChanged { user_id, role } => {
            if let Some(member) = snapshot
                .members
                .iter_mut()
                .find(|member| &member.user_id == user_id)
            {
                member.role = *role;
            }
        }
        ConversationEventBody::OwnerChanged {
            previous_owner,
            owner,
        } => {
            for member in &mut snapshot.members {
                if &member.user_id == owner {
                    member.role = Role::Owner;
                } else if &member.user_id == previous_owner {
                    member.role = Role::Admin;
                }
            }
        }
        ConversationEventBody::ConversationUpdated {
            title,
            description,
            avatar_url,
        } => {
            conversation.title.clone_from(title);
            conversation.profile.description.clone_from(description);
            conversation.profile.avatar_url.clone_from(avatar_url);
        }
        ConversationEventBody::ConversationArchived { archived } => {
            conversation.archived = *archived;
        }
        ConversationEventBody::Moderated {
            action,
            user_id,
            until,
            reason,
        } => {
            let restriction = || Restriction {
                user_id: user_id.clone(),
                by: event.actor_id.clone(),
                since: now,
                until: *until,
                reason: reason.clone(),
            };
            match action {
                ModerationAction::Kick => remove_member(snapshot, user_id),
                ModerationAction::Ban => {
                    upsert(&mut conversation.bans, restriction());
                    remove_member(snapshot, user_id);
                }
                ModerationAction::Unban => conversation
                    .bans
                    .retain(|restriction| &restriction.user_id != user_id),
                ModerationAction::Mute => upsert(&mut conversation.mutes, restriction()),
                ModerationAction::Unmute => conversation
                    .mutes
                    .retain(|restriction| &restriction.user_id != user_id),
            }
        }
        ConversationEventBody::MessageEdited { .. }
        | ConversationEventBody::MessageDeleted { .. }
        | ConversationEventBody::ReactionAdded { .. }
        | ConversationEventBody::ReactionRemoved { .. }
        | ConversationEventBody::CallStarted { .. }
        | ConversationEventBody::CallEnded { .. }
        | ConversationEventBody::RecordingStarted { .. }
        | ConversationEventBody::RecordingEnded { .. } => {}
    }
}

/// The users a recorded change takes out of the conversation (their subscriptions end).
pub fn removed_users(event: &ConversationEvent) -> Vec<&UserId> {
    match &event.body {
        ConversationEventBody::MemberLeft { user_id, .. }
        | ConversationEventBody::Moderated {
            action: ModerationAction::Kick | ModerationAction::Ban,
            user_id,
            ..
        } => vec![user_id],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
