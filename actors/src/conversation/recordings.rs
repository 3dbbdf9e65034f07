//! The conversation actor's recordings of calls: asking for consent (and the deadline that
//! cancels a recording nobody refused in time), storing `recording.started`/`recording.ended` in
//! the seq stream, and writing each recording's metadata ([`RecordingRecord`]: consent trail,
//! start, stop) to the recording store, in order, before the actor's next message (a recording
//! whose metadata cannot be stored stops at once). Notices about a recording from outside (its
//! media stored, an erase) are passed on to the joined sessions from here too. The rules are
//! the engine's (`engine::call`'s recording consent); calls themselves are in `calls`.

use std::time::Duration;

use ractor::ActorRef;
use switchboard_engine::StoreError;
use switchboard_engine::call::{CallNotice, RecordingChange, RecordingEndReason};
use switchboard_engine::event::ServerEvent;
use switchboard_engine::ids::{CallId, RecordingId, UserId};
use switchboard_engine::operations::{ConversationEventBody, RecordingConsent};
use switchboard_engine::recording::{
    RecordingNotice, RecordingRecord, RecordingUpdate, RecordingUpdateOutcome,
};

use super::calls::millis;
use super::{CallMsg, ConversationActor, ConversationMsg, Ready};

/// How often a recording metadata write is tried.
const RECORDING_WRITE_ATTEMPTS: u32 = 2;
/// How long one try of a recording metadata write may take.
const RECORDING_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// A write of recording metadata the actor queued while handling a message.
pub(super) enum RecordingWrite {
    /// A recording started: its record, with every consent.
    Create(Box<RecordingRecord>),
    /// A change to a started recording.
    Update(RecordingId, RecordingUpdate),
}

impl ConversationActor {
    /// A recording's consent deadline passed.
    pub(super) fn handle_recording_deadline(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        call_id: CallId,
        recording_id: RecordingId,
    ) {
        let Some(requested_by) = ready
            .calls
            .active()
            .and_then(|call| call.recording.as_ref())
            .filter(|recording| recording.recording_id == recording_id)
            .map(|recording| recording.requested_by.clone())
        else {
            return;
        };
        if let Some(change) =
            ready
                .calls
                .recording_deadline(call_id, recording_id, self.context.clock.now())
        {
            self.store_recording_change(myself, ready, call_id, requested_by, change);
        }
    }

    /// Asks `asked` to consent to `recording_id`, and sets the deadline's timer.
    pub(super) fn ask_consent(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &Ready,
        call_id: CallId,
        recording_id: RecordingId,
        from: &UserId,
        asked: &[UserId],
    ) {
        let timeout = self.context.settings.call_recording_consent_timeout;
        let notice = CallNotice::ConsentRequested {
            recording_id,
            expires_in_ms: millis(timeout),
        };
        self.notify(ready, call_id, from, &notice, asked);
        myself.send_after(timeout, move || {
            ConversationMsg::Call(CallMsg::RecordingDeadline {
                call_id,
                recording_id,
            })
        });
    }

    /// Stores a recording's start or end in the seq stream (ids, reason and duration only),
    /// and queues what its metadata must learn (the record with every consent, a late consent,
    /// the stop) for [`Self::write_recordings`].
    pub(super) fn store_recording_change(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        call_id: CallId,
        actor_id: UserId,
        change: RecordingChange,
    ) {
        let now = self.context.clock.now();
        match change {
            RecordingChange::Started {
                recording_id,
                requested_by,
                consents,
            } => {
                let record = RecordingRecord::started(
                    recording_id,
                    call_id,
                    self.conversation_id(),
                    requested_by.clone(),
                    consents
                        .into_iter()
                        .map(|(user_id, at)| RecordingConsent { user_id, at })
                        .collect(),
                    now,
                );
                ready
                    .recording_writes
                    .push(RecordingWrite::Create(Box::new(record)));
                self.store_record(
                    myself,
                    ready,
                    requested_by,
                    &format!("recording.{recording_id}.started"),
                    ConversationEventBody::RecordingStarted {
                        recording_id,
                        call_id,
                    },
                );
            }
            RecordingChange::Consented {
                recording_id,
                user_id,
                at,
            } => ready.recording_writes.push(RecordingWrite::Update(
                recording_id,
                RecordingUpdate::Consented(RecordingConsent { user_id, at }),
            )),
            RecordingChange::Ended {
                recording_id,
                reason,
                by,
                was_recording,
                duration_ms,
            } => {
                if was_recording {
                    ready.recording_writes.push(RecordingWrite::Update(
                        recording_id,
                        RecordingUpdate::Stopped {
                            at: now,
                            reason,
                            by: by.clone(),
                        },
                    ));
                }
                self.store_record(
                    myself,
                    ready,
                    by.unwrap_or(actor_id),
                    &format!("recording.{recording_id}.ended"),
                    ConversationEventBody::RecordingEnded {
                        recording_id,
                        call_id,
                        reason,
                        was_recording,
                        duration_ms,
                    },
                );
            }
        }
    }

