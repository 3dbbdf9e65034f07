//! Unit tests for the record encoding: round trips, and every malformed input is `Corrupt`.

use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MediaId, MessageId, Seq, UserId};
use switchboard_engine::media::{AttachedThumbnail, Attachment, Dimensions};
use switchboard_engine::model::{ForwardedFrom, Message, MessageState};
use switchboard_engine::operations::LogEntry;
use switchboard_engine::time::Timestamp;

use super::*;

fn sample_message() -> Message {
    Message {
        conversation_id: ConversationId::from_parts(1_700_000_000_000, 42),
        seq: Seq(7),
        message_id: MessageId::from_parts(1_700_000_000_001, 43),
        sender_id: UserId::parse("alice").expect("valid user id"),
        client_id: ClientId::parse("client-7").expect("valid client id"),
        text: "hello".to_owned(),
        reply_to: Some(MessageId::from_parts(1_700_000_000_000, 1)),
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(1_700_000_000_002),
        state: MessageState {
            edited_at: Some(Timestamp(1_700_000_000_003)),
            thread_reply_count: 2,
            ..MessageState::default()
        },
        attachments: Vec::new(),
    }
}

fn is_corrupt(result: Result<Message, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

#[test]
fn a_message_round_trips_behind_the_version_byte() {
    let message = sample_message();
    let bytes = encode(&message).expect("messages encode");
    assert_eq!(bytes.first(), Some(&FORMAT_VERSION));
    assert_eq!(decode::<Message>("messages", &bytes), Ok(message));
}

#[test]
fn a_seq_round_trips() {
    let bytes = encode(&Seq(300)).expect("seqs encode");
    assert_eq!(decode::<Seq>("client_ids", &bytes), Ok(Seq(300)));
}

#[test]
fn an_empty_value_is_corrupt() {
    assert!(is_corrupt(decode("messages", &[])));
}

#[test]
fn an_unknown_version_is_corrupt() {
    let mut bytes = encode(&sample_message()).expect("messages encode");
    bytes[0] = FORMAT_VERSION + 1;
    assert!(is_corrupt(decode("messages", &bytes)));
}

#[test]
fn a_truncated_value_is_corrupt() {
    let bytes = encode(&sample_message()).expect("messages encode");
    assert!(is_corrupt(decode("messages", &bytes[..bytes.len() - 3])));
}

#[test]
fn trailing_bytes_are_corrupt() {
    let mut bytes = encode(&sample_message()).expect("messages encode");
    bytes.push(0);
    assert!(is_corrupt(decode("messages", &bytes)));
}

#[test]
fn an_invalid_id_inside_a_record_is_corrupt() {
    // The sender id is validated on deserialize; a space is not allowed in user ids.
    let mut message = sample_message();
    message.text = String::new();
    let mut bytes = encode(&message).expect("messages encode");
    let sender_position = bytes
        .windows(5)
        .position(|window| window == b"alice")
        .expect("the sender id is in the encoding");
    bytes[sender_position] = b' ';
    assert!(is_corrupt(decode("messages", &bytes)));
}

/// A message as builds before attachments derived its layout, field for field.
#[derive(serde::Serialize)]
struct MessageBeforeAttachments<'a> {
    conversation_id: &'a ConversationId,
    seq: &'a Seq,
    message_id: &'a MessageId,
    sender_id: &'a UserId,
    client_id: &'a ClientId,
    text: &'a str,
    reply_to: &'a Option<MessageId>,
    thread_root: &'a Option<MessageId>,
    forwarded_from: &'a Option<ForwardedFrom>,
    ts: &'a Timestamp,
    state: &'a MessageState,
}

/// The log entry as builds before attachments derived it (variant 0 was the message).
#[derive(serde::Serialize)]
enum EntryBeforeAttachments<'a> {
    Message(MessageBeforeAttachments<'a>),
}

fn before_attachments(message: &Message) -> Vec<u8> {
    encode(&EntryBeforeAttachments::Message(MessageBeforeAttachments {
        conversation_id: &message.conversation_id,
        seq: &message.seq,
        message_id: &message.message_id,
        sender_id: &message.sender_id,
        client_id: &message.client_id,
        text: &message.text,
        reply_to: &message.reply_to,
        thread_root: &message.thread_root,
        forwarded_from: &message.forwarded_from,
        ts: &message.ts,
        state: &message.state,
    }))
    .expect("encodes")
}

#[test]
fn a_message_without_attachments_keeps_the_layout_older_builds_wrote() {
    let message = sample_message();
    let older = before_attachments(&message);
    let entry = LogEntry::Message(message);
    assert_eq!(encode(&entry).expect("encodes"), older, "written as before");
    assert_eq!(
        decode::<LogEntry>("messages", &older),
        Ok(entry),
        "read back"
    );
}

#[test]
fn a_message_with_attachments_round_trips_and_old_readers_see_a_new_variant() {
    let mut message = sample_message();
    message.attachments = vec![Attachment {
        media_id: MediaId::from_parts(1_700_000_000_000, 9),
        file_name: "cat.png".to_owned(),
        mime: "image/png".to_owned(),
        size_bytes: 1_234,
        dimensions: Some(Dimensions {
            width: 640,
            height: 480,
        }),
        thumbnails: vec![AttachedThumbnail {
            size: 256,
            dimensions: Dimensions {
                width: 256,
                height: 192,
            },
            mime: "image/webp".to_owned(),
        }],
        deleted: false,
    }];
    let entry = LogEntry::Message(message.clone());
    let bytes = encode(&entry).expect("encodes");
    assert_eq!(bytes[1], 2, "the attached-message variant");
    assert_eq!(decode::<LogEntry>("messages", &bytes), Ok(entry));
    // A build from before attachments fails on the unknown variant (it reports the record
    // corrupt) instead of reading the message without them.
    message.attachments.clear();
    assert_eq!(before_attachments(&message)[1], 0);
}
