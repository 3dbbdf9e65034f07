//! The JSON codec of protocol v1: client frames in, server events out.
//!
//! Parsing reads a frame once into a flat struct of every field any request type uses (unknown
//! fields are ignored, so newer clients can talk to older servers), then checks the fields the
//! frame's `type` needs. Errors carry the request `id` whenever it could be read, so a client
//! can always match an `error` frame to its request.
//!
//! Encoding implements the engine's [`EventEncoder`] port: each server event is serialized once
//! into an [`EncodedFrame`] that fan-out shares between recipients.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::call::{CallAction, CallKind, CallNotice, SignalPayload};
use switchboard_engine::event::{
    AckOutcome, EncodedFrame, EventEncoder, PresenceEntry, ServerEvent,
};
use switchboard_engine::ids::{
    CallId, ClientId, ConversationId, Emoji, MessageId, RecordingId, RequestId, Seq, UserId,
};
use switchboard_engine::membership::{ConversationChange, ModerationAction};
use switchboard_engine::model::{DeleteMode, Member, Message, NewMessage, Role};
use switchboard_engine::operations::{
    ConversationEvent, ConversationEventBody, LogEntry, MessageOperation, NewOperation,
};
use switchboard_engine::ports::IceServers;
use switchboard_engine::recording::RecordingNotice;
use switchboard_engine::time::Timestamp;
use utoipa::ToSchema;

use crate::wire_error::WireError;

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

/// A request id as it appears on the wire: an integer or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireRequestId<'a> {
    Number(i64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

/// Every field any client frame uses.
#[derive(Debug, Deserialize)]
struct RawFrame<'a> {
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
}

/// Just the id, for echoing it when the rest of a frame does not parse.
#[derive(Debug, Deserialize)]
struct IdOnly<'a> {
    #[serde(borrow)]
    id: Option<WireRequestId<'a>>,
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

fn required<'a>(
    value: Option<Cow<'a, str>>,
    field: &'static str,
) -> Result<Cow<'a, str>, ProtocolError> {
    value.ok_or_else(|| ProtocolError::Invalid(Error::invalid(field, "is required")))
}

