//! Tables for changes to a conversation: who may make which change, what each records, what
//! applying it does, and bans and mutes ending on their own as time passes.

use expect_test::{Expect, expect};

use super::*;
use crate::ids::{ClientId, ConversationId, MessageId};
use crate::model::ConversationKind;
use crate::operations::ConversationEvent;
use crate::test_fixtures::{conversation_with, user};

fn group() -> ConversationSnapshot {
    conversation_with(
        ConversationKind::Group,
        Some("team"),
        "olivia",
        &[
            ("adam", Role::Admin),
            ("mia", Role::Member),
            ("mo", Role::Moderator),
            ("olivia", Role::Owner),
        ],
    )
}

fn recorded(actor: &str, body: ConversationEventBody, ts: u64) -> ConversationEvent {
    ConversationEvent {
        conversation_id: ConversationId::from_parts(1, 1),
        seq: crate::ids::Seq(1),
        event_id: MessageId::from_parts(ts, 1),
        actor_id: user(actor),
        client_id: ClientId::parse("c").expect("valid client id"),
        ts: Timestamp(ts),
        body,
    }
}

/// Tries each change as each actor at `now`; renders `ok <event>` or `err <error>`.
fn check(
    snapshot: &ConversationSnapshot,
    cases: &[(&str, ConversationChange)],
    now: u64,
    expect: Expect,
) {
    let mut rendered = String::new();
    for (actor, change) in cases {
        let verdict = authorize_change(snapshot, &user(actor), change.clone(), Timestamp(now), 5);
        match verdict {
            Ok(body) => rendered.push_str(&format!("{actor}: ok {body:?}\n")),
            Err(error) => rendered.push_str(&format!("{actor}: err {error}\n")),
        }
    }
    expect.assert_eq(&rendered);
}

fn add(names: &[&str]) -> ConversationChange {
    ConversationChange::AddMembers {
        user_ids: names.iter().map(|name| user(name)).collect(),
    }
}

fn moderate(
    action: ModerationAction,
    target: &str,
    duration_ms: Option<u64>,
) -> ConversationChange {
    ConversationChange::Moderate {
        action,
        user_id: user(target),
        duration_ms,
        reason: Some("spam".to_owned()),
    }
}

