//! Tests for applying events to messages and for who may operate on a message: each case with
//! the exact outcome a client would see.

use expect_test::{Expect, expect};

use super::*;
use crate::model::MessageState;
use crate::test_fixtures::user;

fn emoji(text: &str) -> Emoji {
    Emoji::parse(text).expect("valid emoji")
}

const MINUTE: u64 = 60 * 1000;

fn message(sender: &str) -> Message {
    Message {
        conversation_id: ConversationId::from_parts(1, 1),
        seq: Seq(1),
        message_id: MessageId::from_parts(1, 1),
        sender_id: user(sender),
        client_id: ClientId::parse("c1").expect("valid client id"),
        text: "original".to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(0),
        state: MessageState::default(),
        attachments: Vec::new(),
    }
}

fn event(actor: &str, seq: u64, operation: MessageOperation) -> ConversationEvent {
    let mut event = ConversationEvent::from_operation(
        ConversationId::from_parts(1, 1),
        MessageId::from_parts(2, u128::from(seq)),
        user(actor),
        NewOperation {
            client_id: ClientId::parse(&format!("op{seq}")).expect("valid client id"),
            operation,
        },
        Timestamp(seq * 1000),
    );
    event.seq = Seq(seq);
    event
}

fn edit(text: &str) -> MessageOperation {
    MessageOperation::Edit {
        message_id: MessageId::from_parts(1, 1),
        text: text.to_owned(),
    }
}

fn delete(mode: DeleteMode) -> MessageOperation {
    MessageOperation::Delete {
        message_id: MessageId::from_parts(1, 1),
        mode,
    }
}

fn react(text: &str) -> MessageOperation {
    MessageOperation::React {
        message_id: MessageId::from_parts(1, 1),
        emoji: emoji(text),
    }
}

fn unreact(text: &str) -> MessageOperation {
    MessageOperation::Unreact {
        message_id: MessageId::from_parts(1, 1),
        emoji: emoji(text),
    }
}

/// Applies a sequence of (actor, operation) to one message and renders each outcome and the
/// final state.
fn check_sequence(steps: Vec<(&str, MessageOperation)>, expect: Expect) {
    let mut target = message("alice");
    let mut rendered = String::new();
    for (index, (actor, operation)) in steps.into_iter().enumerate() {
        let mut event = event(actor, index as u64 + 2, operation);
        let outcome = match apply_event(&mut target, &mut event) {
            Ok(effects) => format!("ok {:?} scrub {:?}", event.body, effects.scrub_edit_seqs),
            Err(error) => format!("err {error}"),
        };
        rendered.push_str(&outcome);
        rendered.push('\n');
    }
    let reactions: Vec<String> = target
        .state
        .reactions
        .iter()
        .map(|reaction| format!("{}={}", reaction.emoji, reaction.user_ids.len()))
        .collect();
    rendered.push_str(&format!(
        "text {:?} edited_at {:?} deleted {:?} reactions {reactions:?} versions {:?}",
        target.text,
        target.state.edited_at,
        target.state.deleted.as_ref().map(|deletion| deletion.mode),
        target
            .state
            .previous_versions
            .iter()
            .map(|version| (&version.text, version.replaced_by_seq.get()))
            .collect::<Vec<_>>(),
    ));
    expect.assert_eq(&rendered);
}

