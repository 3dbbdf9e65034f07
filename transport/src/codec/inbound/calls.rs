//! Call frames (`call.*`): invite, accept, reject, cancel, hang up, the WebRTC signals relayed
//! to one member (offer, answer, ICE candidate), and recording requests, consents and stops.

use std::borrow::Cow;

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::call::{CallAction, CallKind, SignalPayload};
use switchboard_engine::ids::{CallId, RecordingId, UserId};

use super::{Fields, Frame, Parsed, conversation_id};
use crate::codec::requests::required;

/// Every call frame starts with the conversation, checked first, then the action's fields.
fn call(
    frame: Frame<'_, '_>,
    build: impl FnOnce(Fields<'_>) -> Result<CallAction, Error>,
) -> Parsed {
    let Frame {
        mut fields,
        request_id,
    } = frame;
    let conversation_id = conversation_id(fields.conversation_id.take())?;
    let action = build(fields)?;
    Ok(ClientRequest::Call {
        request_id: request_id.take(),
        conversation_id,
        action,
    })
}

/// A call frame whose action names only the call.
fn on_call(frame: Frame<'_, '_>, action: fn(CallId) -> CallAction) -> Parsed {
    call(frame, |fields| Ok(action(call_id(fields.call_id)?)))
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

pub(super) fn invite(frame: Frame<'_, '_>) -> Parsed {
    call(frame, |fields| {
        Ok(CallAction::Invite {
            kind: CallKind::parse(&required(fields.call_kind, "kind")?)?,
        })
    })
}

pub(super) fn accept(frame: Frame<'_, '_>) -> Parsed {
    on_call(frame, |call_id| CallAction::Accept { call_id })
}

pub(super) fn reject(frame: Frame<'_, '_>) -> Parsed {
    on_call(frame, |call_id| CallAction::Reject { call_id })
}

pub(super) fn cancel(frame: Frame<'_, '_>) -> Parsed {
    on_call(frame, |call_id| CallAction::Cancel { call_id })
}

pub(super) fn hang_up(frame: Frame<'_, '_>) -> Parsed {
    on_call(frame, |call_id| CallAction::HangUp { call_id })
}

pub(super) fn request_recording(frame: Frame<'_, '_>) -> Parsed {
    on_call(frame, |call_id| CallAction::RequestRecording { call_id })
}

pub(super) fn answer_recording(frame: Frame<'_, '_>) -> Parsed {
    call(frame, |fields| {
        Ok(CallAction::AnswerRecording {
            call_id: call_id(fields.call_id)?,
            recording_id: recording_id(fields.recording_id)?,
            granted: required(fields.granted, "granted")?,
        })
    })
}

pub(super) fn stop_recording(frame: Frame<'_, '_>) -> Parsed {
    call(frame, |fields| {
        Ok(CallAction::StopRecording {
            call_id: call_id(fields.call_id)?,
            recording_id: recording_id(fields.recording_id)?,
        })
    })
}

pub(super) fn offer(frame: Frame<'_, '_>) -> Parsed {
    sdp_signal(frame, |sdp| SignalPayload::Offer { sdp })
}

pub(super) fn answer(frame: Frame<'_, '_>) -> Parsed {
    sdp_signal(frame, |sdp| SignalPayload::Answer { sdp })
}

/// `offer` and `answer`: a session description for one member of the call.
fn sdp_signal(frame: Frame<'_, '_>, payload: fn(String) -> SignalPayload) -> Parsed {
    call(frame, |fields| {
        Ok(CallAction::Signal {
            call_id: call_id(fields.call_id)?,
            to: to(fields.to_user_id)?,
            payload: payload(sdp(fields.sdp)?),
        })
    })
}

pub(super) fn ice_candidate(frame: Frame<'_, '_>) -> Parsed {
    call(frame, |fields| {
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
