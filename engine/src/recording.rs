//! What Switchboard keeps about each call recording, outside the conversation's seq stream, and
//! the two ports that keep it: [`RecordingStore`] (the metadata and the tenant's audit log) and
//! [`ObjectStore`] (the recorded media itself), which is the blob port of [`crate::blob`],
//! re-exported here with its types.
//!
//! A recording's metadata ([`RecordingRecord`]) is created when every participant has consented
//! and the recording starts. It holds the consent trail (who consented, when), the start and the
//! stop, where the recorder stored the media and the quality the recorder reported. The seq
//! stream keeps only that a recording started and ended, never the consent trail, so an erase
//! ([`RecordingStore::erase_recording`]) leaves no personal data of the recording behind: the
//! metadata goes, the media object goes (the caller deletes it first, under the deterministic
//! key [`ObjectKey::for_recording`]), and an [`AuditRecord`] that names only ids says who erased
//! it and when. Changes to a record are [`RecordingUpdate`]s that every adapter applies with the
//! same pure [`RecordingRecord::apply`], atomically with reading the record.
//!
//! Media goes into the [`ObjectStore`] as a stream: the caller hands over a [`ByteSource`] (an
//! upload's body, pulled chunk by chunk) and a size limit, and the store writes the chunks as
//! they come, with bounded memory, refusing the object once it passes the limit and leaving
//! nothing behind when anything fails.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::blob::{
    ByteRange, ByteSource, ByteStream, ChunksSource, ChunksStream, MAX_CONTENT_TYPE_BYTES,
    MAX_OBJECT_KEY_BYTES, ObjectBody, ObjectKey, ObjectRange, ObjectStore, WrittenObject,
    validate_content_type,
};
use crate::call::RecordingEndReason;
use crate::ids::{AuditId, CallId, ConversationId, RecordingId, TenantId, UserId};
use crate::operations::RecordingConsent;
use crate::time::Timestamp;
use crate::{Error, Result, StoreError};

/// The key of a recording's media.
impl ObjectKey {
    /// Where a recording's media is stored: one key per recording, so that an erase finds the
    /// object even when the metadata never learnt of it.
    pub fn for_recording(recording_id: RecordingId) -> Self {
        Self(format!("recordings/{recording_id}"))
    }
}

/// Where a recording's media is stored, as the object store reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object store's kind (`filesystem`, `s3`).
    pub backend: String,
    /// The object's full location in that store (`s3://bucket/…`, `file:…`).
    pub location: String,
    /// Its key within the tenant.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its media type.
    pub content_type: String,
    /// The lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// When it was stored.
    pub stored_at: Timestamp,
}

/// What the recorder measured of a recording. Every figure is optional: a recorder reports
/// what it knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RecordingQuality {
    /// Length of the recorded media, in milliseconds.
    pub media_duration_ms: Option<u64>,
    /// Average bitrate, in kilobits per second.
    pub average_bitrate_kbps: Option<u32>,
    /// Fraction of packets lost, from 0 to 1.
    pub packet_loss_ratio: Option<f64>,
    /// Mean interarrival jitter, in milliseconds.
    pub jitter_ms: Option<u32>,
    /// Video frames dropped.
    pub frames_dropped: Option<u64>,
    /// Video resolution as `WIDTHxHEIGHT`.
    pub resolution: Option<String>,
    /// When the recorder reported it (set by the server).
    pub reported_at: Timestamp,
}

impl RecordingQuality {
    /// Checks every figure's range.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first figure out of range.
    pub fn validate(&self) -> Result<()> {
        if let Some(ratio) = self.packet_loss_ratio
            && !(ratio.is_finite() && (0.0..=1.0).contains(&ratio))
        {
            return Err(Error::invalid(
                "packet_loss_ratio",
                "must be a number from 0 to 1",
            ));
        }
        if let Some(resolution) = &self.resolution {
            let valid = resolution.len() <= 11
                && resolution.split_once('x').is_some_and(|(width, height)| {
                    [width, height].iter().all(|side| {
                        !side.is_empty() && side.bytes().all(|byte| byte.is_ascii_digit())
                    })
                });
            if !valid {
                return Err(Error::invalid(
                    "resolution",
                    "must be WIDTHxHEIGHT, such as 1280x720",
                ));
            }
        }
        Ok(())
    }
}

