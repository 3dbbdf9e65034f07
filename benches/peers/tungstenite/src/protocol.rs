//! The peers' common JSON protocol: parsing client frames and encoding server frames.
//!
//! Parsing borrows from the received text wherever the JSON has no escapes, and a request's `id`
//! is kept as the raw JSON token so that it is echoed byte for byte.
//! Encoding produces `Utf8Bytes`, so a broadcast frame is encoded once and every recipient's
//! queue gets a reference-counted clone of the same bytes.
//! This module does no I/O.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

#[cfg(test)]
mod tests;

/// The reply to any frame the server cannot act on; the connection stays open.
pub(crate) const INVALID_FRAME: &str = r#"{"type":"error","code":"invalid"}"#;

/// A request's `id`: the raw JSON number or string the client sent, echoed verbatim.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestId<'a>(&'a RawValue);

impl RequestId<'_> {
    /// The id exactly as it appeared in the client's frame.
    #[cfg(test)]
    pub(crate) fn as_json(&self) -> &str {
        self.0.get()
    }
}

/// A valid client frame.
#[derive(Debug)]
pub(crate) enum ClientRequest<'a> {
    /// Subscribe this connection to a room.
    Join {
        request_id: Option<RequestId<'a>>,
        conversation_id: Cow<'a, str>,
    },
    /// Broadcast a message to a room, then acknowledge it to the sender.
    Send {
        request_id: Option<RequestId<'a>>,
        conversation_id: Cow<'a, str>,
        client_id: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// Ask for a `pong`.
    Ping { request_id: Option<RequestId<'a>> },
}

/// The text was not a frame this protocol understands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidFrame;

/// Parses one client text frame.
///
/// # Errors
/// [`InvalidFrame`] when the text is not a JSON object with a known `type` and the string fields
/// that type needs, or when `id` is present but neither a number nor a string.
pub(crate) fn parse_client_frame(text: &str) -> Result<ClientRequest<'_>, InvalidFrame> {
    let frame: WireClientFrame<'_> = serde_json::from_str(text).map_err(|_| InvalidFrame)?;
    let request_id = match frame.id {
        None => None,
        Some(raw) if is_number_or_string(raw) => Some(RequestId(raw)),
        Some(_) => return Err(InvalidFrame),
    };
    match &*frame.kind.0 {
        "join" => Ok(ClientRequest::Join {
            request_id,
            conversation_id: required(frame.conversation_id)?,
        }),
        "send" => Ok(ClientRequest::Send {
            request_id,
            conversation_id: required(frame.conversation_id)?,
            client_id: required(frame.client_id)?,
            text: required(frame.text)?,
        }),
        "ping" => Ok(ClientRequest::Ping { request_id }),
        _ => Err(InvalidFrame),
    }
}

/// The string of a field the request's type requires.
fn required(field: Option<BorrowedText<'_>>) -> Result<Cow<'_, str>, InvalidFrame> {
    field.map(|text| text.0).ok_or(InvalidFrame)
}

/// `{"type":"joined","id":…,"conversation_id":…}`.
pub(crate) fn encode_joined(request_id: Option<RequestId<'_>>, conversation_id: &str) -> Utf8Bytes {
    encode(&JoinedFrame {
        kind: "joined",
        id: request_id.map(|id| id.0),
        conversation_id,
    })
}

/// `{"type":"message","conversation_id":…,"client_id":…,"text":…}`, the one frame a broadcast
/// sends to every member of the room.
pub(crate) fn encode_message(conversation_id: &str, client_id: &str, text: &str) -> Utf8Bytes {
    encode(&MessageFrame {
        kind: "message",
        conversation_id,
        client_id,
        text,
    })
}

/// `{"type":"ack","id":…,"status":"delivered","client_id":…}`.
pub(crate) fn encode_ack(request_id: Option<RequestId<'_>>, client_id: &str) -> Utf8Bytes {
    encode(&AckFrame {
        kind: "ack",
        id: request_id.map(|id| id.0),
        status: "delivered",
        client_id,
    })
}

/// `{"type":"pong","id":…}`.
pub(crate) fn encode_pong(request_id: Option<RequestId<'_>>) -> Utf8Bytes {
    encode(&PongFrame {
        kind: "pong",
        id: request_id.map(|id| id.0),
    })
}

fn encode(frame: &impl Serialize) -> Utf8Bytes {
    // Every server frame is a struct of strings and raw JSON tokens that were already validated
    // by the parser, and serializing those into a `String` has no failure path.
    let json = serde_json::to_string(frame).expect("a frame of strings always serializes");
    Utf8Bytes::from(json)
}

/// True when a raw JSON token is a number or a string (the parser already validated it).
fn is_number_or_string(raw: &RawValue) -> bool {
    matches!(
        raw.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9')
    )
}

/// The fields of any client frame; which ones are required depends on `type`.
/// Unknown fields are ignored.
#[derive(Deserialize)]
struct WireClientFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: BorrowedText<'a>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    conversation_id: Option<BorrowedText<'a>>,
    #[serde(default, borrow)]
    client_id: Option<BorrowedText<'a>>,
    #[serde(default, borrow)]
    text: Option<BorrowedText<'a>>,
}

/// A JSON string that borrows from the input unless it contains escapes.
///
/// serde's own `Cow<str>` always allocates when it sits inside an `Option`, which every optional
/// field here does, so this wrapper asks the deserializer for a borrowed string explicitly.
struct BorrowedText<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for BorrowedText<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BorrowedTextVisitor;

        impl<'de> Visitor<'de> for BorrowedTextVisitor {
            type Value = BorrowedText<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(BorrowedText(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(BorrowedTextVisitor)
    }
}

#[derive(Serialize)]
struct JoinedFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    conversation_id: &'a str,
}

#[derive(Serialize)]
struct MessageFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    conversation_id: &'a str,
    client_id: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct AckFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    status: &'static str,
    client_id: &'a str,
}

#[derive(Serialize)]
struct PongFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
}
