//! Recording a call: everyone's consent first, and the records of its start and end.
//!
//! A participant asks ([`CallBoard::request_recording`]) and every other participant is asked
//! to consent before a deadline. The recording starts only when every participant consented
//! ([`RecordingChange::Started`]); a refusal or the deadline cancels it; a participant who joins
//! a recorded call must consent too ([`RecordingChange::Consented`]), or the recording stops at
//! the deadline. Each start and end is a [`RecordingChange`] the caller stores. These are the
//! methods of [`CallBoard`] that concern the recording, kept apart from ringing and hanging up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CallBoard, no_such_call};
use crate::error::{Error, Result};
use crate::ids::{CallId, RecordingId, UserId};
use crate::time::Timestamp;

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

pub(super) fn recording_end(
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

impl CallBoard {
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

    pub(super) fn start_if_all_consented(
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
}
