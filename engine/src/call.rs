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
use std::collections::BTreeMap;

use crate::ids::{CallId, RecordingId, UserId};
use crate::time::Timestamp;

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

/// A recording of a call: asked for, then running once everyone consented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Its id.
    pub recording_id: RecordingId,
    /// Who asked for it.
    pub requested_by: UserId,
    /// Each participant's consent: when they gave it, `None` while awaited.
    pub consents: BTreeMap<UserId, Option<Timestamp>>,
    /// When the awaited consents must be in.
    pub consent_deadline: Timestamp,
    /// How long anyone has to consent, in milliseconds (a late joiner gets as long).
    pub consent_ms: u64,
    /// When it started, once everyone consented.
    pub started_at: Option<Timestamp>,
}

/// Why a recording ended (or never started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordingEndReason {
    /// A participant refused.
    Refused,
    /// Not everyone consented in time.
    ConsentTimeout,
    /// A participant stopped it.
    Stopped,
    /// The call ended.
    CallEnded,
    /// Its metadata (the consent trail) could not be stored, so it must not run.
    MetadataUnavailable,
    /// An administrator erased it while it ran.
    Erased,
}

impl RecordingEndReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingEndReason::Refused => "refused",
            RecordingEndReason::ConsentTimeout => "consent_timeout",
            RecordingEndReason::Stopped => "stopped",
            RecordingEndReason::CallEnded => "call_ended",
            RecordingEndReason::MetadataUnavailable => "metadata_unavailable",
            RecordingEndReason::Erased => "erased",
        }
    }
}

/// A recording that started or ended, for the caller to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingChange {
    /// Everyone consented: it runs from now.
    Started {
        /// Which.
        recording_id: RecordingId,
        /// Who asked.
        requested_by: UserId,
        /// Every participant's consent, with when it was given.
        consents: Vec<(UserId, Timestamp)>,
    },
    /// A participant who joined the call while it was recorded consented.
    Consented {
        /// Which.
        recording_id: RecordingId,
        /// Who.
        user_id: UserId,
        /// When.
        at: Timestamp,
    },
    /// It ended, or was cancelled before it started.
    Ended {
        /// Which.
        recording_id: RecordingId,
        /// Why.
        reason: RecordingEndReason,
        /// Who refused or stopped it, when someone did.
        by: Option<UserId>,
        /// Whether it had started.
        was_recording: bool,
        /// How long it ran, in milliseconds.
        duration_ms: u64,
    },
}

