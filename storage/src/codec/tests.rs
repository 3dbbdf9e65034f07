//! Unit tests for the record encoding: round trips, and every malformed input is `Corrupt`.

use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, UserId};
use switchboard_engine::model::{Message, MessageState};
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
