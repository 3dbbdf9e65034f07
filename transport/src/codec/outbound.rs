//! Encoding: every server event becomes one JSON text frame, serialized once into an
//! [`EncodedFrame`] that fan-out shares between recipients (the engine's [`EventEncoder`] port).

use serde::Serialize;
use switchboard_engine::call::{CallNotice, SignalPayload};
use switchboard_engine::event::{AckOutcome, EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::ids::{CallId, ConversationId, RequestId, UserId};
use switchboard_engine::membership::ModerationAction;
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::recording::RecordingNotice;
use switchboard_engine::time::Timestamp;

use super::bodies::*;
use super::inbound::FrameError;
use crate::wire_error::WireError;

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

/// A call notice about one member (`call.accepted`, `call.rejected`, `call.left`).
#[derive(Debug, Serialize)]
pub struct CallMemberBody<'a> {
    conversation_id: String,
    call_id: String,
    user_id: &'a str,
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