/// A refused frame, with the request id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// The request id, if the frame had a readable one.
    pub request_id: Option<RequestId>,
    /// What is wrong.
    pub error: ProtocolError,
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
    let raw: RawFrame<'_> = match serde_json::from_str(text) {
        Ok(raw) => raw,
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
    let request_id = request_id(raw.id).map_err(|error| FrameError {
        request_id: None,
        error,
    })?;
    let with_id = |error: ProtocolError| FrameError {
        request_id: request_id.clone(),
        error,
    };
    let kind = raw
        .kind
        .ok_or_else(|| with_id(ProtocolError::MissingType))?;
    let conversation_id = |value: Option<Cow<'_, str>>| -> Result<ConversationId, FrameError> {
        let text = required(value, "conversation_id").map_err(with_id)?;
        ConversationId::parse(&text).map_err(|error| with_id(ProtocolError::Invalid(error)))
    };
    let message_id = |field: &'static str, value: Option<Cow<'_, str>>| {
        value
            .map(|text| {
                MessageId::parse(&text).map_err(|_| {
                    with_id(ProtocolError::Invalid(Error::invalid(
                        field,
                        "must be a message id",
                    )))
                })
            })
            .transpose()
    };
    let client_id = |value: Option<Cow<'_, str>>| -> Result<ClientId, FrameError> {
        let text = required(value, "client_id").map_err(with_id)?;
        ClientId::parse(&text).map_err(|error| with_id(ProtocolError::Invalid(error)))
    };
    let operation = |operation: MessageOperation,
                     conversation_id: ConversationId,
                     client_id: ClientId| ClientRequest::Operate {
        request_id: request_id.clone(),
        conversation_id,
        new_operation: NewOperation {
            client_id,
            operation,
        },
    };
    match kind.as_ref() {
        "ping" => Ok(ClientRequest::Ping { request_id }),
        "add_members" | "remove_member" | "leave_conversation" | "change_role"
        | "transfer_ownership" | "moderate" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let client_id = client_id(raw.client_id)?;
            let invalid = |error: Error| with_id(ProtocolError::Invalid(error));
            let user_id = |value: Option<Cow<'_, str>>| -> Result<UserId, FrameError> {
                let text = required(value, "user_id").map_err(with_id)?;
                UserId::parse(&text).map_err(invalid)
            };
            let change = match kind.as_ref() {
                "add_members" => ConversationChange::AddMembers {
                    user_ids: raw
                        .user_ids
                        .ok_or_else(|| invalid(Error::invalid("user_ids", "is required")))?
                        .iter()
                        .map(|text| UserId::parse(text).map_err(invalid))
                        .collect::<Result<_, _>>()?,
                },
                "remove_member" => ConversationChange::RemoveMember {
                    user_id: user_id(raw.user_id)?,
                },
                "leave_conversation" => ConversationChange::Leave,
                "change_role" => ConversationChange::ChangeRole {
                    user_id: user_id(raw.user_id)?,
                    role: parse_role(raw.role.as_deref()).map_err(invalid)?,
                },
                "transfer_ownership" => ConversationChange::TransferOwnership {
                    user_id: user_id(raw.user_id)?,
                },
                _ => ConversationChange::Moderate {
                    action: parse_moderation_action(raw.action.as_deref()).map_err(invalid)?,
                    user_id: user_id(raw.user_id)?,
                    duration_ms: raw.duration_ms,
                    reason: raw.reason.map(Cow::into_owned),
                },
            };
            Ok(ClientRequest::Change {
                request_id,
                conversation_id,
                client_id,
                change,
            })
        }
        "turn_credentials" => Ok(ClientRequest::IceServers {
            request_id,
            ttl_secs: raw.ttl_secs,
        }),
        "presence" => {
            let away = match raw.status.as_deref() {
                Some("away") => true,
                Some("online") => false,
                _ => {
                    return Err(with_id(ProtocolError::Invalid(Error::invalid(
                        "status",
                        "must be \"online\" or \"away\"",
                    ))));
                }
            };
            Ok(ClientRequest::SetPresence { request_id, away })
        }
        "subscribe_presence" => {
            let user_ids = raw
                .user_ids
                .ok_or_else(|| {
                    with_id(ProtocolError::Invalid(Error::invalid(
                        "user_ids",
                        "is required",
                    )))
                })?
                .iter()
                .map(|text| {
                    UserId::parse(text).map_err(|error| with_id(ProtocolError::Invalid(error)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ClientRequest::SubscribePresence {
                request_id,
                user_ids,
            })
        }
        "call.invite"
        | "call.accept"
        | "call.reject"
        | "call.cancel"
        | "call.hangup"
        | "call.offer"
        | "call.answer"
        | "call.ice_candidate"
        | "call.recording.request"
        | "call.recording.consent"
        | "call.recording.stop" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let invalid = |error: Error| with_id(ProtocolError::Invalid(error));
            let call_id = || {
                let text = required(raw.call_id.clone(), "call_id").map_err(with_id)?;
                CallId::parse(&text)
                    .map_err(|_| invalid(Error::invalid("call_id", "must be a call id")))
            };
            let to = || {
                let text = required(raw.to_user_id.clone(), "to_user_id").map_err(with_id)?;
                UserId::parse(&text).map_err(invalid)
            };
            let recording_id = || {
                let text = required(raw.recording_id.clone(), "recording_id").map_err(with_id)?;
                RecordingId::parse(&text)
                    .map_err(|_| invalid(Error::invalid("recording_id", "must be a recording id")))
            };
            let sdp = || {
                required(raw.sdp.clone(), "sdp")
                    .map(Cow::into_owned)
                    .map_err(with_id)
            };
            let action = match kind.as_ref() {
                "call.invite" => {
                    let text = required(raw.call_kind.clone(), "kind").map_err(with_id)?;
                    CallAction::Invite {
                        kind: CallKind::parse(&text).map_err(invalid)?,
                    }
                }
                "call.accept" => CallAction::Accept {
                    call_id: call_id()?,
                },
                "call.reject" => CallAction::Reject {
                    call_id: call_id()?,
                },
                "call.cancel" => CallAction::Cancel {
                    call_id: call_id()?,
                },
                "call.hangup" => CallAction::HangUp {
                    call_id: call_id()?,
                },
                "call.recording.request" => CallAction::RequestRecording {
                    call_id: call_id()?,
                },
                "call.recording.consent" => CallAction::AnswerRecording {
                    call_id: call_id()?,
                    recording_id: recording_id()?,
                    granted: raw
                        .granted
                        .ok_or_else(|| invalid(Error::invalid("granted", "is required")))?,
                },
                "call.recording.stop" => CallAction::StopRecording {
                    call_id: call_id()?,
                    recording_id: recording_id()?,
                },
                "call.offer" => CallAction::Signal {
                    call_id: call_id()?,
                    to: to()?,
                    payload: SignalPayload::Offer { sdp: sdp()? },
                },
                "call.answer" => CallAction::Signal {
                    call_id: call_id()?,
                    to: to()?,
                    payload: SignalPayload::Answer { sdp: sdp()? },
                },
                _ => CallAction::Signal {
                    call_id: call_id()?,
                    to: to()?,
                    payload: SignalPayload::IceCandidate {
                        candidate: required(raw.candidate.clone(), "candidate")
                            .map(Cow::into_owned)
                            .map_err(with_id)?,
                        sdp_mid: raw.sdp_mid.clone().map(Cow::into_owned),
                        sdp_mline_index: raw.sdp_mline_index,
                    },
                },
            };
            Ok(ClientRequest::Call {
                request_id,
                conversation_id,
                action,
            })
        }
        "typing" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let started = match raw.state.as_deref() {
                Some("start") => true,
                Some("stop") => false,
                _ => {
                    return Err(with_id(ProtocolError::Invalid(Error::invalid(
                        "state",
                        "must be \"start\" or \"stop\"",
                    ))));
                }
            };
            Ok(ClientRequest::Typing {
                request_id,
                conversation_id,
                started,
            })
        }
        "read" | "delivered" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let seq = raw.seq.map(Seq).ok_or_else(|| {
                with_id(ProtocolError::Invalid(Error::invalid("seq", "is required")))
            })?;
            let (read, delivered) = if kind.as_ref() == "read" {
                (Some(seq), None)
            } else {
                (None, Some(seq))
            };
            Ok(ClientRequest::Receipt {
                request_id,
                conversation_id,
                read,
                delivered,
            })
        }
        "edit" | "delete" | "react" | "unreact" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let client_id = client_id(raw.client_id)?;
            let target = message_id("message_id", raw.message_id)?.ok_or_else(|| {
                with_id(ProtocolError::Invalid(Error::invalid(
                    "message_id",
                    "is required",
                )))
            })?;
            let emoji = |value: Option<Cow<'_, str>>| -> Result<Emoji, FrameError> {
                let text = required(value, "emoji").map_err(with_id)?;
                Emoji::parse(&text).map_err(|error| with_id(ProtocolError::Invalid(error)))
            };
            let parsed = match kind.as_ref() {
                "edit" => MessageOperation::Edit {
                    message_id: target,
                    text: required(raw.text, "text").map_err(with_id)?.into_owned(),
                },
                "delete" if raw.mode.as_deref() == Some("for_me") => {
                    return Ok(ClientRequest::Hide {
                        request_id,
                        conversation_id,
                        message_id: target,
                    });
                }
                "delete" => MessageOperation::Delete {
                    message_id: target,
                    mode: parse_delete_mode(raw.mode.as_deref())
                        .map_err(|error| with_id(ProtocolError::Invalid(error)))?,
                },
                "react" => MessageOperation::React {
                    message_id: target,
                    emoji: emoji(raw.emoji)?,
                },
                _ => MessageOperation::Unreact {
                    message_id: target,
                    emoji: emoji(raw.emoji)?,
                },
            };
            Ok(operation(parsed, conversation_id, client_id))
        }
        "join" => Ok(ClientRequest::Join {
            conversation_id: conversation_id(raw.conversation_id)?,
            since: raw.since.map(Seq),
            request_id,
        }),
        "leave" => Ok(ClientRequest::Leave {
            conversation_id: conversation_id(raw.conversation_id)?,
            request_id,
        }),
        "send" => {
            let conversation_id = conversation_id(raw.conversation_id)?;
            let client_id = client_id(raw.client_id)?;
            let text = required(raw.text, "text").map_err(with_id)?.into_owned();
            let reply_to = message_id("reply_to", raw.reply_to)?;
            let thread_root = message_id("thread_root", raw.thread_root)?;
            Ok(ClientRequest::Send {
                request_id,
                conversation_id,
                new_message: NewMessage {
                    client_id,
                    text,
                    reply_to,
                    thread_root,
                    forwarded_from: None,
                },
            })
        }
        other => Err(with_id(ProtocolError::UnknownType(
            other.chars().take(64).collect(),
        ))),
    }
}