/// Everything kept about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRecord {
    /// Its id.
    pub recording_id: RecordingId,
    /// The call it records.
    pub call_id: CallId,
    /// The conversation of the call.
    pub conversation_id: ConversationId,
    /// Who asked for it.
    pub requested_by: UserId,
    /// Everyone recorded: each consented, and is in [`Self::consents`].
    pub participants: Vec<UserId>,
    /// Each consent with its time, in the order given (late joiners last).
    pub consents: Vec<RecordingConsent>,
    /// When it started (everyone had consented).
    pub started_at: Timestamp,
    /// When it stopped, once it has.
    pub stopped_at: Option<Timestamp>,
    /// Why it stopped, once it has.
    pub end_reason: Option<RecordingEndReason>,
    /// Who stopped it, when a participant did.
    pub stopped_by: Option<UserId>,
    /// Where the recorder stored the media, once it has.
    pub object: Option<StoredObject>,
    /// What the recorder measured, once it reported.
    pub quality: Option<RecordingQuality>,
}

impl RecordingRecord {
    /// The record of a recording that starts now with these consents.
    pub fn started(
        recording_id: RecordingId,
        call_id: CallId,
        conversation_id: ConversationId,
        requested_by: UserId,
        mut consents: Vec<RecordingConsent>,
        now: Timestamp,
    ) -> Self {
        consents.sort_by_key(|consent| consent.at);
        Self {
            recording_id,
            call_id,
            conversation_id,
            requested_by,
            participants: consents
                .iter()
                .map(|consent| consent.user_id.clone())
                .collect(),
            consents,
            started_at: now,
            stopped_at: None,
            end_reason: None,
            stopped_by: None,
            object: None,
            quality: None,
        }
    }

    /// Applies `update`, or says why it does not apply. Every adapter calls this atomically with
    /// reading the record, so concurrent updates (the conversation stopping it while the
    /// recorder uploads) never lose one another.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the media was already stored (a recording has one object);
    /// [`Error::Invalid`] if the quality report is out of range. A repeated consent or stop is
    /// not an error and changes nothing.
    pub fn apply(&mut self, update: RecordingUpdate) -> Result<()> {
        match update {
            RecordingUpdate::Consented(consent) => {
                if !self.participants.contains(&consent.user_id) {
                    self.participants.push(consent.user_id.clone());
                    self.consents.push(consent);
                }
            }
            RecordingUpdate::Stopped { at, reason, by } => {
                if self.stopped_at.is_none() {
                    self.stopped_at = Some(at);
                    self.end_reason = Some(reason);
                    self.stopped_by = by;
                }
            }
            RecordingUpdate::ObjectStored(object) => {
                if self.object.is_some() {
                    return Err(Error::Conflict {
                        reason: "the recording's media is already stored".to_owned(),
                    });
                }
                self.object = Some(object);
            }
            RecordingUpdate::QualityReported(quality) => {
                quality.validate()?;
                self.quality = Some(quality);
            }
        }
        Ok(())
    }
}

/// One change to a stored recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RecordingUpdate {
    /// A participant who joined the recorded call consented.
    Consented(RecordingConsent),
    /// The recording stopped.
    Stopped {
        /// When.
        at: Timestamp,
        /// Why.
        reason: RecordingEndReason,
        /// Who stopped it, when a participant did.
        by: Option<UserId>,
    },
    /// The recorder stored the media.
    ObjectStored(StoredObject),
    /// The recorder reported quality figures (the latest report replaces earlier ones).
    QualityReported(RecordingQuality),
}

