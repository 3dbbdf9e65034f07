//! Parsing: one client text frame becomes one [`ClientRequest`].
//!
//! A frame is read in one borrowed pass into [`Fields`], the protocol's field vocabulary: every
//! field name has one type whatever the frame's `type`, so a field of the wrong type is refused
//! (with serde's positioned message) before the `type` is looked at, exactly as it always was,
//! and no frame is parsed twice. Unknown fields are ignored, so newer clients can talk to older
//! servers. The `type` then picks the one function that parses that kind of frame (in
//! `inbound/`: session, messages, membership, calls); each checks the fields its kind needs, in
//! a fixed order, through [`super::requests`], which the HTTP API uses too. Errors carry the
//! request `id` whenever it could be read, so a client can always match an `error` frame to its
//! request.

use std::borrow::Cow;

use serde::Deserialize;
use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, RequestId};

use super::requests;

mod calls;
mod membership;
mod messages;
mod session;

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not valid JSON (or not a JSON object).
    #[error("the frame is not a valid JSON object: {0}")]
    InvalidJson(String),
    /// The frame has no `type`.
    #[error("the frame has no \"type\"")]
    MissingType,
    /// The frame's `type` is not one this server knows.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// The frame is over the configured size limit.
    #[error("the frame is {actual} bytes; the limit is {limit}")]
    FrameTooLarge {
        /// The configured limit.
        limit: usize,
        /// The frame's size.
        actual: usize,
    },
    /// A binary frame: protocol v1 speaks JSON text frames only.
    #[error("binary frames are not supported; send JSON text frames")]
    BinaryFrame,
    /// A field is missing or invalid.
    #[error("{0}")]
    Invalid(Error),
}

/// A refused frame, with the request id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The request id, if the frame had a readable one.
    pub request_id: Option<RequestId>,
    /// What is wrong.
    pub error: ProtocolError,
}

/// A request id as it appears on the wire: an integer or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireRequestId<'a> {
    Number(i64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

/// The protocol's field vocabulary: every field any client frame uses, each with its one type,
/// borrowed from the frame where it can be. Each kind's parser reads the fields it needs.
#[derive(Debug, Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<WireRequestId<'a>>,
    #[serde(borrow)]
    conversation_id: Option<Cow<'a, str>>,
    since: Option<u64>,
    seq: Option<u64>,
    #[serde(borrow)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reply_to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thread_root: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    emoji: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_ids: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
    duration_ms: Option<u64>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    ttl_secs: Option<u64>,
    #[serde(rename = "kind", borrow)]
    call_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to_user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sdp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    candidate: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sdp_mid: Option<Cow<'a, str>>,
    sdp_mline_index: Option<u32>,
    #[serde(borrow)]
    recording_id: Option<Cow<'a, str>>,
    granted: Option<bool>,
    #[serde(borrow)]
    attachments: Option<Vec<Cow<'a, str>>>,
}

/// Just the id, for echoing it when the rest of a frame does not parse.
#[derive(Debug, Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Option<WireRequestId<'a>>,
}

/// One frame on its way to the parser of its kind.
struct Frame<'text, 'id> {
    /// The frame's fields (its `type` and `id` already taken out).
    fields: Fields<'text>,
    /// The frame's request id: a parser takes it (`Option::take`) only when it succeeds, so an
    /// error can still echo it, and nothing is cloned.
    request_id: &'id mut Option<RequestId>,
}

/// What a kind's parser returns; the caller adds the request id to an error.
type Parsed = Result<ClientRequest, Error>;

/// Parses one kind of frame.
type KindParser = fn(Frame<'_, '_>) -> Parsed;

