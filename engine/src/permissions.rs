//! Who may do what in a conversation: the permission matrix, as data.
//!
//! Every rule is one row of [`RULES`]: the weakest role that may take the action, whether that
//! changes in channels and direct conversations, and whether the action's target (a member whose
//! role is changed, who is removed or moderated) must rank strictly below the actor. Code never
//! compares roles ad hoc; it asks [`check`]. The rendered matrix is `docs/PERMISSIONS.md`, and a
//! test keeps the two identical.

use std::fmt::Write as _;

use crate::model::{ConversationKind, Role};
use crate::{Error, Result};

/// Something a member may try to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send a message (and edit or delete one's own).
    Post,
    /// Add or remove a reaction.
    React,
    /// Change the title, description, avatar or settings.
    UpdateConversation,
    /// Archive the conversation.
    Archive,
    /// Add members.
    AddMembers,
    /// Remove another member.
    RemoveMember,
    /// Change another member's role.
    ChangeRole,
    /// Hand ownership to another member.
    TransferOwnership,
    /// Kick, ban, unban, mute or unmute another member.
    Moderate,
    /// Delete another member's message for everyone.
    DeleteOthersMessages,
    /// Purge a message and its edit history (hard delete).
    HardDelete,
    /// Read the moderation log.
    ReadModerationLog,
    /// Leave the conversation.
    Leave,
}

impl Action {
    /// Every action, in the matrix's order.
    pub const ALL: [Action; 13] = [
        Action::Post,
        Action::React,
        Action::UpdateConversation,
        Action::Archive,
        Action::AddMembers,
        Action::RemoveMember,
        Action::ChangeRole,
        Action::TransferOwnership,
        Action::Moderate,
        Action::DeleteOthersMessages,
        Action::HardDelete,
        Action::ReadModerationLog,
        Action::Leave,
    ];

    /// Why a refused attempt was refused, for the client.
    pub fn refusal(self) -> &'static str {
        match self {
            Action::Post => "your role may not post in this conversation",
            Action::React => "your role may not react in this conversation",
            Action::UpdateConversation => "your role may not change this conversation",
            Action::Archive => "only the owner may archive this conversation",
            Action::AddMembers => "your role may not add members here",
            Action::RemoveMember => "your role may not remove members here",
            Action::ChangeRole => "your role may not change roles here",
            Action::TransferOwnership => "only the owner may transfer ownership",
            Action::Moderate => "your role may not moderate here",
            Action::DeleteOthersMessages => "your role may not delete others' messages here",
            Action::HardDelete => "your role may not hard-delete messages here",
            Action::ReadModerationLog => "your role may not read the moderation log here",
            Action::Leave => "this member may not leave (the owner must transfer ownership first)",
        }
    }

    /// The action's name in documents and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Post => "post",
            Action::React => "react",
            Action::UpdateConversation => "update conversation",
            Action::Archive => "archive",
            Action::AddMembers => "add members",
            Action::RemoveMember => "remove a member",
            Action::ChangeRole => "change a role",
            Action::TransferOwnership => "transfer ownership",
            Action::Moderate => "kick, ban, mute",
            Action::DeleteOthersMessages => "delete others' messages",
            Action::HardDelete => "hard-delete a message",
            Action::ReadModerationLog => "read the moderation log",
            Action::Leave => "leave",
        }
    }
}

/// Who may take an action in a kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Members of this role or stronger.
    AtLeast(Role),
    /// Nobody (the action makes no sense here).
    Nobody,
    /// Any role except this one.
    AnyoneBut(Role),
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The action.
    pub action: Action,
    /// Who may, in a group.
    pub group: Allowance,
    /// Who may, in a channel.
    pub channel: Allowance,
    /// Who may, in a direct conversation.
    pub direct: Allowance,
    /// Whether the target member must rank strictly below the actor (and, for role changes,
    /// the new role too).
    pub target_below_actor: bool,
}

use Allowance::{AnyoneBut, AtLeast, Nobody};
use Role::{Admin, Member, Moderator, Owner};