/// Parses a role below owner's: `admin`, `moderator` or `member`.
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_role(role: Option<&str>) -> Result<Role, Error> {
    role.and_then(Role::parse)
        .ok_or_else(|| Error::invalid("role", "must be admin, moderator or member"))
}

/// Parses a moderation action: `kick`, `ban`, `unban`, `mute` or `unmute`.
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_moderation_action(action: Option<&str>) -> Result<ModerationAction, Error> {
    action
        .and_then(ModerationAction::parse)
        .ok_or_else(|| Error::invalid("action", "must be kick, ban, unban, mute or unmute"))
}

/// Parses a delete mode for everyone: `for_everyone` (the default when absent) or `hard`
/// (`for_me` is handled before this, as it is not an operation in the seq stream).
///
/// # Errors
/// [`Error::Invalid`] for anything else.
pub fn parse_delete_mode(mode: Option<&str>) -> Result<DeleteMode, Error> {
    match mode {
        None | Some("for_everyone") => Ok(DeleteMode::ForEveryone),
        Some("hard") => Ok(DeleteMode::Hard),
        Some(_) => Err(Error::invalid(
            "mode",
            "must be \"for_everyone\", \"hard\" or \"for_me\"",
        )),
    }
}

// ---- encoding ----

#[derive(Serialize)]
#[serde(untagged)]
enum OutRequestId<'a> {
    Number(i64),
    Text(&'a str),
}

fn out_id(request_id: Option<&RequestId>) -> Option<OutRequestId<'_>> {
    request_id.map(|request_id| match request_id {
        RequestId::Number(number) => OutRequestId::Number(*number),
        RequestId::Text(text) => OutRequestId::Text(text),
    })
}

fn is_zero(count: &u32) -> bool {
    *count == 0
}

/// The wire form of a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionBody<'a> {
    /// `for_everyone` or `hard`.
    pub mode: &'static str,
    /// Who deleted the message.
    pub deleted_by: &'a str,
    /// When, milliseconds since the epoch.
    pub deleted_at: u64,
}

/// The wire form of one emoji's reactions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReactionBody<'a> {
    /// The emoji.
    pub emoji: &'a str,
    /// How many users reacted with it.
    pub count: usize,
    /// Who, in id order.
    pub user_ids: Vec<&'a str>,
}

/// The wire form of a forwarded message's origin.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForwardedFromBody<'a> {
    /// The original's conversation.
    pub conversation_id: String,
    /// The original message.
    pub message_id: String,
    /// Who sent the original.
    pub sender_id: &'a str,
}

