//! The recordings API of [`System`]: what administrators and recorders do with the metadata
//! of call recordings and their media, outside any conversation actor.
//!
//! The conversation actor creates a recording's record when it starts and records its stop
//! (`conversation/calls.rs`); everything here comes over HTTP: listing and reading records,
//! the recorder storing the media and reporting quality, reading the media back, and the GDPR
//! erase. Who may call what (the token's roles) is the transport's to check; every call here is
//! scoped by the caller's tenant, so no key or id ever reaches another tenant's data.
//!
//! Erase order is what makes "nothing left behind" hold even when a step fails: the media
//! object is deleted first (under the recording's one deterministic key, so it is found even if
//! the record never learnt of it), then the record is removed together with its audit record.
//! A failure after the first step leaves a record without media, and repeating the erase
//! finishes it. An upload checks everything that can refuse it before it reads a byte of the
//! body, then streams the body into the object store; one that races an erase finds the record
//! gone after storing the object and deletes the object again. Both tell the conversation's sessions (on this node, and on
//! the others over the cluster bus) with a `recording.*` notice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use switchboard_engine::Error;
use switchboard_engine::ids::{AuditId, ConversationId, RecordingId, TenantId};
use switchboard_engine::ports::ClusterNotice;
use switchboard_engine::recording::{
    AuditAction, AuditRecord, ByteRange, ByteSource, ObjectKey, ObjectRange, ObjectStore,
    RecordingFilter, RecordingNotice, RecordingQuality, RecordingRecord, RecordingStore,
    RecordingUpdate, RecordingUpdateOutcome, StoredObject, validate_content_type,
};

use super::System;
use crate::conversation::ConversationHandle;
use crate::conversations::ConversationKey;
use crate::session::Identity;
use crate::uploads::{OBJECT_TIMEOUT, PacedSource, bounded};

/// Where recordings are kept: their metadata and audit log, and their media.
#[derive(Clone)]
pub struct RecordingPorts {
    /// Metadata and the audit log.
    pub store: Arc<dyn RecordingStore>,
    /// Media objects.
    pub objects: Arc<dyn ObjectStore>,
}

/// The recordings-specific state of a [`System`].
pub(super) struct Recordings {
    pub(super) ports: RecordingPorts,
    /// Recordings whose media is being uploaded through this node: a second upload of the
    /// same recording at once is refused rather than racing the first for the one key.
    uploads: Mutex<HashSet<(TenantId, RecordingId)>>,
}

impl Recordings {
    pub(super) fn new(ports: RecordingPorts) -> Self {
        Self {
            ports,
            uploads: Mutex::new(HashSet::new()),
        }
    }
}

/// Releases an upload's claim on its recording when dropped.
struct UploadClaim<'a> {
    uploads: &'a Mutex<HashSet<(TenantId, RecordingId)>>,
    key: (TenantId, RecordingId),
}

impl Drop for UploadClaim<'_> {
    fn drop(&mut self) {
        self.uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// A page of recordings, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingsPage {
    /// The records.
    pub recordings: Vec<RecordingRecord>,
    /// The cursor of the next (older) page, when the page was full.
    pub next: Option<RecordingId>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
    /// The cursor of the next (older) page, when the page was full.
    pub next: Option<AuditId>,
}

impl System {
    fn recording_store(&self) -> &Arc<dyn RecordingStore> {
        &self.recordings.ports.store
    }

    fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.recordings.ports.objects
    }

    async fn stored_recording(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
    ) -> Result<RecordingRecord, Error> {
        bounded(
            self.settings.call_timeout,
            "reading a recording",
            self.recording_store()
                .recording(&identity.tenant_id, recording_id),
        )
        .await?
        .ok_or(Error::NotFound)
    }

    /// A page of the tenant's recordings, newest first, at most `limit`.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn recordings(
        &self,
        identity: &Identity,
        filter: RecordingFilter,
        before: Option<RecordingId>,
        limit: usize,
    ) -> Result<RecordingsPage, Error> {
        let recordings = bounded(
            self.settings.call_timeout,
            "listing recordings",
            self.recording_store()
                .recordings(&identity.tenant_id, filter, before, limit),
        )
        .await?;
        let next = (recordings.len() == limit)
            .then(|| recordings.last().map(|record| record.recording_id))
            .flatten();
        Ok(RecordingsPage { recordings, next })
    }

    /// One of the tenant's recordings.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the tenant has no such recording; [`Error::Unavailable`] if the
    /// store fails.
    pub async fn recording(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
    ) -> Result<RecordingRecord, Error> {
        self.stored_recording(identity, recording_id).await
    }

    /// A recording's media, with what the record says of it: `range` of its bytes, streamed
    /// from the object store as the caller pulls them (never held whole).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such recording or it has no media yet;
    /// [`Error::Unavailable`] if a store fails.
    pub async fn recording_media(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
        range: ByteRange,
    ) -> Result<(StoredObject, ObjectRange), Error> {
        let record = self.stored_recording(identity, recording_id).await?;
        let object = record.object.ok_or(Error::NotFound)?;
        let opened = bounded(
            OBJECT_TIMEOUT,
            "reading a recording's media",
            self.objects()
                .get_range(&identity.tenant_id, &object.key, range),
        )
        .await?
        .ok_or(Error::NotFound)?;
        Ok((object, opened))
    }

    /// Stores a recording's media, as its recorder uploads it, and records where.
    ///
    /// Everything that can refuse the upload is checked before the first byte is read from
    /// `media`: the media type, that no other upload of the recording is running through this
    /// node, that the recording exists in the caller's tenant and has no media yet. Then the
    /// bytes stream into the object store (at most `max_bytes`; a source that sends nothing for
    /// [`UPLOAD_IDLE_TIMEOUT`] fails), which holds a bounded part of them at a time and keeps
    /// nothing if anything fails.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad media type, or a body that broke off or stalled (field
    /// `media`); [`Error::NotFound`] if there is no such recording (or it was erased during the
    /// upload); [`Error::Conflict`] if its media is already stored or being uploaded;
    /// [`Error::TooLarge`] (field `media`) past `max_bytes`; [`Error::Unavailable`] if a store
    /// fails.
    pub async fn store_recording_media(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
        content_type: String,
        media: &mut dyn ByteSource,
        max_bytes: u64,
    ) -> Result<RecordingRecord, Error> {
        validate_content_type(&content_type)?;
        let tenant_id = &identity.tenant_id;
        let claim_key = (tenant_id.clone(), recording_id);
        let claimed = self
            .recordings
            .uploads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(claim_key.clone());
        if !claimed {
            return Err(Error::Conflict {
                reason: "the recording's media is being uploaded".to_owned(),
            });
        }
        let _claim = UploadClaim {
            uploads: &self.recordings.uploads,
            key: claim_key,
        };
        let record = self.stored_recording(identity, recording_id).await?;
        if record.object.is_some() {
            return Err(Error::Conflict {
                reason: "the recording's media is already stored".to_owned(),
            });
        }
        // Only now is the body read.
        let key = ObjectKey::for_recording(recording_id);
        let mut media = PacedSource::new(media);
        let written = self
            .objects()
            .put_stream(tenant_id, &key, &content_type, &mut media, max_bytes)
            .await?;
        let object = StoredObject {
            backend: self.objects().backend().to_owned(),
            location: self.objects().location(tenant_id, &key),
            key: key.clone(),
            bytes: written.bytes,
            content_type,
            sha256: written.sha256,
            stored_at: self.ids.clock().now(),
        };
        let outcome = bounded(
            self.settings.call_timeout,
            "recording where the media is",
            self.recording_store().update_recording(
                tenant_id,
                recording_id,
                RecordingUpdate::ObjectStored(object.clone()),
            ),
        )
        .await;
        match outcome {
            Ok(RecordingUpdateOutcome::Updated(record)) => {
                self.tell_conversation(
                    tenant_id,
                    record.conversation_id,
                    RecordingNotice::MediaStored {
                        recording_id,
                        call_id: record.call_id,
                        bytes: object.bytes,
                        content_type: object.content_type,
                    },
                )
                .await;
                Ok(*record)
            }
            Ok(RecordingUpdateOutcome::NotFound) => {
                // Erased while the bytes were on their way: they must not outlive it.
                self.delete_media(tenant_id, &key).await?;
                Err(Error::NotFound)
            }
            Ok(RecordingUpdateOutcome::Refused(error)) => Err(error),
            Err(error) => Err(error),
        }
    }

    /// Records the quality figures a recorder measured (the latest report replaces earlier
    /// ones).
    ///
    /// # Errors
    /// [`Error::Invalid`] if a figure is out of range; [`Error::NotFound`] if there is no such
    /// recording; [`Error::Unavailable`] if the store fails.
    pub async fn report_recording_quality(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
        mut quality: RecordingQuality,
    ) -> Result<RecordingRecord, Error> {
        quality.reported_at = self.ids.clock().now();
        quality.validate()?;
        let outcome = bounded(
            self.settings.call_timeout,
            "recording quality figures",
            self.recording_store().update_recording(
                &identity.tenant_id,
                recording_id,
                RecordingUpdate::QualityReported(quality),
            ),
        )
        .await?;
        match outcome {
            RecordingUpdateOutcome::Updated(record) => Ok(*record),
            RecordingUpdateOutcome::NotFound => Err(Error::NotFound),
            RecordingUpdateOutcome::Refused(error) => Err(error),
        }
    }

    /// Erases a recording for good: its media object, then its metadata together with an audit
    /// record naming `identity` as who erased it. Returns the audit record.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such recording; [`Error::Unavailable`] if a store
    /// fails (what was already erased stays erased; repeating the call finishes the job).
    pub async fn erase_recording(
        &self,
        identity: &Identity,
        recording_id: RecordingId,
    ) -> Result<AuditRecord, Error> {
        let tenant_id = &identity.tenant_id;
        let found = self.stored_recording(identity, recording_id).await;
        let key = match &found {
            Ok(RecordingRecord {
                object: Some(object),
                ..
            }) => object.key.clone(),
            Ok(_) | Err(Error::NotFound) => ObjectKey::for_recording(recording_id),
            // The store could not say: erase nothing yet.
            Err(error) => return Err(error.clone()),
        };
        // The object goes first, and also when the record is missing: an upload that crashed
        // between storing its bytes and recording them left them under this key.
        let object_erased = self.delete_media(tenant_id, &key).await?;
        let record = found?;
        let audit = AuditRecord {
            audit_id: self.ids.audit_id(),
            at: self.ids.clock().now(),
            actor_id: identity.user_id.clone(),
            action: AuditAction::RecordingErased {
                recording_id,
                call_id: record.call_id,
                conversation_id: record.conversation_id,
                object_erased,
            },
        };
        let erased = bounded(
            self.settings.call_timeout,
            "erasing a recording",
            self.recording_store()
                .erase_recording(tenant_id, recording_id, &audit),
        )
        .await?;
        if erased.is_none() {
            // Another erase got there first; its audit record stands.
            return Err(Error::NotFound);
        }
        tracing::info!(%tenant_id, %recording_id, erased_by = %identity.user_id, "recording erased");
        self.tell_conversation(
            tenant_id,
            record.conversation_id,
            RecordingNotice::Erased {
                recording_id,
                call_id: record.call_id,
            },
        )
        .await;
        Ok(audit)
    }

    /// A page of the tenant's audit log, newest first.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails.
    pub async fn audit_log(
        &self,
        identity: &Identity,
        before: Option<AuditId>,
        limit: usize,
    ) -> Result<AuditPage, Error> {
        let records = bounded(
            self.settings.call_timeout,
            "reading the audit log",
            self.recording_store()
                .audit_log(&identity.tenant_id, before, limit),
        )
        .await?;
        let next = (records.len() == limit)
            .then(|| records.last().map(|record| record.audit_id))
            .flatten();
        Ok(AuditPage { records, next })
    }

    /// Whether the object store answers (part of [`System::ready`]).
    pub(super) async fn objects_ready(&self) -> Result<(), Error> {
        match tokio::time::timeout(self.settings.call_timeout, self.objects().ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Error::unavailable(format!("object store: {error}"))),
            Err(_) => Err(Error::unavailable(
                "the object store did not answer in time",
            )),
        }
    }

    async fn delete_media(&self, tenant_id: &TenantId, key: &ObjectKey) -> Result<bool, Error> {
        bounded(
            OBJECT_TIMEOUT,
            "deleting a recording's media",
            self.objects().delete_object(tenant_id, key),
        )
        .await
    }

    /// Tells the conversation's joined sessions on this node (if its actor is running) and on
    /// every other node (over the cluster bus).
    async fn tell_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        notice: RecordingNotice,
    ) {
        if let Some(bus) = &self.cluster {
            bus.publish(
                tenant_id,
                conversation_id,
                ClusterNotice::Recording(notice.clone()),
            );
        }
        let key = ConversationKey {
            tenant_id: tenant_id.clone(),
            conversation_id,
        };
        if let Ok(Some(actor)) = self
            .handles
            .conversations
            .lookup(key, self.settings.call_timeout)
            .await
        {
            ConversationHandle::new(actor).recording_notice(notice);
        }
    }
}