fn recording_end(
    recording: Recording,
    reason: RecordingEndReason,
    by: Option<UserId>,
    now: Timestamp,
) -> RecordingChange {
    RecordingChange::Ended {
        recording_id: recording.recording_id,
        reason,
        by,
        was_recording: recording.started_at.is_some(),
        duration_ms: recording
            .started_at
            .map_or(0, |started_at| now.millis_since(started_at)),
    }
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

    /// A participant asks to record the call; every other participant is asked to consent
    /// within `consent_ms`. Returns who is asked.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` is not the active call or `user_id` is not in it;
    /// [`Error::Conflict`] if a recording is already asked for or running; [`Error::Invalid`]
    /// before anyone answered.
    pub fn request_recording(
        &mut self,
        call_id: CallId,
        user_id: &UserId,
        recording_id: RecordingId,
        now: Timestamp,
        consent_ms: u64,
    ) -> Result<Vec<UserId>> {
        let call = self.call_mut(call_id)?;
        if !call.participants.contains(user_id) {
            return Err(no_such_call());
        }
        if call.recording.is_some() {
            return Err(Error::Conflict {
                reason: "a recording is already asked for or running in this call".to_owned(),
            });
        }
        if call.answered_at.is_none() {
            return Err(Error::invalid(
                "call_id",
                "the call has not been answered yet",
            ));
        }
        let consents: BTreeMap<UserId, Option<Timestamp>> = call
            .participants
            .iter()
            .map(|participant| {
                let given = (participant == user_id).then_some(now);
                (participant.clone(), given)
            })
            .collect();
        let asked = consents
            .iter()
            .filter(|(_, given)| given.is_none())
            .map(|(participant, _)| participant.clone())
            .collect();
        call.recording = Some(Recording {
            recording_id,
            requested_by: user_id.clone(),
            consents,
            consent_deadline: Timestamp(now.as_millis().saturating_add(consent_ms)),
            consent_ms,
            started_at: None,
        });
        Ok(asked)
    }

    /// A participant answers a consent request. Returns the start (the last consent), the end
    /// (a refusal), or `None` while consents are still awaited.
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` or `recording_id` is not the active one, or no consent
    /// is awaited from `user_id`.
    pub fn answer_recording(
        &mut self,
        call_id: CallId,
        recording_id: RecordingId,
        user_id: &UserId,
        granted: bool,
        now: Timestamp,
    ) -> Result<Option<RecordingChange>> {
        let call = self.call_mut(call_id)?;
        let recording = call
            .recording
            .as_mut()
            .filter(|recording| recording.recording_id == recording_id)
            .ok_or_else(no_such_call)?;
        match recording.consents.get_mut(user_id) {
            Some(given @ None) => {
                if granted {
                    *given = Some(now);
                } else {
                    let recording = call.recording.take().ok_or_else(no_such_call)?;
                    return Ok(Some(recording_end(
                        recording,
                        RecordingEndReason::Refused,
                        Some(user_id.clone()),
                        now,
                    )));
                }
            }
            _ => return Err(no_such_call()),
        }
        if recording.started_at.is_some() {
            // A late joiner consented to a recording that runs.
            return Ok(Some(RecordingChange::Consented {
                recording_id,
                user_id: user_id.clone(),
                at: now,
            }));
        }
        Ok(Self::start_if_all_consented(recording, now))
    }

    /// The consent deadline of `recording_id` passed: if a consent is still awaited, the
    /// recording is cancelled (or stopped, if it was running).
    pub fn recording_deadline(
        &mut self,
        call_id: CallId,
        recording_id: RecordingId,
        now: Timestamp,
    ) -> Option<RecordingChange> {
        let call = self.call_mut(call_id).ok()?;
        let recording = call
            .recording
            .as_ref()
            .filter(|recording| recording.recording_id == recording_id)?;
        if now < recording.consent_deadline {
            return None;
        }
        if !recording.consents.values().any(Option::is_none) {
            // Whoever was awaited left the call: everyone still in it consented.
            return call
                .recording
                .as_mut()
                .and_then(|recording| Self::start_if_all_consented(recording, now));
        }
        let recording = call.recording.take()?;
        Some(recording_end(
            recording,
            RecordingEndReason::ConsentTimeout,
            None,
            now,
        ))
    }

    /// A participant stops the recording (or withdraws the request).
    ///
    /// # Errors
    /// [`Error::NotFound`] if `call_id` or `recording_id` is not the active one or `user_id`
    /// is not in the call.
    pub fn stop_recording(
        &mut self,
        call_id: CallId,
        recording_id: RecordingId,
        user_id: &UserId,
        now: Timestamp,
    ) -> Result<RecordingChange> {
        let call = self.call_mut(call_id)?;
        if !call.participants.contains(user_id)
            || call
                .recording
                .as_ref()
                .is_none_or(|recording| recording.recording_id != recording_id)
        {
            return Err(no_such_call());
        }
        let recording = call.recording.take().ok_or_else(no_such_call)?;
        Ok(recording_end(
            recording,
            RecordingEndReason::Stopped,
            Some(user_id.clone()),
            now,
        ))
    }

    /// The recording stops for a reason outside the call: its metadata could not be stored
    /// ([`RecordingEndReason::MetadataUnavailable`]: a recording without its consent trail must
    /// not run) or an administrator erased it ([`RecordingEndReason::Erased`]). `None` if it is
    /// not the call's recording any more.
    pub fn abort_recording(
        &mut self,
        call_id: CallId,
        recording_id: RecordingId,
        reason: RecordingEndReason,
        now: Timestamp,
    ) -> Option<RecordingChange> {
        let call = self.call_mut(call_id).ok()?;
        if call.recording.as_ref()?.recording_id != recording_id {
            return None;
        }
        let recording = call.recording.take()?;
        Some(recording_end(recording, reason, None, now))
    }

    fn start_if_all_consented(
        recording: &mut Recording,
        now: Timestamp,
    ) -> Option<RecordingChange> {
        if recording.started_at.is_some() {
            return None;
        }
        let consents: Option<Vec<(UserId, Timestamp)>> = recording
            .consents
            .iter()
            .map(|(user_id, given)| given.map(|at| (user_id.clone(), at)))
            .collect();
        let consents = consents?;
        recording.started_at = Some(now);
        Some(RecordingChange::Started {
            recording_id: recording.recording_id,
            requested_by: recording.requested_by.clone(),
            consents,
        })
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
