//! Tests for what repeats a request: each stored entry against requests that reuse its key,
//! rendered as one table of verdicts.

use expect_test::{Expect, expect};

use super::*;
use crate::ids::{ClientId, Seq, UserId};
use crate::model::{Deletion, EditVersion, ForwardedFrom, MessageState};
use crate::operations::ConversationEvent;
use crate::time::Timestamp;

fn message_id(number: u128) -> MessageId {
    MessageId::from_parts(1, number)
}

fn emoji(text: &str) -> Emoji {
    Emoji::parse(text).expect("valid emoji")
}

fn new_message(text: &str, reply_to: Option<MessageId>) -> NewMessage {
    NewMessage {
        client_id: ClientId::parse("K").expect("valid client id"),
        text: text.to_owned(),
        reply_to,
        thread_root: None,
        forwarded_from: None,
        attachments: Vec::new(),
    }
}

fn forward_of(original: MessageId, text: &str) -> NewMessage {
    NewMessage {
        forwarded_from: Some(Box::new(ForwardedFrom {
            conversation_id: ConversationId::from_parts(9, 9),
            message_id: original,
            sender_id: UserId::parse("carol").expect("valid user"),
        })),
        ..new_message(text, None)
    }
}

/// The message `new_message` produces, in the state `state`.
fn stored_message(new_message: NewMessage, text: &str, state: MessageState) -> LogEntry {
    LogEntry::Message(Message {
        conversation_id: ConversationId::from_parts(1, 1),
        seq: Seq(1),
        message_id: message_id(7),
        sender_id: UserId::parse("alice").expect("valid user"),
        client_id: new_message.client_id,
        text: text.to_owned(),
        reply_to: new_message.reply_to,
        thread_root: new_message.thread_root,
        forwarded_from: new_message.forwarded_from.map(|origin| *origin),
        ts: Timestamp(1),
        state,
        attachments: Vec::new(),
    })
}

fn stored_event(body: ConversationEventBody) -> LogEntry {
    LogEntry::Event(ConversationEvent::new(
        ConversationId::from_parts(1, 1),
        message_id(8),
        UserId::parse("alice").expect("valid user"),
        ClientId::parse("K").expect("valid client id"),
        Timestamp(2),
        body,
    ))
}

fn edited_once(original: &str) -> MessageState {
    MessageState {
        edited_at: Some(Timestamp(5)),
        previous_versions: vec![EditVersion {
            text: original.to_owned(),
            replaced_at: Timestamp(5),
            replaced_by_seq: Seq(2),
        }],
        ..MessageState::default()
    }
}

fn deleted(mode: DeleteMode, state: MessageState) -> MessageState {
    MessageState {
        deleted: Some(Deletion {
            mode,
            deleted_by: UserId::parse("alice").expect("valid user"),
            deleted_at: Timestamp(9),
        }),
        ..state
    }
}