/// The permission matrix.
#[rustfmt::skip]
pub const RULES: [Rule; 13] = [
    Rule { action: Action::Post, group: AtLeast(Member), channel: AtLeast(Moderator), direct: AtLeast(Member), target_below_actor: false },
    Rule { action: Action::React, group: AtLeast(Member), channel: AtLeast(Member), direct: AtLeast(Member), target_below_actor: false },
    Rule { action: Action::UpdateConversation, group: AtLeast(Admin), channel: AtLeast(Admin), direct: Nobody, target_below_actor: false },
    Rule { action: Action::Archive, group: AtLeast(Owner), channel: AtLeast(Owner), direct: Nobody, target_below_actor: false },
    Rule { action: Action::AddMembers, group: AtLeast(Admin), channel: AtLeast(Admin), direct: Nobody, target_below_actor: false },
    Rule { action: Action::RemoveMember, group: AtLeast(Admin), channel: AtLeast(Admin), direct: Nobody, target_below_actor: true },
    Rule { action: Action::ChangeRole, group: AtLeast(Admin), channel: AtLeast(Admin), direct: Nobody, target_below_actor: true },
    Rule { action: Action::TransferOwnership, group: AtLeast(Owner), channel: AtLeast(Owner), direct: Nobody, target_below_actor: false },
    Rule { action: Action::Moderate, group: AtLeast(Moderator), channel: AtLeast(Moderator), direct: Nobody, target_below_actor: true },
    Rule { action: Action::DeleteOthersMessages, group: AtLeast(Moderator), channel: AtLeast(Moderator), direct: Nobody, target_below_actor: false },
    Rule { action: Action::HardDelete, group: AtLeast(Admin), channel: AtLeast(Admin), direct: Nobody, target_below_actor: false },
    Rule { action: Action::ReadModerationLog, group: AtLeast(Moderator), channel: AtLeast(Moderator), direct: Nobody, target_below_actor: false },
    Rule { action: Action::Leave, group: AnyoneBut(Owner), channel: AnyoneBut(Owner), direct: Nobody, target_below_actor: false },
];

fn rule(action: Action) -> &'static Rule {
    RULES
        .iter()
        .find(|rule| rule.action == action)
        .unwrap_or(&RULES[0])
}

fn allows(allowance: Allowance, role: Role) -> bool {
    match allowance {
        AtLeast(minimum) => role.at_least(minimum),
        Nobody => false,
        AnyoneBut(excluded) => role != excluded,
    }
}

/// Decides whether a member of role `actor` may take `action` in a conversation of `kind`.
/// `target` is the role of the member acted on, and `new_role` the role being given, where the
/// action has them.
///
/// # Errors
/// [`Error::Forbidden`] with the rule that refused it.
pub fn check(
    kind: ConversationKind,
    actor: Role,
    action: Action,
    target: Option<Role>,
    new_role: Option<Role>,
) -> Result<()> {
    let rule = rule(action);
    let allowance = match kind {
        ConversationKind::Group => rule.group,
        ConversationKind::Channel => rule.channel,
        ConversationKind::Direct => rule.direct,
    };
    if !allows(allowance, actor) {
        return Err(Error::Forbidden {
            reason: action.refusal().into(),
        });
    }
    if rule.target_below_actor {
        let below = |role: Role| role > actor;
        if target.is_some_and(|target| !below(target)) {
            return Err(Error::Forbidden {
                reason: "the target's role is not below yours".into(),
            });
        }
        if new_role.is_some_and(|new_role| !below(new_role) || new_role == Owner) {
            return Err(Error::Forbidden {
                reason: "you may only give roles below your own".into(),
            });
        }
    }
    Ok(())
}

fn allowance_text(allowance: Allowance) -> String {
    match allowance {
        AtLeast(Member) => "everyone".to_owned(),
        AtLeast(Owner) => "owner".to_owned(),
        AtLeast(role) => format!("{}+", role.as_str()),
        Nobody => "nobody".to_owned(),
        AnyoneBut(role) => format!("all but {}", role.as_str()),
    }
}

/// The matrix as a Markdown table (what `docs/PERMISSIONS.md` holds).
pub fn render_matrix() -> String {
    let mut out =
        String::from("| action | group | channel | direct | target must rank below the actor |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for rule in &RULES {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            rule.action.as_str(),
            allowance_text(rule.group),
            allowance_text(rule.channel),
            allowance_text(rule.direct),
            if rule.target_below_actor { "yes" } else { "no" },
        );
    }
    out
}

#[cfg(test)]
mod tests;