/// The wire form of a stored message, shared by WebSocket events and HTTP responses. Optional
/// fields are absent when empty (no reply, never edited, not deleted, no reactions, no thread).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody<'a> {
    /// The conversation.
    pub conversation_id: String,
    /// Position in the conversation.
    pub seq: u64,
    /// Server-assigned id.
    pub message_id: String,
    /// Sender.
    pub sender_id: &'a str,
    /// Sender's idempotency key.
    pub client_id: &'a str,
    /// Body (empty once deleted).
    pub text: &'a str,
    /// Replied-to message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The thread this message was posted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<String>,
    /// The original, for a forwarded copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_from: Option<ForwardedFromBody<'a>>,
    /// Acceptance time, milliseconds since the epoch.
    pub ts: u64,
    /// When the text was last edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<u64>,
    /// Present once deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<DeletionBody<'a>>,
    /// Reactions, in the order each emoji was first used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionBody<'a>>,
    /// Replies in the thread under this message.
    #[serde(skip_serializing_if = "is_zero")]
    pub thread_reply_count: u32,
    /// When the last of them was posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_last_reply_at: Option<u64>,
    /// For a reply in a thread, its number there (the root's count right after it).
    #[serde(skip_serializing_if = "is_zero")]
    pub thread_position: u32,
}

impl<'a> MessageBody<'a> {
    /// The wire form of `message`.
    pub fn new(message: &'a Message) -> Self {
        let state = &message.state;
        MessageBody {
            conversation_id: message.conversation_id.to_string(),
            seq: message.seq.get(),
            message_id: message.message_id.to_string(),
            sender_id: message.sender_id.as_str(),
            client_id: message.client_id.as_str(),
            text: &message.text,
            reply_to: message.reply_to.map(|reply_to| reply_to.to_string()),
            thread_root: message.thread_root.map(|root| root.to_string()),
            forwarded_from: message
                .forwarded_from
                .as_ref()
                .map(|origin| ForwardedFromBody {
                    conversation_id: origin.conversation_id.to_string(),
                    message_id: origin.message_id.to_string(),
                    sender_id: origin.sender_id.as_str(),
                }),
            ts: message.ts.as_millis(),
            edited_at: state.edited_at.map(|edited_at| edited_at.as_millis()),
            deleted: state.deleted.as_ref().map(|deletion| DeletionBody {
                mode: deletion.mode.as_str(),
                deleted_by: deletion.deleted_by.as_str(),
                deleted_at: deletion.deleted_at.as_millis(),
            }),
            reactions: state
                .reactions
                .iter()
                .map(|reaction| ReactionBody {
                    emoji: reaction.emoji.as_str(),
                    count: reaction.user_ids.len(),
                    user_ids: reaction.user_ids.iter().map(|user| user.as_str()).collect(),
                })
                .collect(),
            thread_reply_count: state.thread_reply_count,
            thread_last_reply_at: state.thread_last_reply_at.map(|at| at.as_millis()),
            thread_position: state.thread_position,
        }
    }
}

/// The fields every event frame carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventEnvelope<'a> {
    /// The conversation.
    pub conversation_id: String,
    /// The event's position in the conversation.
    pub seq: u64,
    /// The event's id.
    pub event_id: String,
    /// Who caused it.
    pub actor_id: &'a str,
    /// The actor's idempotency key.
    pub client_id: &'a str,
    /// When, milliseconds since the epoch.
    pub ts: u64,
    /// The message it is about (events about messages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// A call notice about one member (`call.accepted`, `call.rejected`, `call.left`).
#[derive(Debug, Serialize)]
pub struct CallMemberBody<'a> {
    conversation_id: String,
    call_id: String,
    user_id: &'a str,
}

/// One entry of `iceServers`, in the shape of WebRTC's `RTCIceServer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServerEntry<'a> {
    /// The server URIs.
    pub urls: &'a [String],
    /// The TURN username (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    /// The TURN password (absent for STUN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<&'a str>,
}

/// TURN credentials in both shapes clients expect: the TURN REST API's
/// `{username, password, ttl, uris}` and WebRTC's `{iceServers: [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IceServersBody<'a> {
    /// `<expiry unix seconds>:<tenant>:<user>:<key id>` (tenant and user percent-encoded, `:` as
    /// `%3A` and `%` as `%25`; the key id names the signing secret).
    pub username: &'a str,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: &'a str,
    /// Seconds the credential is valid for.
    pub ttl: u64,
    /// TURN server URIs.
    pub uris: &'a [String],
    /// The same, as `RTCIceServer`s: the TURN servers with the credential, then the STUN
    /// servers. Entries without URIs are left out.
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServerEntry<'a>>,
}

impl<'a> IceServersBody<'a> {
    /// The wire form of `servers`.
    pub fn new(servers: &'a IceServers) -> Self {
        let mut ice_servers = Vec::new();
        if !servers.turn_uris.is_empty() {
            ice_servers.push(IceServerEntry {
                urls: &servers.turn_uris,
                username: Some(&servers.username),
                credential: Some(&servers.password),
            });
        }
        if !servers.stun_uris.is_empty() {
            ice_servers.push(IceServerEntry {
                urls: &servers.stun_uris,
                username: None,
                credential: None,
            });
        }
        IceServersBody {
            username: &servers.username,
            password: &servers.password,
            ttl: servers.ttl_secs,
            uris: &servers.turn_uris,
            ice_servers,
        }
    }
}