fn check(stored: &[(&str, LogEntry)], requests: &[(&str, RequestShape<'_>)], expect: Expect) {
    let mut table = String::new();
    for (stored_name, stored_entry) in stored {
        let stored_shape = RequestShape::of_entry(stored_entry);
        table.push_str(&format!("{stored_name}:"));
        for (request_name, request) in requests {
            let verdict = if request.repeats(&stored_shape) {
                "retry"
            } else {
                "conflict"
            };
            table.push_str(&format!(" {request_name}={verdict}"));
        }
        table.push('\n');
    }
    expect.assert_eq(&table);
}

#[test]
fn a_send_is_repeated_by_the_same_text_and_references_even_after_edits() {
    let hello = new_message("hello", None);
    let hello_reply = new_message("hello", Some(message_id(3)));
    let other = new_message("other", None);
    let forward = forward_of(message_id(4), "forwarded text");
    let edit = MessageOperation::Edit {
        message_id: message_id(7),
        text: "hello".to_owned(),
    };
    let requests = [
        ("hello", RequestShape::of_new_message(&hello)),
        ("hello-reply", RequestShape::of_new_message(&hello_reply)),
        ("other", RequestShape::of_new_message(&other)),
        ("forward", RequestShape::of_new_message(&forward)),
        ("edit", RequestShape::of_operation(&edit)),
        ("change", RequestShape::Unchecked),
    ];
    let stored = [
        (
            "sent",
            stored_message(new_message("hello", None), "hello", MessageState::default()),
        ),
        (
            "edited",
            stored_message(new_message("hello", None), "edited", edited_once("hello")),
        ),
        (
            "deleted-after-edit",
            stored_message(
                new_message("hello", None),
                "",
                deleted(DeleteMode::ForEveryone, edited_once("hello")),
            ),
        ),
        (
            "deleted",
            stored_message(
                new_message("hello", None),
                "",
                deleted(DeleteMode::ForEveryone, MessageState::default()),
            ),
        ),
        (
            "hard-deleted",
            stored_message(
                new_message("hello", None),
                "",
                deleted(DeleteMode::Hard, MessageState::default()),
            ),
        ),
        (
            "forwarded",
            stored_message(
                forward_of(message_id(4), "text then"),
                "text then",
                MessageState::default(),
            ),
        ),
    ];
    check(
        &stored,
        &requests,
        expect![[r#"
            sent: hello=retry hello-reply=conflict other=conflict forward=conflict edit=conflict change=conflict
            edited: hello=retry hello-reply=conflict other=conflict forward=conflict edit=conflict change=conflict
            deleted-after-edit: hello=retry hello-reply=conflict other=conflict forward=conflict edit=conflict change=conflict
            deleted: hello=retry hello-reply=conflict other=retry forward=conflict edit=conflict change=conflict
            hard-deleted: hello=retry hello-reply=conflict other=retry forward=conflict edit=conflict change=conflict
            forwarded: hello=conflict hello-reply=conflict other=conflict forward=retry edit=conflict change=conflict
        "#]],
    );
}

#[test]
fn an_operation_is_repeated_by_the_same_target_and_arguments() {
    let target = message_id(7);
    let operations = [
        (
            "edit-a",
            MessageOperation::Edit {
                message_id: target,
                text: "a".to_owned(),
            },
        ),
        (
            "edit-b",
            MessageOperation::Edit {
                message_id: target,
                text: "b".to_owned(),
            },
        ),
        (
            "delete",
            MessageOperation::Delete {
                message_id: target,
                mode: DeleteMode::ForEveryone,
            },
        ),
        (
            "hard",
            MessageOperation::Delete {
                message_id: target,
                mode: DeleteMode::Hard,
            },
        ),
        (
            "react",
            MessageOperation::React {
                message_id: target,
                emoji: emoji("👍"),
            },
        ),
        (
            "react-other",
            MessageOperation::React {
                message_id: message_id(6),
                emoji: emoji("👍"),
            },
        ),
        (
            "unreact",
            MessageOperation::Unreact {
                message_id: target,
                emoji: emoji("👍"),
            },
        ),
    ];
    let requests: Vec<(&str, RequestShape<'_>)> = operations
        .iter()
        .map(|(name, operation)| (*name, RequestShape::of_operation(operation)))
        .collect();
    let stored = [
        (
            "edited-a",
            stored_event(ConversationEventBody::MessageEdited {
                message_id: target,
                text: Some("a".to_owned()),
            }),
        ),
        (
            "edit-scrubbed",
            stored_event(ConversationEventBody::MessageEdited {
                message_id: target,
                text: None,
            }),
        ),
        (
            "deleted",
            stored_event(ConversationEventBody::MessageDeleted {
                message_id: target,
                mode: DeleteMode::ForEveryone,
            }),
        ),
        (
            "reacted",
            stored_event(ConversationEventBody::ReactionAdded {
                message_id: target,
                emoji: emoji("👍"),
                count: 3,
            }),
        ),
        (
            "unreacted",
            stored_event(ConversationEventBody::ReactionRemoved {
                message_id: target,
                emoji: emoji("👍"),
                count: 0,
            }),
        ),
        (
            "archived",
            stored_event(ConversationEventBody::ConversationArchived { archived: true }),
        ),
    ];
    check(
        &stored,
        &requests,
        expect![[r#"
            edited-a: edit-a=retry edit-b=conflict delete=conflict hard=conflict react=conflict react-other=conflict unreact=conflict
            edit-scrubbed: edit-a=retry edit-b=retry delete=conflict hard=conflict react=conflict react-other=conflict unreact=conflict
            deleted: edit-a=conflict edit-b=conflict delete=retry hard=conflict react=conflict react-other=conflict unreact=conflict
            reacted: edit-a=conflict edit-b=conflict delete=conflict hard=conflict react=retry react-other=conflict unreact=conflict
            unreacted: edit-a=conflict edit-b=conflict delete=conflict hard=conflict react=conflict react-other=conflict unreact=retry
            archived: edit-a=conflict edit-b=conflict delete=conflict hard=conflict react=conflict react-other=conflict unreact=conflict
        "#]],
    );
}

#[test]
fn a_request_and_the_entry_it_produces_have_one_fingerprint() {
    let hello = new_message("hello", None);
    let entry = stored_message(hello.clone(), "hello", MessageState::default());
    assert_eq!(
        RequestShape::of_new_message(&hello).fingerprint(),
        RequestShape::of_entry(&entry).fingerprint()
    );
    let other = new_message("hello!", None);
    assert!(
        RequestShape::of_new_message(&other)
            .fingerprint()
            .check_repeat(RequestShape::of_entry(&entry).fingerprint())
            .is_err()
    );
    let edit = MessageOperation::Edit {
        message_id: message_id(7),
        text: "a".to_owned(),
    };
    let event = stored_event(ConversationEventBody::MessageEdited {
        message_id: message_id(7),
        text: Some("a".to_owned()),
    });
    assert_eq!(
        RequestShape::of_operation(&edit).fingerprint(),
        RequestShape::of_entry(&event).fingerprint()
    );
}
