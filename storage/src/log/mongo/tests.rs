//! Checks that the MongoDB store's unread query is the engine's unread rule: the filter is
//! evaluated (equality and `$ne`, the only operators it uses) on the document
//! [`entry_document`] writes for each entry of a table, and must agree with
//! [`counts_as_unread`] on every one.

use mongodb::bson::{Bson, Document};
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{DeleteMode, Deletion, Message, MessageState};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::time::Timestamp;
use switchboard_engine::unread::counts_as_unread;

use super::{entry_document, unread_filter};

const BASE_MILLIS: u64 = 1_700_000_000_000;

fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

fn message(sender: &str, deleted: bool) -> LogEntry {
    let state = MessageState {
        deleted: deleted.then(|| Deletion {
            mode: DeleteMode::ForEveryone,
            deleted_by: user(sender),
            deleted_at: Timestamp(BASE_MILLIS + 2),
        }),
        ..MessageState::default()
    };
    LogEntry::Message(Message {
        conversation_id: ConversationId::from_parts(BASE_MILLIS, 1),
        seq: Seq(3),
        message_id: MessageId::from_parts(BASE_MILLIS, 7),
        sender_id: user(sender),
        client_id: ClientId::parse("c1").expect("valid client id"),
        text: String::new(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(BASE_MILLIS + 1),
        state,
        attachments: Vec::new(),
    })
}

fn event(actor: &str) -> LogEntry {
    LogEntry::Event(ConversationEvent {
        conversation_id: ConversationId::from_parts(BASE_MILLIS, 1),
        seq: Seq(4),
        event_id: MessageId::from_parts(BASE_MILLIS, 8),
        actor_id: user(actor),
        client_id: ClientId::parse("c2").expect("valid client id"),
        ts: Timestamp(BASE_MILLIS + 3),
        body: ConversationEventBody::MessageDeleted {
            message_id: MessageId::from_parts(BASE_MILLIS, 7),
            mode: DeleteMode::ForEveryone,
        },
    })
}

/// Whether `document` matches `filter`, for filters of plain equalities and `{"$ne": value}`.
fn matches(filter: &Document, document: &Document) -> bool {
    filter.iter().all(|(field, condition)| {
        let value = document.get(field);
        match condition {
            Bson::Document(operator) => {
                operator.iter().all(|(name, operand)| match name.as_str() {
                    "$ne" => value != Some(operand),
                    other => {
                        panic!("the unread filter uses {other}, which this check does not know")
                    }
                })
            }
            equal => value == Some(equal),
        }
    })
}

#[test]
fn the_unread_filter_agrees_with_the_engine_rule() {
    let tenant_id = TenantId::parse("acme").expect("valid tenant id");
    let reader = user("bob");
    let cases = [
        ("a message from someone else", message("alice", false)),
        ("the reader's own message", message("bob", false)),
        (
            "a deleted message from someone else",
            message("alice", true),
        ),
        ("the reader's own deleted message", message("bob", true)),
        ("an event by someone else", event("alice")),
        ("an event by the reader", event("bob")),
    ];
    for (name, entry) in cases {
        let document = entry_document(&tenant_id, &entry).expect("entries encode");
        assert_eq!(
            matches(&unread_filter(&reader), &document),
            counts_as_unread(&entry, &reader),
            "{name}"
        );
    }
}