/// The wire form of one user's presence.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceBody<'a> {
    /// The user.
    pub user_id: &'a str,
    /// `online`, `away` or `offline`.
    pub status: &'static str,
    /// For `offline`: when the user's last session closed (ms since the epoch); absent if not
    /// seen since the server started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<u64>,
}

impl<'a> PresenceBody<'a> {
    /// The wire form of `entry`.
    pub fn new(entry: &'a PresenceEntry) -> Self {
        PresenceBody {
            user_id: entry.user_id.as_str(),
            status: entry.status.as_str(),
            last_seen: entry.last_seen.map(Timestamp::as_millis),
        }
    }
}

/// The wire form of a member in `member.joined`.
#[derive(Debug, Serialize)]
pub struct MemberEventBody<'a> {
    /// The member.
    pub user_id: &'a str,
    /// Their role.
    pub role: &'static str,
    /// When they joined.
    pub joined_at: u64,
}

impl<'a> MemberEventBody<'a> {
    fn new(member: &'a Member) -> Self {
        MemberEventBody {
            user_id: member.user_id.as_str(),
            role: member.role.as_str(),
            joined_at: member.joined_at.as_millis(),
        }
    }
}

/// The wire form of a `moderation.*` event; also an entry of the HTTP moderation log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModerationEventBody<'a> {
    /// The event's envelope: seq, event id, who (`actor_id`), when.
    #[serde(flatten)]
    #[schema(inline)]
    pub envelope: EventEnvelope<'a>,
    /// `kick`, `ban`, `unban`, `mute` or `unmute` (the event type says it too).
    pub action: &'static str,
    /// Whom.
    pub user_id: &'a str,
    /// When a ban or mute ends on its own, milliseconds since the epoch; absent until lifted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    /// Why, as the moderator wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> ModerationEventBody<'a> {
    /// The wire form of a moderation event; `None` for any other event.
    pub fn from_event(event: &'a ConversationEvent) -> Option<Self> {
        let ConversationEventBody::Moderated {
            action,
            user_id,
            until,
            reason,
        } = &event.body
        else {
            return None;
        };
        Some(ModerationEventBody {
            envelope: EventEnvelope::new(event),
            action: action.as_str(),
            user_id: user_id.as_str(),
            until: until.map(|until| until.as_millis()),
            reason: reason.as_deref(),
        })
    }
}