#[test]
fn edits_keep_history_and_deletes_scrub_it() {
    check_sequence(
        vec![
            ("alice", edit("second")),
            ("alice", edit("third")),
            ("mod", delete(DeleteMode::ForEveryone)),
            ("alice", edit("after delete")),
            ("mod", delete(DeleteMode::ForEveryone)),
        ],
        expect![[r#"
            ok MessageEdited { message_id: MessageId(00000000010000000000000001), text: Some("second") } scrub []
            ok MessageEdited { message_id: MessageId(00000000010000000000000001), text: Some("third") } scrub []
            ok MessageDeleted { message_id: MessageId(00000000010000000000000001), mode: ForEveryone } scrub [Seq(2), Seq(3)]
            err conflict: the message was deleted
            err conflict: the message is already deleted
            text "" edited_at Some(Timestamp(3000)) deleted Some(ForEveryone) reactions [] versions [("original", 2), ("second", 3)]"#]],
    );
}

#[test]
fn hard_delete_purges_history_even_after_a_tombstone() {
    check_sequence(
        vec![
            ("alice", edit("second")),
            ("mod", delete(DeleteMode::ForEveryone)),
            ("admin", delete(DeleteMode::Hard)),
            ("admin", delete(DeleteMode::Hard)),
        ],
        expect![[r#"
            ok MessageEdited { message_id: MessageId(00000000010000000000000001), text: Some("second") } scrub []
            ok MessageDeleted { message_id: MessageId(00000000010000000000000001), mode: ForEveryone } scrub [Seq(2)]
            ok MessageDeleted { message_id: MessageId(00000000010000000000000001), mode: Hard } scrub [Seq(2)]
            err conflict: the message is already deleted
            text "" edited_at Some(Timestamp(2000)) deleted Some(Hard) reactions [] versions []"#]],
    );
}

#[test]
fn reactions_are_one_per_user_per_emoji_and_carry_their_count() {
    check_sequence(
        vec![
            ("alice", react("👍")),
            ("bob", react("👍")),
            ("bob", react("👍")),
            ("bob", react(":tada:")),
            ("carol", unreact("👍")),
            ("alice", unreact("👍")),
            ("bob", unreact(":tada:")),
        ],
        expect![[r#"
            ok ReactionAdded { message_id: MessageId(00000000010000000000000001), emoji: Emoji("👍"), count: 1 } scrub []
            ok ReactionAdded { message_id: MessageId(00000000010000000000000001), emoji: Emoji("👍"), count: 2 } scrub []
            err conflict: you already reacted with this emoji
            ok ReactionAdded { message_id: MessageId(00000000010000000000000001), emoji: Emoji(":tada:"), count: 1 } scrub []
            err conflict: you have not reacted with this emoji
            ok ReactionRemoved { message_id: MessageId(00000000010000000000000001), emoji: Emoji("👍"), count: 1 } scrub []
            ok ReactionRemoved { message_id: MessageId(00000000010000000000000001), emoji: Emoji(":tada:"), count: 0 } scrub []
            text "original" edited_at None deleted None reactions ["👍=1"] versions []"#]],
    );
}

#[test]
fn a_deleted_message_takes_no_reactions_and_loses_its_own() {
    check_sequence(
        vec![
            ("bob", react("👍")),
            ("alice", delete(DeleteMode::ForEveryone)),
            ("bob", react("👍")),
            ("bob", unreact("👍")),
        ],
        expect![[r#"
            ok ReactionAdded { message_id: MessageId(00000000010000000000000001), emoji: Emoji("👍"), count: 1 } scrub []
            ok MessageDeleted { message_id: MessageId(00000000010000000000000001), mode: ForEveryone } scrub []
            err conflict: the message was deleted
            err conflict: you have not reacted with this emoji
            text "" edited_at None deleted Some(ForEveryone) reactions [] versions []"#]],
    );
}

#[test]
fn distinct_reactions_are_capped() {
    let mut target = message("alice");
    let names: Vec<String> = (0..=MAX_REACTIONS_PER_MESSAGE)
        .map(|index| format!(":r{index}:"))
        .collect();
    for (index, name) in names.iter().enumerate() {
        let mut event = event("bob", index as u64 + 2, react(name));
        let outcome = apply_event(&mut target, &mut event);
        if index < MAX_REACTIONS_PER_MESSAGE {
            assert!(outcome.is_ok(), "reaction {index} should be accepted");
        } else {
            assert_eq!(
                outcome.map(|_| ()),
                Err(Error::TooLarge {
                    what: "distinct reactions on the message".into(),
                    limit: MAX_REACTIONS_PER_MESSAGE,
                    actual: MAX_REACTIONS_PER_MESSAGE + 1,
                })
            );
        }
    }
    assert_eq!(target.state.reactions.len(), MAX_REACTIONS_PER_MESSAGE);
}

#[test]
fn scrubbing_removes_only_edited_text() {
    let mut edited = event("alice", 2, edit("secret"));
    scrub_edited_text(&mut edited);
    assert_eq!(
        edited.body,
        ConversationEventBody::MessageEdited {
            message_id: MessageId::from_parts(1, 1),
            text: None
        }
    );
    let mut reaction = event("alice", 3, react("👍"));
    let before = reaction.clone();
    scrub_edited_text(&mut reaction);
    assert_eq!(reaction, before);
}

#[test]
fn thread_replies_count_on_their_root_and_do_not_nest() {
    let mut root = message("alice");
    let mut reply = message("bob");
    reply.ts = Timestamp(5000);
    reply.thread_root = Some(root.message_id);
    assert_eq!(apply_thread_reply(&mut root, &mut reply), Ok(()));
    assert_eq!(reply.state.thread_position, 1);
    assert_eq!(apply_thread_reply(&mut root, &mut reply), Ok(()));
    assert_eq!(reply.state.thread_position, 2);
    assert_eq!(root.state.thread_reply_count, 2);
    assert_eq!(root.state.thread_last_reply_at, Some(Timestamp(5000)));

    let mut nested_root = reply.clone();
    assert_eq!(
        apply_thread_reply(&mut nested_root, &mut reply),
        Err(Error::invalid(
            "thread_root",
            "is a reply in a thread; threads do not nest"
        ))
    );

    root.state.deleted = Some(Deletion {
        mode: DeleteMode::ForEveryone,
        deleted_by: user("alice"),
        deleted_at: Timestamp(6000),
    });
    assert!(matches!(
        apply_thread_reply(&mut root, &mut reply),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(root.state.thread_reply_count, 2);
}

/// Renders who may do what to alice's message, sent at 0, at `now`.
fn check_authorization(kind: ConversationKind, now: Timestamp, expect: Expect) {
    let target = message("alice");
    let limits = MessageLimits::default();
    let operations = [
        ("edit", edit("new")),
        ("delete", delete(DeleteMode::ForEveryone)),
        ("hard", delete(DeleteMode::Hard)),
        ("react", react("👍")),
    ];
    let actors = [
        ("alice/member", "alice", Role::Member),
        ("bob/member", "bob", Role::Member),
        ("bob/moderator", "bob", Role::Moderator),
        ("bob/admin", "bob", Role::Admin),
    ];
    let mut rendered = String::new();
    for (actor_name, actor, role) in actors {
        let verdicts: Vec<String> = operations
            .iter()
            .map(|(name, operation)| {
                let verdict =
                    authorize_operation(kind, role, &user(actor), operation, &target, now, &limits);
                match verdict {
                    Ok(()) => format!("{name}:yes"),
                    Err(_) => format!("{name}:no"),
                }
            })
            .collect();
        rendered.push_str(&format!("{actor_name}: {}\n", verdicts.join(" ")));
    }
    expect.assert_eq(&rendered);
}

#[test]
fn who_may_operate_on_a_message() {
    check_authorization(
        ConversationKind::Group,
        Timestamp(MINUTE),
        expect![[r#"
            alice/member: edit:yes delete:yes hard:no react:yes
            bob/member: edit:no delete:no hard:no react:yes
            bob/moderator: edit:no delete:yes hard:no react:yes
            bob/admin: edit:no delete:yes hard:yes react:yes
        "#]],
    );
    // After the 15-minute window the author may neither edit nor delete; moderators still may.
    check_authorization(
        ConversationKind::Group,
        Timestamp(16 * MINUTE),
        expect![[r#"
            alice/member: edit:no delete:no hard:no react:yes
            bob/member: edit:no delete:no hard:no react:yes
            bob/moderator: edit:no delete:yes hard:no react:yes
            bob/admin: edit:no delete:yes hard:yes react:yes
        "#]],
    );
    // In a channel a plain member may not post, so may not edit either (a demoted author).
    check_authorization(
        ConversationKind::Channel,
        Timestamp(MINUTE),
        expect![[r#"
            alice/member: edit:no delete:yes hard:no react:yes
            bob/member: edit:no delete:no hard:no react:yes
            bob/moderator: edit:no delete:yes hard:no react:yes
            bob/admin: edit:no delete:yes hard:yes react:yes
        "#]],
    );
}

#[test]
fn refusals_say_why() {
    let target = message("alice");
    let limits = MessageLimits::default();
    let refusal = |actor: &str, operation: MessageOperation, now: u64| {
        authorize_operation(
            ConversationKind::Group,
            Role::Member,
            &user(actor),
            &operation,
            &target,
            Timestamp(now),
            &limits,
        )
        .map_err(|error| error.to_string())
    };
    assert_eq!(
        refusal("bob", edit("x"), 0),
        Err("forbidden: only the author may edit a message".to_owned())
    );
    assert_eq!(
        refusal("alice", edit("x"), 16 * MINUTE),
        Err("forbidden: the edit window of this message is over".to_owned())
    );
    assert_eq!(
        refusal("alice", edit("  "), 0),
        Err("invalid text: must not be empty".to_owned())
    );
    assert_eq!(
        refusal("alice", delete(DeleteMode::ForEveryone), 16 * MINUTE),
        Err(
            "forbidden: the delete window of your message is over; a moderator may still delete it"
                .to_owned()
        )
    );
    assert_eq!(
        refusal("bob", delete(DeleteMode::ForEveryone), 0),
        Err("forbidden: only the author or a moderator may delete this message".to_owned())
    );
}