    /// Writes the queued recording metadata, in order, before the actor handles its next
    /// message (so a stop never overtakes its start). A write is tried twice, each try bounded
    /// by [`RECORDING_WRITE_TIMEOUT`]. A recording whose record cannot be created is stopped
    /// (`metadata_unavailable`): it must not run without its consent trail.
    pub(super) async fn write_recordings(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
    ) {
        while !ready.recording_writes.is_empty() {
            for write in std::mem::take(&mut ready.recording_writes) {
                match write {
                    RecordingWrite::Create(record) => {
                        if let Err(error) = self.create_recording_record(&record).await {
                            tracing::error!(
                                recording_id = %record.recording_id,
                                %error,
                                "a recording's metadata could not be stored; stopping it"
                            );
                            let now = self.context.clock.now();
                            if let Some(change) = ready.calls.abort_recording(
                                record.call_id,
                                record.recording_id,
                                RecordingEndReason::MetadataUnavailable,
                                now,
                            ) {
                                let requested_by = record.requested_by.clone();
                                self.store_recording_change(
                                    myself,
                                    ready,
                                    record.call_id,
                                    requested_by,
                                    change,
                                );
                            }
                        }
                    }
                    RecordingWrite::Update(recording_id, update) => {
                        self.update_recording_record(recording_id, update).await;
                    }
                }
            }
        }
    }

    pub(super) async fn create_recording_record(
        &self,
        record: &RecordingRecord,
    ) -> Result<(), String> {
        let mut last_error = String::new();
        for _ in 0..RECORDING_WRITE_ATTEMPTS {
            let attempt = tokio::time::timeout(
                RECORDING_WRITE_TIMEOUT,
                self.context
                    .recordings
                    .create_recording(self.tenant_id(), record),
            )
            .await;
            match attempt {
                // Already there: an earlier attempt whose answer was lost stored it.
                Ok(Ok(()) | Err(StoreError::AlreadyExists)) => return Ok(()),
                Ok(Err(error)) => last_error = error.to_string(),
                Err(_) => last_error = "timed out".to_owned(),
            }
        }
        Err(last_error)
    }

    pub(super) async fn update_recording_record(
        &self,
        recording_id: RecordingId,
        update: RecordingUpdate,
    ) {
        for _ in 0..RECORDING_WRITE_ATTEMPTS {
            let attempt = tokio::time::timeout(
                RECORDING_WRITE_TIMEOUT,
                self.context.recordings.update_recording(
                    self.tenant_id(),
                    recording_id,
                    update.clone(),
                ),
            )
            .await;
            match attempt {
                Ok(Ok(RecordingUpdateOutcome::Updated(_))) => return,
                // Erased by an administrator meanwhile (or its creation failed and it was
                // stopped): there is nothing to update.
                Ok(Ok(RecordingUpdateOutcome::NotFound)) => return,
                Ok(Ok(RecordingUpdateOutcome::Refused(error))) => {
                    tracing::warn!(%recording_id, %error, "a recording update was refused");
                    return;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%recording_id, %error, "a recording update failed");
                }
                Err(_) => tracing::warn!(%recording_id, "a recording update timed out"),
            }
        }
        tracing::error!(%recording_id, "a recording update was given up");
    }

    /// Tells the joined sessions what happened to a recording outside the seq stream. An erased
    /// recording that is still running here stops (`recording.ended`, reason `erased`): its
    /// consent trail is gone, so it must not go on.
    pub(super) fn pass_on_recording(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        notice: &RecordingNotice,
    ) {
        let frame = self.context.encoder.encode(&ServerEvent::Recording {
            conversation_id: self.conversation_id(),
            notice,
        });
        for link in ready.links.values() {
            link.outbound.push_if_room(frame.clone());
        }
        if let RecordingNotice::Erased {
            recording_id,
            call_id,
        } = notice
        {
            let requested_by = ready
                .calls
                .active()
                .and_then(|call| call.recording.as_ref())
                .filter(|recording| recording.recording_id == *recording_id)
                .map(|recording| recording.requested_by.clone());
            let now = self.context.clock.now();
            if let Some((requested_by, change)) = requested_by.zip(ready.calls.abort_recording(
                *call_id,
                *recording_id,
                RecordingEndReason::Erased,
                now,
            )) {
                self.store_recording_change(myself, ready, *call_id, requested_by, change);
            }
        }
    }
}