/// What [`RecordingStore::update_recording`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordingUpdateOutcome {
    /// Applied; the record as it is now.
    Updated(Box<RecordingRecord>),
    /// The tenant has no such recording (never had, or it was erased).
    NotFound,
    /// [`RecordingRecord::apply`] refused it; nothing changed.
    Refused(Error),
}

/// What the other sessions of a conversation hear about its recordings outside the seq
/// stream: the recorder stored the media, or an administrator erased the recording. It goes to
/// the conversation's actor on this node and, in a scale-out deployment, over the cluster bus
/// to the other nodes ([`crate::ports::ClusterNotice::Recording`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordingNotice {
    /// The recorder stored the media.
    MediaStored {
        /// The recording.
        recording_id: RecordingId,
        /// Its call.
        call_id: CallId,
        /// The media's size in bytes.
        bytes: u64,
        /// The media's type.
        content_type: String,
    },
    /// An administrator erased the recording: its metadata and media are gone.
    Erased {
        /// The recording.
        recording_id: RecordingId,
        /// Its call.
        call_id: CallId,
    },
}

/// Which recordings to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordingFilter {
    /// Only the recordings of this conversation.
    pub conversation_id: Option<ConversationId>,
}

/// What an audited action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    /// An administrator erased a recording: its metadata and its media object.
    RecordingErased {
        /// The recording.
        recording_id: RecordingId,
        /// Its call.
        call_id: CallId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// Whether a media object was found and deleted.
        object_erased: bool,
    },
}

/// One entry of a tenant's audit log. It names ids only, never what was erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its id (time-ordered).
    pub audit_id: AuditId,
    /// When.
    pub at: Timestamp,
    /// Who did it.
    pub actor_id: UserId,
    /// What was done.
    pub action: AuditAction,
}

/// Recording metadata and the tenant's audit log.
///
/// # Contract (checked by the conformance suite in `storage/tests/recordings.rs`)
/// - Every method is scoped by tenant; one tenant never sees, changes or erases another's.
/// - [`RecordingStore::create_recording`] stores a new record, durably when it returns `Ok`;
///   creating an id that exists gives [`StoreError::AlreadyExists`] and changes nothing.
/// - [`RecordingStore::update_recording`] applies [`RecordingRecord::apply`] atomically with
///   reading the record: concurrent updates each see the other's result.
/// - [`RecordingStore::recordings`] lists newest first (by id), `before` excluded, at most
///   `limit`.
/// - [`RecordingStore::erase_recording`] removes the record and appends the audit record in one
///   atomic write; a missing record gives `None` and writes no audit record. After it, the
///   record is gone from every read, and updates find nothing.
/// - [`RecordingStore::audit_log`] lists newest first, `before` excluded, at most `limit`.
#[async_trait]
pub trait RecordingStore: Send + Sync + 'static {
    /// Stores the record of a recording that started.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the id is taken; [`StoreError::Unavailable`] if the
    /// backend failed.
    async fn create_recording(
        &self,
        tenant_id: &TenantId,
        record: &RecordingRecord,
    ) -> std::result::Result<(), StoreError>;

    /// Applies one change to a record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn update_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        update: RecordingUpdate,
    ) -> std::result::Result<RecordingUpdateOutcome, StoreError>;

    /// One record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
    ) -> std::result::Result<Option<RecordingRecord>, StoreError>;

    /// A page of records, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn recordings(
        &self,
        tenant_id: &TenantId,
        filter: RecordingFilter,
        before: Option<RecordingId>,
        limit: usize,
    ) -> std::result::Result<Vec<RecordingRecord>, StoreError>;

    /// Removes a record and appends `audit` in one atomic write; returns the removed record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed (then nothing changed).
    async fn erase_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        audit: &AuditRecord,
    ) -> std::result::Result<Option<RecordingRecord>, StoreError>;

    /// A page of the tenant's audit log, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn audit_log(
        &self,
        tenant_id: &TenantId,
        before: Option<AuditId>,
        limit: usize,
    ) -> std::result::Result<Vec<AuditRecord>, StoreError>;
}

#[cfg(test)]
mod tests;