/// The parser of each frame `type`.
fn kind_parser(kind: &str) -> Option<KindParser> {
    Some(match kind {
        "ping" => session::ping,
        "add_members" => membership::add_members,
        "remove_member" => membership::remove_member,
        "leave_conversation" => membership::leave_conversation,
        "change_role" => membership::change_role,
        "transfer_ownership" => membership::transfer_ownership,
        "moderate" => membership::moderate,
        "turn_credentials" => session::turn_credentials,
        "presence" => session::presence,
        "subscribe_presence" => session::subscribe_presence,
        "call.invite" => calls::invite,
        "call.accept" => calls::accept,
        "call.reject" => calls::reject,
        "call.cancel" => calls::cancel,
        "call.hangup" => calls::hang_up,
        "call.offer" => calls::offer,
        "call.answer" => calls::answer,
        "call.ice_candidate" => calls::ice_candidate,
        "call.recording.request" => calls::request_recording,
        "call.recording.consent" => calls::answer_recording,
        "call.recording.stop" => calls::stop_recording,
        "typing" => session::typing,
        "read" => session::read,
        "delivered" => session::delivered,
        "edit" => messages::edit,
        "delete" => messages::delete,
        "react" => messages::react,
        "unreact" => messages::unreact,
        "join" => session::join,
        "leave" => session::leave,
        "send" => messages::send,
        _ => return None,
    })
}

fn request_id(raw: Option<WireRequestId<'_>>) -> Result<Option<RequestId>, ProtocolError> {
    match raw {
        None => Ok(None),
        Some(WireRequestId::Number(number)) => Ok(Some(RequestId::Number(number))),
        Some(WireRequestId::Text(text)) => RequestId::text(text.into_owned())
            .map(Some)
            .map_err(ProtocolError::Invalid),
    }
}

/// Parses one client text frame.
///
/// # Errors
/// A [`FrameError`] naming the problem; the connection stays open.
pub fn parse_client_frame(text: &str, max_frame_bytes: usize) -> Result<ClientRequest, FrameError> {
    if text.len() > max_frame_bytes {
        return Err(FrameError {
            request_id: None,
            error: ProtocolError::FrameTooLarge {
                limit: max_frame_bytes,
                actual: text.len(),
            },
        });
    }
    if !text.trim_start().starts_with('{') {
        return Err(FrameError {
            request_id: None,
            error: ProtocolError::InvalidJson("expected a JSON object".to_owned()),
        });
    }
    let mut fields: Fields<'_> = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(error) => {
            let request_id = serde_json::from_str::<IdOnly<'_>>(text)
                .ok()
                .and_then(|id_only| request_id(id_only.id).ok().flatten());
            let error = if error.is_data() {
                // Well-formed JSON with a field of the wrong type.
                ProtocolError::Invalid(Error::invalid("frame", error.to_string()))
            } else {
                ProtocolError::InvalidJson(error.to_string())
            };
            return Err(FrameError { request_id, error });
        }
    };
    let mut request_id = request_id(fields.id.take()).map_err(|error| FrameError {
        request_id: None,
        error,
    })?;
    let Some(kind) = fields.kind.take() else {
        return Err(FrameError {
            request_id,
            error: ProtocolError::MissingType,
        });
    };
    let Some(parse) = kind_parser(&kind) else {
        return Err(FrameError {
            request_id,
            error: ProtocolError::UnknownType(kind.chars().take(64).collect()),
        });
    };
    let frame = Frame {
        fields,
        request_id: &mut request_id,
    };
    parse(frame).map_err(|error| FrameError {
        request_id,
        error: ProtocolError::Invalid(error),
    })
}

/// The required `conversation_id`.
fn conversation_id(value: Option<Cow<'_, str>>) -> Result<ConversationId, Error> {
    requests::conversation_id(&requests::required(value, "conversation_id")?)
}

/// The required `client_id`.
fn client_id(value: Option<Cow<'_, str>>) -> Result<ClientId, Error> {
    ClientId::parse(&requests::required(value, "client_id")?)
}

/// An optional message id in the named field.
fn optional_message_id(
    field: &'static str,
    value: Option<Cow<'_, str>>,
) -> Result<Option<MessageId>, Error> {
    value
        .map(|text| requests::message_id(field, &text))
        .transpose()
}