#[test]
fn membership_changes_by_actor() {
    check(
        &group(),
        &[
            ("mia", add(&["zed"])),
            ("adam", add(&["zed", "mia", "zed"])),
            ("adam", add(&["mia"])),
            ("adam", add(&["z1", "z2"])),
            ("stranger", add(&["zed"])),
            (
                "mia",
                ConversationChange::RemoveMember {
                    user_id: user("mo"),
                },
            ),
            (
                "adam",
                ConversationChange::RemoveMember {
                    user_id: user("mo"),
                },
            ),
            (
                "mo",
                ConversationChange::RemoveMember {
                    user_id: user("adam"),
                },
            ),
            (
                "adam",
                ConversationChange::RemoveMember {
                    user_id: user("zed"),
                },
            ),
            (
                "adam",
                ConversationChange::RemoveMember {
                    user_id: user("adam"),
                },
            ),
            ("mia", ConversationChange::Leave),
            ("olivia", ConversationChange::Leave),
        ],
        0,
        expect![[r#"
            mia: err forbidden: your role may not add members here
            adam: ok MembersAdded { members: [Member { user_id: UserId("zed"), role: Member, joined_at: Timestamp(0) }] }
            adam: err conflict: every user named is a member already
            adam: err members is too large: 6, the limit is 5
            stranger: err not a member of this conversation
            mia: err forbidden: your role may not remove members here
            adam: ok MemberLeft { user_id: UserId("mo"), reason: Removed }
            mo: err forbidden: your role may not remove members here
            adam: err conflict: zed is not a member
            adam: err invalid user_id: use leave to leave yourself
            mia: ok MemberLeft { user_id: UserId("mia"), reason: Left }
            olivia: err forbidden: this member may not leave (the owner must transfer ownership first)
        "#]],
    );
}

#[test]
fn role_and_ownership_changes_by_actor() {
    check(
        &group(),
        &[
            (
                "adam",
                ConversationChange::ChangeRole {
                    user_id: user("mia"),
                    role: Role::Moderator,
                },
            ),
            (
                "adam",
                ConversationChange::ChangeRole {
                    user_id: user("mia"),
                    role: Role::Admin,
                },
            ),
            (
                "adam",
                ConversationChange::ChangeRole {
                    user_id: user("mia"),
                    role: Role::Member,
                },
            ),
            (
                "olivia",
                ConversationChange::ChangeRole {
                    user_id: user("adam"),
                    role: Role::Member,
                },
            ),
            (
                "olivia",
                ConversationChange::ChangeRole {
                    user_id: user("adam"),
                    role: Role::Owner,
                },
            ),
            (
                "mo",
                ConversationChange::ChangeRole {
                    user_id: user("mia"),
                    role: Role::Moderator,
                },
            ),
            (
                "adam",
                ConversationChange::TransferOwnership {
                    user_id: user("mia"),
                },
            ),
            (
                "olivia",
                ConversationChange::TransferOwnership {
                    user_id: user("mia"),
                },
            ),
            (
                "olivia",
                ConversationChange::TransferOwnership {
                    user_id: user("zed"),
                },
            ),
        ],
        0,
        expect![[r#"
            adam: ok RoleChanged { user_id: UserId("mia"), role: Moderator }
            adam: err forbidden: you may only give roles below your own
            adam: err conflict: mia already has that role
            olivia: ok RoleChanged { user_id: UserId("adam"), role: Member }
            olivia: err invalid role: ownership is handed over with transfer_ownership
            mo: err forbidden: your role may not change roles here
            adam: err forbidden: only the owner may transfer ownership
            olivia: ok OwnerChanged { previous_owner: UserId("olivia"), owner: UserId("mia") }
            olivia: err conflict: zed is not a member
        "#]],
    );
}

#[test]
fn profile_and_archive_changes_by_actor() {
    let update = |title: Patch<String>, avatar: Patch<String>| ConversationChange::Update {
        title,
        description: Patch::Set("what we do".to_owned()),
        avatar_url: avatar,
    };
    check(
        &group(),
        &[
            ("mia", update(Patch::Set("x".to_owned()), Patch::Keep)),
            (
                "adam",
                update(Patch::Set("renamed".to_owned()), Patch::Keep),
            ),
            (
                "adam",
                update(
                    Patch::Clear,
                    Patch::Set("https://example.com/a.png".to_owned()),
                ),
            ),
            (
                "adam",
                update(
                    Patch::Keep,
                    Patch::Set("http://example.com/a.png".to_owned()),
                ),
            ),
            ("adam", update(Patch::Set("  ".to_owned()), Patch::Keep)),
            ("adam", ConversationChange::Archive { archived: true }),
            ("olivia", ConversationChange::Archive { archived: true }),
            ("olivia", ConversationChange::Archive { archived: false }),
        ],
        0,
        expect![[r#"
            mia: err forbidden: your role may not change this conversation
            adam: ok ConversationUpdated { title: Some("renamed"), description: Some("what we do"), avatar_url: None }
            adam: ok ConversationUpdated { title: None, description: Some("what we do"), avatar_url: Some("https://example.com/a.png") }
            adam: err invalid avatar_url: must be an https:// URL
            adam: err invalid title: must not be blank when present
            adam: err forbidden: only the owner may archive this conversation
            olivia: ok ConversationArchived { archived: true }
            olivia: err conflict: the conversation is not archived
        "#]],
    );
}

#[test]
fn moderation_by_actor() {
    check(
        &group(),
        &[
            ("mia", moderate(ModerationAction::Kick, "mo", None)),
            ("mo", moderate(ModerationAction::Kick, "mia", None)),
            ("mo", moderate(ModerationAction::Kick, "adam", None)),
            ("mo", moderate(ModerationAction::Kick, "mia", Some(1000))),
            ("mo", moderate(ModerationAction::Ban, "mia", Some(60_000))),
            ("mo", moderate(ModerationAction::Ban, "zed", None)),
            ("mo", moderate(ModerationAction::Mute, "zed", None)),
            ("mo", moderate(ModerationAction::Mute, "mia", Some(0))),
            ("mo", moderate(ModerationAction::Unban, "mia", None)),
            ("mo", moderate(ModerationAction::Unmute, "mia", None)),
            ("mo", moderate(ModerationAction::Mute, "mo", None)),
        ],
        1000,
        expect![[r#"
            mia: err forbidden: your role may not moderate here
            mo: ok Moderated { action: Kick, user_id: UserId("mia"), until: None, reason: Some("spam") }
            mo: err forbidden: the target's role is not below yours
            mo: err invalid duration_ms: only bans and mutes take a duration
            mo: ok Moderated { action: Ban, user_id: UserId("mia"), until: Some(Timestamp(61000)), reason: Some("spam") }
            mo: ok Moderated { action: Ban, user_id: UserId("zed"), until: None, reason: Some("spam") }
            mo: err conflict: zed is not a member
            mo: err invalid duration_ms: must be at least 1
            mo: err conflict: mia is not banned
            mo: err conflict: mia is not muted
            mo: err invalid user_id: you cannot moderate yourself
        "#]],
    );
}

#[test]
fn an_archived_conversation_only_takes_unarchiving() {
    let mut snapshot = group();
    snapshot.conversation.archived = true;
    check(
        &snapshot,
        &[
            ("adam", add(&["zed"])),
            ("olivia", ConversationChange::Archive { archived: false }),
        ],
        0,
        expect![[r#"
            adam: err conflict: the conversation is archived; unarchive it first
            olivia: ok ConversationArchived { archived: false }
        "#]],
    );
}

/// Applies `(actor, change)` at each time in order, then renders the members, bans and mutes,
/// and what is in force at `probe`.
fn run(steps: &[(&str, ConversationChange, u64)], probe: u64) -> String {
    let mut snapshot = group();
    for (actor, change, at) in steps {
        let body = authorize_change(&snapshot, &user(actor), change.clone(), Timestamp(*at), 10)
            .expect("the change is allowed");
        apply_change(&mut snapshot, &recorded(actor, body, *at));
    }
    let members: Vec<String> = snapshot
        .members
        .iter()
        .map(|member| format!("{}:{}", member.user_id, member.role.as_str()))
        .collect();
    let conversation = &snapshot.conversation;
    let restricted = |list: &[Restriction]| -> Vec<String> {
        list.iter()
            .map(|restriction| format!("{}<{:?}", restriction.user_id, restriction.until))
            .collect()
    };
    format!(
        "members {members:?}\nbans {:?}\nmutes {:?}\nat {probe}: mia banned {} muted {}",
        restricted(&conversation.bans),
        restricted(&conversation.mutes),
        conversation
            .ban_at(&user("mia"), Timestamp(probe))
            .is_some(),
        conversation
            .mute_at(&user("mia"), Timestamp(probe))
            .is_some(),
    )
}

#[test]
fn applying_changes() {
    expect![[r#"
        members ["adam:owner", "mia:member", "mo:moderator", "olivia:admin"]
        bans []
        mutes []
        at 5: mia banned false muted false"#]]
    .assert_eq(&run(
        &[
            ("adam", add(&["zed", "yan"]), 1),
            (
                "olivia",
                ConversationChange::ChangeRole {
                    user_id: user("zed"),
                    role: Role::Admin,
                },
                2,
            ),
            (
                "olivia",
                ConversationChange::TransferOwnership {
                    user_id: user("adam"),
                },
                3,
            ),
            (
                "adam",
                ConversationChange::RemoveMember {
                    user_id: user("yan"),
                },
                4,
            ),
            ("adam", moderate(ModerationAction::Kick, "zed", None), 5),
        ],
        5,
    ));
}

#[test]
fn bans_and_mutes_end_on_their_own() {
    let steps = [
        (
            "mo",
            moderate(ModerationAction::Mute, "mia", Some(1000)),
            10,
        ),
        ("mo", moderate(ModerationAction::Ban, "mia", Some(5000)), 20),
    ];
    // Just before each ends, and just after.
    expect![[r#"
        members ["adam:admin", "mo:moderator", "olivia:owner"]
        bans ["mia<Some(Timestamp(5020))"]
        mutes ["mia<Some(Timestamp(1010))"]
        at 1009: mia banned true muted true"#]]
    .assert_eq(&run(&steps, 1009));
    expect![[r#"
        members ["adam:admin", "mo:moderator", "olivia:owner"]
        bans ["mia<Some(Timestamp(5020))"]
        mutes ["mia<Some(Timestamp(1010))"]
        at 1010: mia banned true muted false"#]]
    .assert_eq(&run(&steps, 1010));
    expect![[r#"
        members ["adam:admin", "mo:moderator", "olivia:owner"]
        bans ["mia<Some(Timestamp(5020))"]
        mutes ["mia<Some(Timestamp(1010))"]
        at 5019: mia banned true muted false"#]]
    .assert_eq(&run(&steps, 5019));
    expect![[r#"
        members ["adam:admin", "mo:moderator", "olivia:owner"]
        bans ["mia<Some(Timestamp(5020))"]
        mutes ["mia<Some(Timestamp(1010))"]
        at 5020: mia banned false muted false"#]]
    .assert_eq(&run(&steps, 5020));

    // A banned user cannot be added back until the ban ends; then they can.
    let mut snapshot = group();
    let ban = authorize_change(
        &snapshot,
        &user("mo"),
        moderate(ModerationAction::Ban, "mia", Some(5000)),
        Timestamp(20),
        10,
    )
    .expect("mo may ban mia");
    apply_change(&mut snapshot, &recorded("mo", ban, 20));
    assert_eq!(
        authorize_change(&snapshot, &user("adam"), add(&["mia"]), Timestamp(5019), 10),
        Err(Error::Forbidden {
            reason: "a user named is banned from this conversation".into()
        })
    );
    assert!(authorize_change(&snapshot, &user("adam"), add(&["mia"]), Timestamp(5020), 10).is_ok());
    // An unban is refused once the ban has ended by itself: there is nothing to lift.
    assert!(matches!(
        authorize_change(
            &snapshot,
            &user("mo"),
            moderate(ModerationAction::Unban, "mia", None),
            Timestamp(5020),
            10
        ),
        Err(Error::Conflict { .. })
    ));
    // Ended restrictions are dropped the next time the conversation changes.
    let later = authorize_change(
        &snapshot,
        &user("olivia"),
        ConversationChange::Archive { archived: true },
        Timestamp(6000),
        10,
    )
    .expect("the owner may archive");
    apply_change(&mut snapshot, &recorded("olivia", later, 6000));
    assert!(snapshot.conversation.bans.is_empty());
}

#[test]
fn removed_users_are_those_who_leave_or_are_kicked_or_banned() {
    let cases = [
        (
            ConversationEventBody::MemberLeft {
                user_id: user("mia"),
                reason: LeaveReason::Left,
            },
            vec!["mia"],
        ),
        (
            ConversationEventBody::Moderated {
                action: ModerationAction::Ban,
                user_id: user("mia"),
                until: None,
                reason: None,
            },
            vec!["mia"],
        ),
        (
            ConversationEventBody::Moderated {
                action: ModerationAction::Mute,
                user_id: user("mia"),
                until: None,
                reason: None,
            },
            vec![],
        ),
        (
            ConversationEventBody::RoleChanged {
                user_id: user("mia"),
                role: Role::Admin,
            },
            vec![],
        ),
    ];
    for (body, expected) in cases {
        let event = recorded("mo", body, 1);
        let removed: Vec<&str> = removed_users(&event)
            .into_iter()
            .map(UserId::as_str)
            .collect();
        assert_eq!(removed, expected, "{:?}", event.body);
    }
}