impl<'a> EventEnvelope<'a> {
    fn new(event: &'a ConversationEvent) -> Self {
        EventEnvelope {
            conversation_id: event.conversation_id.to_string(),
            seq: event.seq.get(),
            event_id: event.event_id.to_string(),
            actor_id: event.actor_id.as_str(),
            client_id: event.client_id.as_str(),
            ts: event.ts.as_millis(),
            message_id: event
                .body
                .message_id()
                .map(|message_id| message_id.to_string()),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutFrame<'a> {
    Welcome {
        session_id: String,
        user_id: &'a str,
        tenant_id: &'a str,
        heartbeat_ms: u64,
        protocol: u32,
    },
    Joined {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
        head: u64,
    },
    Left {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        status: &'static str,
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    Message(MessageBody<'a>),
    #[serde(rename = "message.edited")]
    MessageEdited {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        /// Absent once the message was deleted (the content is gone).
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        edited_at: u64,
    },
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        mode: &'static str,
    },
    #[serde(rename = "reaction.added")]
    ReactionAdded {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        emoji: &'a str,
        count: u32,
    },
    #[serde(rename = "reaction.removed")]
    ReactionRemoved {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        emoji: &'a str,
        count: u32,
    },
    Receipt {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
        user_id: &'a str,
        read: u64,
        delivered: u64,
    },
    Skipped {
        conversation_id: String,
        seq: u64,
    },
    Typing {
        conversation_id: String,
        user_id: &'a str,
        state: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_in_ms: Option<u64>,
    },
    Presence(PresenceBody<'a>),
    #[serde(rename = "recording.media_stored")]
    RecordingMediaStored {
        conversation_id: String,
        recording_id: String,
        call_id: String,
        bytes: u64,
        content_type: &'a str,
    },
    #[serde(rename = "recording.erased")]
    RecordingErased {
        conversation_id: String,
        recording_id: String,
        call_id: String,
    },
    TurnCredentials {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        #[serde(flatten)]
        body: IceServersBody<'a>,
    },
    PresenceState {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        users: Vec<PresenceBody<'a>>,
        refused: Vec<&'a str>,
    },
    Hidden {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
        message_id: String,
    },
    #[serde(rename = "member.joined")]
    MemberJoined {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        members: Vec<MemberEventBody<'a>>,
    },
    #[serde(rename = "member.left")]
    MemberLeft {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        user_id: &'a str,
        reason: &'static str,
    },
    #[serde(rename = "member.role_changed")]
    MemberRoleChanged {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        user_id: &'a str,
        role: &'static str,
    },
    #[serde(rename = "conversation.owner_changed")]
    OwnerChanged {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        previous_owner: &'a str,
        owner: &'a str,
    },
    #[serde(rename = "conversation.updated")]
    ConversationUpdated {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        title: Option<&'a str>,
        description: Option<&'a str>,
        avatar_url: Option<&'a str>,
    },
    #[serde(rename = "conversation.archived")]
    ConversationArchived {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        archived: bool,
    },
    #[serde(rename = "call.started")]
    CallStarted {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        call_id: String,
        kind: &'static str,
    },
    #[serde(rename = "call.ended")]
    CallEnded {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        call_id: String,
        kind: &'static str,
        reason: &'static str,
        duration_ms: u64,
        participants: Vec<&'a str>,
    },
    #[serde(rename = "recording.started")]
    RecordingStarted {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        recording_id: String,
        call_id: String,
    },
    #[serde(rename = "recording.ended")]
    RecordingEnded {
        #[serde(flatten)]
        envelope: EventEnvelope<'a>,
        recording_id: String,
        call_id: String,
        reason: &'static str,
        was_recording: bool,
        duration_ms: u64,
    },
    #[serde(rename = "call.recording.requested")]
    RecordingRequested {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
        call_id: String,
        recording_id: String,
        asked: Vec<&'a str>,
    },
    #[serde(rename = "call.recording.consent_requested")]
    ConsentRequested {
        conversation_id: String,
        call_id: String,
        recording_id: String,
        requested_by: &'a str,
        expires_in_ms: u64,
    },
    #[serde(rename = "call.invited")]
    CallInvited {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        conversation_id: String,
        call_id: String,
        kind: &'static str,
        ringing: Vec<&'a str>,
    },
    #[serde(rename = "call.ringing")]
    CallRinging {
        conversation_id: String,
        call_id: String,
        caller_id: &'a str,
        kind: &'static str,
        expires_in_ms: u64,
    },
    #[serde(rename = "call.accepted")]
    CallAccepted(CallMemberBody<'a>),
    #[serde(rename = "call.rejected")]
    CallRejected(CallMemberBody<'a>),
    #[serde(rename = "call.left")]
    CallLeft(CallMemberBody<'a>),
    #[serde(rename = "call.offer")]
    CallOffer {
        conversation_id: String,
        call_id: String,
        from_user_id: &'a str,
        sdp: &'a str,
    },
    #[serde(rename = "call.answer")]
    CallAnswer {
        conversation_id: String,
        call_id: String,
        from_user_id: &'a str,
        sdp: &'a str,
    },
    #[serde(rename = "call.ice_candidate")]
    CallIceCandidate {
        conversation_id: String,
        call_id: String,
        from_user_id: &'a str,
        candidate: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u32>,
    },
    #[serde(rename = "moderation.kicked")]
    ModerationKicked(ModerationEventBody<'a>),
    #[serde(rename = "moderation.banned")]
    ModerationBanned(ModerationEventBody<'a>),
    #[serde(rename = "moderation.unbanned")]
    ModerationUnbanned(ModerationEventBody<'a>),
    #[serde(rename = "moderation.muted")]
    ModerationMuted(ModerationEventBody<'a>),
    #[serde(rename = "moderation.unmuted")]
    ModerationUnmuted(ModerationEventBody<'a>),
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<OutRequestId<'a>>,
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// The protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

fn out_frame<'a>(event: &ServerEvent<'a>) -> OutFrame<'a> {
    match *event {
        ServerEvent::Welcome {
            session_id,
            user_id,
            tenant_id,
            heartbeat_ms,
        } => OutFrame::Welcome {
            session_id: session_id.to_string(),
            user_id: user_id.as_str(),
            tenant_id: tenant_id.as_str(),
            heartbeat_ms,
            protocol: PROTOCOL_VERSION,
        },
        ServerEvent::Joined {
            request_id,
            conversation_id,
            head,
        } => OutFrame::Joined {
            id: out_id(request_id),
            conversation_id: conversation_id.to_string(),
            head: head.get(),
        },
        ServerEvent::Left {
            request_id,
            conversation_id,
        } => OutFrame::Left {
            id: out_id(request_id),
            conversation_id: conversation_id.to_string(),
        },
        ServerEvent::Ack {
            request_id,
            client_id,
            outcome,
        } => {
            let (status, message_ref, rejection) = match outcome {
                AckOutcome::Pending => ("pending", None, None),
                AckOutcome::Delivered(message_ref) => ("delivered", Some(*message_ref), None),
                AckOutcome::Rejected(error) => ("rejected", None, Some(WireError::from(error))),
            };
            OutFrame::Ack {
                id: out_id(request_id),
                status,
                client_id: client_id.as_str(),
                message_id: message_ref.map(|message_ref| message_ref.message_id.to_string()),
                seq: message_ref.map(|message_ref| message_ref.seq.get()),
                ts: message_ref.map(|message_ref| message_ref.ts.as_millis()),
                code: rejection.as_ref().map(|rejection| rejection.code),
                retry_after_ms: rejection
                    .as_ref()
                    .and_then(|rejection| rejection.retry_after_ms),
                message: rejection.map(|rejection| rejection.message),
            }
        }
        ServerEvent::Entry(LogEntry::Message(message)) => {
            OutFrame::Message(MessageBody::new(message))
        }
        ServerEvent::Entry(LogEntry::Event(event)) => event_frame(event),
        ServerEvent::Receipt {
            request_id,
            conversation_id,
            user_id,
            cursors,
        } => OutFrame::Receipt {
            id: out_id(request_id),
            conversation_id: conversation_id.to_string(),
            user_id: user_id.as_str(),
            read: cursors.read.get(),
            delivered: cursors.delivered.get(),
        },
        ServerEvent::Skipped {
            conversation_id,
            seq,
        } => OutFrame::Skipped {
            conversation_id: conversation_id.to_string(),
            seq: seq.get(),
        },
        ServerEvent::IceServers {
            request_id,
            servers,
        } => OutFrame::TurnCredentials {
            id: out_id(request_id),
            body: IceServersBody::new(servers),
        },
        ServerEvent::Presence {
            user_id,
            status,
            last_seen,
            ..
        } => OutFrame::Presence(PresenceBody {
            user_id: user_id.as_str(),
            status: status.as_str(),
            last_seen: last_seen.map(Timestamp::as_millis),
        }),
        ServerEvent::PresenceState {
            request_id,
            users,
            refused,
        } => OutFrame::PresenceState {
            id: out_id(request_id),
            users: users.iter().map(PresenceBody::new).collect(),
            refused: refused.iter().map(UserId::as_str).collect(),
        },
        ServerEvent::Call {
            request_id,
            conversation_id,
            call_id,
            from,
            notice,
        } => call_frame(request_id, conversation_id, call_id, from, notice),
        ServerEvent::Typing {
            conversation_id,
            user_id,
            started,
            expires_in_ms,
        } => OutFrame::Typing {
            conversation_id: conversation_id.to_string(),
            user_id: user_id.as_str(),
            state: if started { "start" } else { "stop" },
            expires_in_ms: started.then_some(expires_in_ms),
        },
        ServerEvent::Recording {
            conversation_id,
            notice,
        } => match notice {
            RecordingNotice::MediaStored {
                recording_id,
                call_id,
                bytes,
                content_type,
            } => OutFrame::RecordingMediaStored {
                conversation_id: conversation_id.to_string(),
                recording_id: recording_id.to_string(),
                call_id: call_id.to_string(),
                bytes: *bytes,
                content_type,
            },
            RecordingNotice::Erased {
                recording_id,
                call_id,
            } => OutFrame::RecordingErased {
                conversation_id: conversation_id.to_string(),
                recording_id: recording_id.to_string(),
                call_id: call_id.to_string(),
            },
        },
        ServerEvent::Hidden {
            request_id,
            conversation_id,
            message_id,
        } => OutFrame::Hidden {
            id: out_id(request_id),
            conversation_id: conversation_id.to_string(),
            message_id: message_id.to_string(),
        },
        ServerEvent::Pong { request_id } => OutFrame::Pong {
            id: out_id(request_id),
        },
        ServerEvent::Error { request_id, error } => {
            let wire = WireError::from(error);
            OutFrame::Error {
                id: out_id(request_id),
                code: wire.code,
                message: wire.message,
                retry_after_ms: wire.retry_after_ms,
            }
        }
    }
}

fn call_frame<'a>(
    request_id: Option<&'a RequestId>,
    conversation_id: ConversationId,
    call_id: CallId,
    from: &'a UserId,
    notice: &'a CallNotice,
) -> OutFrame<'a> {
    let (conversation_id, call_id) = (conversation_id.to_string(), call_id.to_string());
    let member = || CallMemberBody {
        conversation_id: conversation_id.clone(),
        call_id: call_id.clone(),
        user_id: from.as_str(),
    };
    match notice {
        CallNotice::Invited { kind, ringing } => OutFrame::CallInvited {
            id: out_id(request_id),
            conversation_id,
            call_id,
            kind: kind.as_str(),
            ringing: ringing.iter().map(UserId::as_str).collect(),
        },
        CallNotice::Ringing {
            kind,
            expires_in_ms,
        } => OutFrame::CallRinging {
            conversation_id,
            call_id,
            caller_id: from.as_str(),
            kind: kind.as_str(),
            expires_in_ms: *expires_in_ms,
        },
        CallNotice::RecordingRequested {
            recording_id,
            asked,
        } => OutFrame::RecordingRequested {
            id: out_id(request_id),
            conversation_id,
            call_id,
            recording_id: recording_id.to_string(),
            asked: asked.iter().map(UserId::as_str).collect(),
        },
        CallNotice::ConsentRequested {
            recording_id,
            expires_in_ms,
        } => OutFrame::ConsentRequested {
            conversation_id,
            call_id,
            recording_id: recording_id.to_string(),
            requested_by: from.as_str(),
            expires_in_ms: *expires_in_ms,
        },
        CallNotice::Accepted => OutFrame::CallAccepted(member()),
        CallNotice::Rejected => OutFrame::CallRejected(member()),
        CallNotice::Left => OutFrame::CallLeft(member()),
        CallNotice::Signal(SignalPayload::Offer { sdp }) => OutFrame::CallOffer {
            conversation_id,
            call_id,
            from_user_id: from.as_str(),
            sdp,
        },
        CallNotice::Signal(SignalPayload::Answer { sdp }) => OutFrame::CallAnswer {
            conversation_id,
            call_id,
            from_user_id: from.as_str(),
            sdp,
        },
        CallNotice::Signal(SignalPayload::IceCandidate {
            candidate,
            sdp_mid,
            sdp_mline_index,
        }) => OutFrame::CallIceCandidate {
            conversation_id,
            call_id,
            from_user_id: from.as_str(),
            candidate,
            sdp_mid: sdp_mid.as_deref(),
            sdp_mline_index: *sdp_mline_index,
        },
    }
}

fn event_frame(event: &ConversationEvent) -> OutFrame<'_> {
    let envelope = EventEnvelope::new(event);
    match &event.body {
        ConversationEventBody::MessageEdited { text, .. } => OutFrame::MessageEdited {
            envelope,
            text: text.as_deref(),
            edited_at: event.ts.as_millis(),
        },
        ConversationEventBody::MessageDeleted { mode, .. } => OutFrame::MessageDeleted {
            envelope,
            mode: mode.as_str(),
        },
        ConversationEventBody::ReactionAdded { emoji, count, .. } => OutFrame::ReactionAdded {
            envelope,
            emoji: emoji.as_str(),
            count: *count,
        },
        ConversationEventBody::ReactionRemoved { emoji, count, .. } => OutFrame::ReactionRemoved {
            envelope,
            emoji: emoji.as_str(),
            count: *count,
        },
        ConversationEventBody::MembersAdded { members } => OutFrame::MemberJoined {
            envelope,
            members: members.iter().map(MemberEventBody::new).collect(),
        },
        ConversationEventBody::MemberLeft { user_id, reason } => OutFrame::MemberLeft {
            envelope,
            user_id: user_id.as_str(),
            reason: reason.as_str(),
        },
        ConversationEventBody::RoleChanged { user_id, role } => OutFrame::MemberRoleChanged {
            envelope,
            user_id: user_id.as_str(),
            role: role.as_str(),
        },
        ConversationEventBody::OwnerChanged {
            previous_owner,
            owner,
        } => OutFrame::OwnerChanged {
            envelope,
            previous_owner: previous_owner.as_str(),
            owner: owner.as_str(),
        },
        ConversationEventBody::ConversationUpdated {
            title,
            description,
            avatar_url,
        } => OutFrame::ConversationUpdated {
            envelope,
            title: title.as_deref(),
            description: description.as_deref(),
            avatar_url: avatar_url.as_deref(),
        },
        ConversationEventBody::ConversationArchived { archived } => {
            OutFrame::ConversationArchived {
                envelope,
                archived: *archived,
            }
        }
        ConversationEventBody::CallStarted { call_id, kind } => OutFrame::CallStarted {
            envelope,
            call_id: call_id.to_string(),
            kind: kind.as_str(),
        },
        ConversationEventBody::RecordingStarted {
            recording_id,
            call_id,
        } => OutFrame::RecordingStarted {
            envelope,
            recording_id: recording_id.to_string(),
            call_id: call_id.to_string(),
        },
        ConversationEventBody::RecordingEnded {
            recording_id,
            call_id,
            reason,
            was_recording,
            duration_ms,
        } => OutFrame::RecordingEnded {
            envelope,
            recording_id: recording_id.to_string(),
            call_id: call_id.to_string(),
            reason: reason.as_str(),
            was_recording: *was_recording,
            duration_ms: *duration_ms,
        },
        ConversationEventBody::CallEnded {
            call_id,
            kind,
            reason,
            duration_ms,
            participants,
        } => OutFrame::CallEnded {
            envelope,
            call_id: call_id.to_string(),
            kind: kind.as_str(),
            reason: reason.as_str(),
            duration_ms: *duration_ms,
            participants: participants.iter().map(UserId::as_str).collect(),
        },
        ConversationEventBody::Moderated { action, .. } => {
            let Some(body) = ModerationEventBody::from_event(event) else {
                unreachable!("a Moderated body always makes a moderation event body")
            };
            match action {
                ModerationAction::Kick => OutFrame::ModerationKicked(body),
                ModerationAction::Ban => OutFrame::ModerationBanned(body),
                ModerationAction::Unban => OutFrame::ModerationUnbanned(body),
                ModerationAction::Mute => OutFrame::ModerationMuted(body),
                ModerationAction::Unmute => OutFrame::ModerationUnmuted(body),
            }
        }
    }
}

/// Encodes an error frame for a protocol-level problem (the reader task sends these itself).
pub fn encode_frame_error(frame_error: &FrameError) -> EncodedFrame {
    let wire = WireError::from(&frame_error.error);
    encode(&OutFrame::Error {
        id: out_id(frame_error.request_id.as_ref()),
        code: wire.code,
        message: wire.message,
        retry_after_ms: wire.retry_after_ms,
    })
}

/// Encodes an error frame for a typed wire error with no request id.
pub fn encode_wire_error(wire: &WireError) -> EncodedFrame {
    encode(&OutFrame::Error {
        id: None,
        code: wire.code,
        message: wire.message.clone(),
        retry_after_ms: wire.retry_after_ms,
    })
}

fn encode(frame: &OutFrame<'_>) -> EncodedFrame {
    // Serializing these plain structs to a String cannot fail.
    let text = serde_json::to_string(frame).unwrap_or_else(|_| {
        r#"{"type":"error","code":"unavailable","message":"encoding failed"}"#.to_owned()
    });
    EncodedFrame::from_text(text)
}

/// The JSON implementation of the engine's encoder port.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonEventEncoder;

impl EventEncoder for JsonEventEncoder {
    fn encode(&self, event: &ServerEvent<'_>) -> EncodedFrame {
        encode(&out_frame(event))
    }
}

#[cfg(test)]
mod tests;
