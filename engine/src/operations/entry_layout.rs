//! The stored layout of a [`LogEntry`] (its serde), which must keep reading what older builds
//! wrote.
//!
//! Storage encodes entries with postcard, which has no field names and no defaults: a struct is
//! its fields in order, an enum its variant's index and then the variant's fields. When
//! messages gained attachments, a message record with one more field would no longer read
//! records written before. So the layout has three variants: `Message` (index 0) is a message
//! without attachments, in exactly the layout older builds wrote (every message they stored is
//! one); `Event` (1) is unchanged; `AttachedMessage` (2) is a message with its attachments.
//! Serializing borrows the message (no copy on the write path); a message without attachments
//! is written byte for byte as before.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ConversationEvent, LogEntry};
use crate::ids::{ClientId, ConversationId, MessageId, Seq, UserId};
use crate::model::{ForwardedFrom, Message, MessageState};
use crate::time::Timestamp;

/// A message without attachments, borrowed, in the layout older builds wrote.
#[derive(Serialize)]
struct PlainMessageRef<'a> {
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

/// A message without attachments, read back.
#[derive(Deserialize)]
struct PlainMessage {
    conversation_id: ConversationId,
    seq: Seq,
    message_id: MessageId,
    sender_id: UserId,
    client_id: ClientId,
    text: String,
    reply_to: Option<MessageId>,
    thread_root: Option<MessageId>,
    forwarded_from: Option<ForwardedFrom>,
    ts: Timestamp,
    state: MessageState,
}

/// The variants as written. Their order is the layout: never reorder, only append.
#[derive(Serialize)]
enum StoredEntryRef<'a> {
    Message(PlainMessageRef<'a>),
    Event(&'a ConversationEvent),
    AttachedMessage(&'a Message),
}

/// The variants as read.
#[derive(Deserialize)]
enum StoredEntry {
    Message(PlainMessage),
    Event(ConversationEvent),
    AttachedMessage(Message),
}

impl Serialize for LogEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LogEntry::Message(message) if message.attachments.is_empty() => {
                StoredEntryRef::Message(PlainMessageRef {
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
                })
                .serialize(serializer)
            }
            LogEntry::Message(message) => {
                StoredEntryRef::AttachedMessage(message).serialize(serializer)
            }
            LogEntry::Event(event) => StoredEntryRef::Event(event).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for LogEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match StoredEntry::deserialize(deserializer)? {
            StoredEntry::Message(plain) => LogEntry::Message(Message {
                conversation_id: plain.conversation_id,
                seq: plain.seq,
                message_id: plain.message_id,
                sender_id: plain.sender_id,
                client_id: plain.client_id,
                text: plain.text,
                reply_to: plain.reply_to,
                thread_root: plain.thread_root,
                forwarded_from: plain.forwarded_from,
                ts: plain.ts,
                state: plain.state,
                attachments: Vec::new(),
            }),
            StoredEntry::Event(event) => LogEntry::Event(event),
            StoredEntry::AttachedMessage(message) => LogEntry::Message(message),
        })
    }
}
