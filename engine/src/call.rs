//! Calls: the rules of one conversation's audio or video call, as a pure state machine.
//!
//! A conversation has at most one active call. A member invites ([`CallBoard::invite`]); the
//! other members ring until they accept or reject, or until the ringing time is up. The call
//! is answered when a first invitee accepts. Offers, answers and ICE candidates pass only
//! between the call's current participants ([`CallBoard::check_signal`]). A call ends when it is
//! rejected by every invitee before anyone answered, cancelled by its initiator before it was
//! answered, not answered in time, or when fewer than two participants remain and nobody is
//! ringing (hang-ups, and participants whose sessions all disconnected for longer than the
//! grace period). Each end is a [`CallEnded`] record the caller stores in the conversation's
//! seq stream, with the call's duration and everyone who took part.
//!
//! Recording needs everyone's consent ([`CallBoard::request_recording`]): it starts only when
//! every participant consented before the deadline; a refusal or the deadline cancels it; a
//! participant who joins a recorded call must consent too, or the recording stops. Each start
//! and end is a [`RecordingChange`] the caller stores.
//!
//! Membership is the caller's to check (the conversation core knows it); time is passed in.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{CallId, RecordingId, UserId};
use crate::time::Timestamp;

mod recording_consent;

use recording_consent::recording_end;
pub use recording_consent::{Recording, RecordingChange, RecordingEndReason};

/// Audio only, or with video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallKind {
    /// Audio only.
    Audio,
    /// Audio and video.
    Video,
}

impl CallKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Audio => "audio",
            CallKind::Video => "video",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything but `audio` or `video`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "audio" => Ok(CallKind::Audio),
            "video" => Ok(CallKind::Video),
            _ => Err(Error::invalid("kind", "must be \"audio\" or \"video\"")),
        }
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallEndReason {
    /// Every invitee rejected it before anyone answered.
    Rejected,
    /// The initiator cancelled it before anyone answered.
    Cancelled,
    /// Nobody answered within the ringing time.
    NoAnswer,
    /// Fewer than two participants remained.
    HungUp,
}

impl CallEndReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEndReason::Rejected => "rejected",
            CallEndReason::Cancelled => "cancelled",
            CallEndReason::NoAnswer => "no_answer",
            CallEndReason::HungUp => "hung_up",
        }
    }
}

/// What passes between two participants, opaque to the engine (WebRTC's own formats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalPayload {
    /// An SDP offer.
    Offer {
        /// The session description.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The session description.
        sdp: String,
    },
    /// An ICE candidate (`RTCIceCandidateInit`).
    IceCandidate {
        /// The candidate line.
        candidate: String,
        /// The media stream identification tag.
        sdp_mid: Option<String>,
        /// The index of the media description.
        sdp_mline_index: Option<u32>,
    },
}

/// What a member asks of a conversation's call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Start a call that rings for the other members.
    Invite {
        /// Audio or video.
        kind: CallKind,
    },
    /// Answer a ringing call.
    Accept {
        /// Which.
        call_id: CallId,
    },
    /// Decline a ringing call.
    Reject {
        /// Which.
        call_id: CallId,
    },
    /// Withdraw an invitation nobody answered (the caller only).
    Cancel {
        /// Which.
        call_id: CallId,
    },
    /// Leave the call.
    HangUp {
        /// Which.
        call_id: CallId,
    },
    /// Ask every other participant to consent to recording the call.
    RequestRecording {
        /// Which call.
        call_id: CallId,
    },
    /// Consent to a recording, or refuse.
    AnswerRecording {
        /// Which call.
        call_id: CallId,
        /// Which recording.
        recording_id: RecordingId,
        /// Consent (true) or refusal.
        granted: bool,
    },
    /// Stop a recording (or withdraw the request).
    StopRecording {
        /// Which call.
        call_id: CallId,
        /// Which recording.
        recording_id: RecordingId,
    },
    /// Pass an offer, an answer or an ICE candidate to another participant.
    Signal {
        /// Which call.
        call_id: CallId,
        /// To whom.
        to: UserId,
        /// What.
        payload: SignalPayload,
    },
}

