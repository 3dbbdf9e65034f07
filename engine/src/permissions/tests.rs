//! The permission matrix as a table: every action, every kind, every actor role (and, for
//! targeted actions, every target role), with the verdict; plus the rendered matrix, which must
//! equal `docs/PERMISSIONS.md`.

use expect_test::expect;

use super::*;

const ROLES: [Role; 4] = [Owner, Admin, Moderator, Member];
const KINDS: [ConversationKind; 3] = [
    ConversationKind::Group,
    ConversationKind::Channel,
    ConversationKind::Direct,
];

fn verdict(result: Result<()>) -> char {
    if result.is_ok() { 'y' } else { '-' }
}

#[test]
fn untargeted_actions_by_kind_and_role() {
    let mut out = String::from("action: group(o a m u) channel(o a m u) direct(o a m u)\n");
    for action in Action::ALL {
        if rule(action).target_below_actor {
            continue;
        }
        out.push_str(action.as_str());
        out.push(':');
        for kind in KINDS {
            out.push(' ');
            for role in ROLES {
                out.push(verdict(check(kind, role, action, None, None)));
            }
        }
        out.push('\n');
    }
    expect![[r#"
        action: group(o a m u) channel(o a m u) direct(o a m u)
        post: yyyy yyy- yyyy
        react: yyyy yyyy yyyy
        update conversation: yy-- yy-- ----
        archive: y--- y--- ----
        add members: yy-- yy-- ----
        transfer ownership: y--- y--- ----
        delete others' messages: yyy- yyy- ----
        hard-delete a message: yy-- yy-- ----
        read the moderation log: yyy- yyy- ----
        leave: -yyy -yyy ----
    "#]]
    .assert_eq(&out);
}

#[test]
fn targeted_actions_in_a_group_by_actor_and_target() {
    let mut out = String::from("actor -> target (o a m u)\n");
    for action in [Action::RemoveMember, Action::Moderate] {
        out.push_str(action.as_str());
        out.push('\n');
        for actor in ROLES {
            out.push_str(&format!("  {:<9}", actor.as_str()));
            for target in ROLES {
                out.push(verdict(check(
                    ConversationKind::Group,
                    actor,
                    action,
                    Some(target),
                    None,
                )));
            }
            out.push('\n');
        }
    }
    expect![[r#"
        actor -> target (o a m u)
        remove a member
          owner    -yyy
          admin    --yy
          moderator----
          member   ----
        kick, ban, mute
          owner    -yyy
          admin    --yy
          moderator---y
          member   ----
    "#]]
    .assert_eq(&out);
}

#[test]
fn role_changes_by_actor_target_and_new_role() {
    let mut out = String::from("actor: target->new role ...\n");
    for actor in ROLES {
        out.push_str(&format!("{}:", actor.as_str()));
        for target in ROLES {
            for new_role in ROLES {
                if target == new_role {
                    continue;
                }
                if check(
                    ConversationKind::Group,
                    actor,
                    Action::ChangeRole,
                    Some(target),
                    Some(new_role),
                )
                .is_ok()
                {
                    out.push_str(&format!(" {}->{}", target.as_str(), new_role.as_str()));
                }
            }
        }
        out.push('\n');
    }
    expect![[r#"
        actor: target->new role ...
        owner: admin->moderator admin->member moderator->admin moderator->member member->admin member->moderator
        admin: moderator->member member->moderator
        moderator:
        member:
    "#]]
    .assert_eq(&out);
}

#[test]
fn the_documented_matrix_is_this_one() {
    let document = include_str!("../../../docs/PERMISSIONS.md");
    assert!(
        document.contains(&render_matrix()),
        "docs/PERMISSIONS.md must contain the rendered matrix exactly:\n{}",
        render_matrix()
    );
}
