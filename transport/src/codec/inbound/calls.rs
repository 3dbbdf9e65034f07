//! Call frames (`call.*`): invite, accept, reject, cancel, hang up, the WebRTC signals relayed
//! to one member (offer, answer, ICE candidate), and recording requests, consents and stops.

use std::borrow::Cow;

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::call::{CallAction, CallKind, SignalPayload};
use switchboard_engine::ids::{CallId, RecordingId, RequestId, UserId};

use super::{Fields, conversation_id};
use crate::codec::requests::required;

/// Every call frame starts with the conversation, checked first, then the action's fields.
fn call(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
    build: impl FnOnce(Fields<'_>) -> Result<CallAction, Error>,
) -> Result<ClientRequest, Error> {
    let mut fields = fields;
    let conversation_id = conversation_id(fields.conversation_id.take())?;
    let action = build(fields)?;
    Ok(ClientRequest::Call {
        request_id: request_id.take(),
        conversation_id,
        action,
    })
}

/// The required `call_id`.
fn call_id(value: Option<Cow<'_, str>>) -> Result<CallId, Error> {
    CallId::parse(&required(value, "call_id")?)
        .map_err(|_| Error::invalid("call_id", "must be a call id"))
}

/// The required `to_user_id` of a signal.
fn to(value: Option<Cow<'_, str>>) -> Result<UserId, Error> {
    UserId::parse(&required(value, "to_user_id")?)
}

/// The required `recording_id`.
fn recording_id(value: Option<Cow<'_, str>>) -> Result<RecordingId, Error> {
    RecordingId::parse(&required(value, "recording_id")?)
        .map_err(|_| Error::invalid("recording_id", "must be a recording id"))
}

/// The required `sdp` of an offer or an answer.
fn sdp(value: Option<Cow<'_, str>>) -> Result<String, Error> {
    required(value, "sdp").map(Cow::into_owned)
}

pub(super) fn invite(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Invite {
            kind: CallKind::parse(&required(fields.call_kind, "kind")?)?,
        })
    })
}

pub(super) fn accept(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Accept {
            call_id: call_id(fields.call_id)?,
        })
    })
}

pub(super) fn reject(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Reject {
            call_id: call_id(fields.call_id)?,
        })
    })
}

pub(super) fn cancel(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Cancel {
            call_id: call_id(fields.call_id)?,
        })
    })
}

pub(super) fn hang_up(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::HangUp {
            call_id: call_id(fields.call_id)?,
        })
    })
}

pub(super) fn request_recording(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::RequestRecording {
            call_id: call_id(fields.call_id)?,
        })
    })
}

pub(super) fn answer_recording(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::AnswerRecording {
            call_id: call_id(fields.call_id)?,
            recording_id: recording_id(fields.recording_id)?,
            granted: required(fields.granted, "granted")?,
        })
    })
}

pub(super) fn stop_recording(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::StopRecording {
            call_id: call_id(fields.call_id)?,
            recording_id: recording_id(fields.recording_id)?,
        })
    })
}

pub(super) fn offer(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Signal {
            call_id: call_id(fields.call_id)?,
            to: to(fields.to_user_id)?,
            payload: SignalPayload::Offer {
                sdp: sdp(fields.sdp)?,
            },
        })
    })
}

pub(super) fn answer(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Signal {
            call_id: call_id(fields.call_id)?,
            to: to(fields.to_user_id)?,
            payload: SignalPayload::Answer {
                sdp: sdp(fields.sdp)?,
            },
        })
    })
}

pub(super) fn ice_candidate(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    call(fields, request_id, |fields| {
        Ok(CallAction::Signal {
            call_id: call_id(fields.call_id)?,
            to: to(fields.to_user_id)?,
            payload: SignalPayload::IceCandidate {
                candidate: required(fields.candidate, "candidate").map(Cow::into_owned)?,
                sdp_mid: fields.sdp_mid.map(Cow::into_owned),
                sdp_mline_index: fields.sdp_mline_index,
            },
        })
    })
}