/// A live call notice for the sessions it concerns (never stored; the start and end of every
/// call are stored events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallNotice {
    /// To the caller: the call was made and rings for these members.
    Invited {
        /// Audio or video.
        kind: CallKind,
        /// Who it rings for.
        ringing: Vec<UserId>,
    },
    /// To each invitee: a call rings.
    Ringing {
        /// Audio or video.
        kind: CallKind,
        /// How long it rings, in milliseconds.
        expires_in_ms: u64,
    },
    /// A member joined the call.
    Accepted,
    /// An invitee declined.
    Rejected,
    /// A participant left a call that goes on.
    Left,
    /// An offer, answer or ICE candidate from another participant.
    Signal(SignalPayload),
    /// To the member who asked: the recording was asked for from these participants.
    RecordingRequested {
        /// Which recording.
        recording_id: RecordingId,
        /// Whose consent is awaited.
        asked: Vec<UserId>,
    },
    /// To a participant: consent to this recording is asked of you.
    ConsentRequested {
        /// Which recording.
        recording_id: RecordingId,
        /// How long you have, in milliseconds.
        expires_in_ms: u64,
    },
}

/// The active call of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Its id.
    pub call_id: CallId,
    /// Audio or video.
    pub kind: CallKind,
    /// Who invited.
    pub initiator: UserId,
    /// When the invitation was made.
    pub started_at: Timestamp,
    /// When the first invitee accepted.
    pub answered_at: Option<Timestamp>,
    /// When ringing stops.
    pub ringing_until: Timestamp,
    /// Who is in the call now.
    pub participants: BTreeSet<UserId>,
    /// Who is invited and has not answered.
    pub ringing: BTreeSet<UserId>,
    /// Everyone who has been in the call.
    pub took_part: BTreeSet<UserId>,
    /// The recording asked for or running, if any.
    pub recording: Option<Recording>,
}

/// A call that ended, as stored in the conversation's seq stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnded {
    /// Its id.
    pub call_id: CallId,
    /// Audio or video.
    pub kind: CallKind,
    /// Why.
    pub reason: CallEndReason,
    /// From the first answer to the end, in milliseconds; 0 if nobody answered.
    pub duration_ms: u64,
    /// Everyone who was in the call, initiator included.
    pub participants: Vec<UserId>,
    /// The end of the call's recording, if one was asked for or running.
    pub recording: Option<RecordingChange>,
}

/// What a hang-up or a departure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// The user left; the call goes on.
    Left,
    /// The call ended.
    Ended(CallEnded),
}

/// One conversation's call, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallBoard {
    call: Option<Call>,
}

fn no_such_call() -> Error {
    Error::NotFound
}

impl CallBoard {
    /// The active call.
    pub fn active(&self) -> Option<&Call> {
        self.call.as_ref()
    }

    /// `initiator` invites `invitees` (the other members) to a new call that rings for
    /// `ringing_ms`.
    ///
    /// # Errors
    /// [`Error::Conflict`] if a call is already active; [`Error::Invalid`] if nobody else can
    /// be invited.
    pub fn invite(
        &mut self,
        call_id: CallId,
        initiator: UserId,
        kind: CallKind,
        invitees: impl IntoIterator<Item = UserId>,
        now: Timestamp,
        ringing_ms: u64,
    ) -> Result<&Call> {
        if self.call.is_some() {
            return Err(Error::Conflict {
                reason: "a call is already active in this conversation".to_owned(),
            });
        }
        let ringing: BTreeSet<UserId> = invitees
            .into_iter()
            .filter(|user_id| *user_id != initiator)
            .collect();
        if ringing.is_empty() {
            return Err(Error::invalid(
                "conversation_id",
                "there is nobody else in the conversation to call",
            ));
        }
        let call = self.call.insert(Call {
            call_id,
            kind,
            initiator: initiator.clone(),
            started_at: now,
            answered_at: None,
            ringing_until: Timestamp(now.as_millis().saturating_add(ringing_ms)),
            participants: BTreeSet::from([initiator.clone()]),
            ringing,
            took_part: BTreeSet::from([initiator]),
            recording: None,
        });
        Ok(call)
    }

    fn call_mut(&mut self, call_id: CallId) -> Result<&mut Call> {
        self.call
            .as_mut()
            .filter(|call| call.call_id == call_id)
            .ok_or_else(no_such_call)
    }

    /// A ringing invitee accepts and joins. Returns the recording they must consent to, when
    /// the call is being recorded or a recording awaits consent (they have as long as anyone).
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call or `user_id` is not ringing.
    pub fn accept(
        &mut self,
        call_id: CallId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<Option<RecordingId>> {
        let call = self.call_mut(call_id)?;
        if !call.ringing.remove(user_id) {
            return Err(no_such_call());
        }
        call.participants.insert(user_id.clone());
        call.took_part.insert(user_id.clone());
        call.answered_at.get_or_insert(now);
        Ok(call.recording.as_mut().map(|recording| {
            recording.consents.insert(user_id.clone(), None);
            recording.consent_deadline = recording.consent_deadline.max(Timestamp(
                now.as_millis().saturating_add(recording.consent_ms),
            ));
            recording.recording_id
        }))
    }

    /// A ringing invitee declines. Returns the end of the call when that was the last invitee
    /// and nobody had answered.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call or `user_id` is not ringing.
    pub fn reject(
        &mut self,
        call_id: CallId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<Option<CallEnded>> {
        let call = self.call_mut(call_id)?;
        if !call.ringing.remove(user_id) {
            return Err(no_such_call());
        }
        if call.ringing.is_empty() && call.answered_at.is_none() {
            return Ok(self.end(CallEndReason::Rejected, now));
        }
        Ok(self.end_if_alone(now))
    }

    /// The initiator withdraws the invitation before anyone answered.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call; [`Error::Forbidden`] if
    /// `user_id` is not the initiator or someone already answered (hang up instead).
    pub fn cancel(
        &mut self,
        call_id: CallId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<CallEnded> {
        let call = self.call_mut(call_id)?;
        if call.initiator != *user_id {
            return Err(Error::Forbidden {
                reason: "only the caller may cancel a call".into(),
            });
        }
        if call.answered_at.is_some() {
            return Err(Error::Forbidden {
                reason: "the call was answered; hang up instead".into(),
            });
        }
        self.end(CallEndReason::Cancelled, now)
            .ok_or_else(no_such_call)
    }

    /// A participant leaves (hangs up, or their sessions stayed disconnected past the grace
    /// period). An initiator leaving a call nobody answered cancels it.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call or `user_id` is not in it.
    pub fn hang_up(
        &mut self,
        call_id: CallId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<Departure> {
        let call = self.call_mut(call_id)?;
        if !call.participants.remove(user_id) {
            return Err(no_such_call());
        }
        if let Some(recording) = call.recording.as_mut() {
            recording.consents.remove(user_id);
        }
        if call.answered_at.is_none() {
            return self
                .end(CallEndReason::Cancelled, now)
                .map(Departure::Ended)
                .ok_or_else(no_such_call);
        }
        Ok(match self.end_if_alone(now) {
            Some(ended) => Departure::Ended(ended),
            None => Departure::Left,
        })
    }

    /// Ringing time is up: invitees stop ringing, and a call nobody answered ends. Returns the
    /// users who stopped ringing and the end, if it ended. Nothing happens before the time or
    /// for another call.
    pub fn ringing_expired(
        &mut self,
        call_id: CallId,
        now: Timestamp,
    ) -> (Vec<UserId>, Option<CallEnded>) {
        let Ok(call) = self.call_mut(call_id) else {
            return (Vec::new(), None);
        };
        if now < call.ringing_until {
            return (Vec::new(), None);
        }
        let stopped: Vec<UserId> = std::mem::take(&mut call.ringing).into_iter().collect();
        if call.answered_at.is_none() {
            return (stopped, self.end(CallEndReason::NoAnswer, now));
        }
        (stopped, self.end_if_alone(now))
    }

    /// Whether `from` may send `signal` to `to` in `call_id`: both must be participants.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call or either user is not in it.
    pub fn check_signal(&self, call_id: CallId, from: &UserId, to: &UserId) -> Result<()> {
        let call = self
            .call
            .as_ref()
            .filter(|call| call.call_id == call_id)
            .ok_or_else(no_such_call)?;
        if from == to || !call.participants.contains(from) || !call.participants.contains(to) {
            return Err(no_such_call());
        }
        Ok(())
    }

    /// Ends the call when it was answered and fewer than two participants remain with nobody
    /// ringing.
    fn end_if_alone(&mut self, now: Timestamp) -> Option<CallEnded> {
        let call = self.call.as_ref()?;
        if call.answered_at.is_some() && call.participants.len() < 2 && call.ringing.is_empty() {
            self.end(CallEndReason::HungUp, now)
        } else {
            None
        }
    }

    /// Ends the active call (the callers have just looked at it, so there is one).
    fn end(&mut self, reason: CallEndReason, now: Timestamp) -> Option<CallEnded> {
        let mut call = self.call.take()?;
        let recording = call
            .recording
            .take()
            .map(|recording| recording_end(recording, RecordingEndReason::CallEnded, None, now));
        Some(CallEnded {
            recording,
            call_id: call.call_id,
            kind: call.kind,
            reason,
            duration_ms: call
                .answered_at
                .map_or(0, |answered_at| now.millis_since(answered_at)),
            participants: call.took_part.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests;
