//! Media: the files users upload and attach to messages (photos, voice notes, documents).
//!
//! This module holds the rules; the bytes live in the blob port ([`crate::blob`]) and the
//! records in a [`MediaStore`]. A media item is one [`MediaRecord`]: created when an upload is
//! declared (its length known up front, checked against the size limit and the quotas before a
//! byte is taken), `uploading` while its bytes arrive, possibly over many requests and nodes
//! (each write holds a short lease and must start at the offset the record has, so two writers
//! can never mix their bytes), then `complete` with its sniffed type and SHA-256, and finally
//! `deleted`, a tombstone the garbage collector removes with the objects.
//!
//! What lives where:
//! - [`attachment`]: what a message carries of the media it attaches, and who may attach what;
//! - [`file_name`]: the validated file name and the `Content-Disposition` it downloads with;
//! - [`sniff`]: the type read from the bytes and the tenant's allow-list;
//! - [`quota`]: per-tenant and per-user storage quotas;
//! - [`range`]: which bytes a download answers with (`Range`, `If-Range`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::blob::ObjectKey;
use crate::ids::{ConversationId, MediaId, TenantId, UserId};
use crate::time::Timestamp;
use crate::{Error, Result, StoreError};

pub mod attachment;
pub mod events;
pub mod file_name;
pub mod quota;
pub mod range;
pub mod sniff;
pub mod thumbnail;

pub use attachment::{AttachedThumbnail, AttachedTo, Attachment};
pub use events::{MediaEvents, MediaUploaded};
pub use file_name::{Disposition, MediaFileName};
pub use quota::{MediaQuotas, MediaUsage, QuotaScope};
pub use range::{RangeAnswer, answer_range};
pub use sniff::{MediaAllowList, MediaFamily, MediaType, sniff};
pub use thumbnail::ThumbnailSettings;

/// Where a media item is in its life. (Externally tagged: the stores' postcard cannot read
/// an internally tagged enum.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaState {
    /// Bytes are arriving.
    Uploading {
        /// How many bytes are stored, in order from the first.
        received_bytes: u64,
        /// When the unfinished upload is given up and removed.
        expires_at: Timestamp,
        /// The request writing now, if one is.
        lease: Option<WriteLease>,
        /// Where each stored part starts, in order (each ends where the next starts, the
        /// last at `received_bytes`).
        parts: Vec<u64>,
    },
    /// Every byte is stored and checked.
    Complete {
        /// When the last byte arrived.
        completed_at: Timestamp,
    },
    /// Deleted by its uploader or an administrator, or collected; its objects are being
    /// removed.
    Deleted {
        /// When.
        deleted_at: Timestamp,
        /// The parts an unfinished upload had stored, kept so that whoever removes the objects
        /// (after a crash, the collector) still finds them.
        parts: Vec<u64>,
    },
    /// Complete, like [`MediaState::Complete`] for every reader, but the part objects a
    /// resumable upload was assembled from may still exist: they are listed until they are
    /// deleted ([`MediaUpdate::PartsRemoved`]), so a crash between the two steps leaves the
    /// collector a record that names them. (Last, so records stored before it existed still
    /// decode.)
    Assembled {
        /// When the last byte arrived.
        completed_at: Timestamp,
        /// Where each part starts, as [`MediaState::Uploading`] listed them.
        parts: Vec<u64>,
    },
}

impl MediaState {
    /// Whether the media is deleted (its record a tombstone until the collector removes it).
    pub fn is_deleted(&self) -> bool {
        matches!(self, MediaState::Deleted { .. })
    }

    /// When the last byte arrived, if every byte is stored and checked.
    pub fn completed_at(&self) -> Option<Timestamp> {
        match self {
            MediaState::Complete { completed_at } | MediaState::Assembled { completed_at, .. } => {
                Some(*completed_at)
            }
            MediaState::Uploading { .. } | MediaState::Deleted { .. } => None,
        }
    }
}

/// One request's exclusive right to append to an upload, until it ends or `until` passes (a
/// writer that died without ending its write blocks the upload no longer than that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteLease {
    /// Names the writer; only it may end the write.
    pub token: u128,
    /// When the lease lapses.
    pub until: Timestamp,
}

/// A smaller copy of an image, made after the upload completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// The longest edge it was made for, in pixels.
    pub size: u32,
    /// Its width and height.
    pub dimensions: Dimensions,
    /// Its MIME type.
    pub mime: String,
    /// Its object.
    pub object_key: ObjectKey,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimensions {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Everything kept about one media item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    /// Its id (also the id of its upload).
    pub media_id: MediaId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// Its file name as the uploader gave it.
    pub file_name: MediaFileName,
    /// The conversation it was uploaded for, if the uploader named one.
    pub conversation_id: Option<ConversationId>,
    /// Its length in bytes, declared when the upload began.
    pub size_bytes: u64,
    /// Its type, read from its first bytes once they arrived.
    pub media_type: Option<MediaType>,
    /// The SHA-256 of its bytes, as lowercase hex, once complete.
    pub sha256: Option<String>,
    /// Where it is in its life.
    pub state: MediaState,
    /// When the upload was declared.
    pub created_at: Timestamp,
    /// Image or video dimensions, where known.
    pub dimensions: Option<Dimensions>,
    /// Its thumbnails, once made.
    pub thumbnails: Vec<Thumbnail>,
    /// Why no thumbnail was made, when making one failed.
    pub thumbnail_failure: Option<String>,
    /// The messages that attach it, in the order they did; it is an orphan while there are
    /// none. (Took the place of a count that was always 0 when it was written: an empty list
    /// has the same stored bytes.)
    pub attached_to: Vec<AttachedTo>,
}

/// One change to a stored media record, applied by [`MediaRecord::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaUpdate {
    /// A request asks to append bytes from `offset`, holding `lease` while it does.
    BeginWrite {
        /// Where the request's bytes start.
        offset: u64,
        /// The lease it takes.
        lease: WriteLease,
        /// The time now.
        now: Timestamp,
    },
    /// The request holding `token` stored bytes up to `received_bytes` and lets go.
    EndWrite {
        /// Its lease's token.
        token: u128,
        /// How many bytes are stored now, in order from the first.
        received_bytes: u64,
        /// The type, when this write brought the first bytes.
        media_type: Option<MediaType>,
    },
    /// The request holding `token` is still writing: its lease now lasts until `until`.
    RenewLease {
        /// Its lease's token.
        token: u128,
        /// The new end of the lease.
        until: Timestamp,
    },
    /// Every byte arrived and was checked: the media is complete, and [`MediaState::Assembled`]
    /// while parts it was assembled from are still to be deleted.
    Complete {
        /// The SHA-256 of the bytes, lowercase hex.
        sha256: String,
        /// The type read from the first bytes.
        media_type: MediaType,
        /// When.
        at: Timestamp,
        /// Whether the media object was assembled from the upload's part objects (a resumable
        /// upload), which are then still to be deleted; a whole upload wrote it directly.
        from_parts: bool,
    },
    /// The thumbnailer finished: thumbnails and dimensions, or why there are none.
    Thumbnailed {
        /// The image's dimensions, if it could read them.
        dimensions: Option<Dimensions>,
        /// What it made.
        thumbnails: Vec<Thumbnail>,
        /// Why it made nothing, if it failed.
        failure: Option<String>,
    },
    /// A form upload's file ended short of the length it was declared with (the form's whole
    /// length, an upper bound): the media is `size_bytes` long. Only while nothing of it is
    /// recorded yet, and never longer.
    Shrink {
        /// The file's length.
        size_bytes: u64,
    },
    /// A message attached it (again: listed once).
    Attached(AttachedTo),
    /// It is deleted.
    Deleted {
        /// When.
        at: Timestamp,
    },
    /// The part objects an assembled upload was made from are deleted: it is plainly complete.
    PartsRemoved,
}

/// What [`MediaStore::update_media`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaUpdateOutcome {
    /// Applied; the record as it is now.
    Updated(Box<MediaRecord>),
    /// The tenant has no such media (never had, or it was removed).
    NotFound,
    /// [`MediaRecord::apply`] refused it; nothing changed.
    Refused(Error),
}

impl MediaRecord {
    /// The record of an upload declared now, of `size_bytes`, that expires at `expires_at`.
    pub fn declared(
        media_id: MediaId,
        uploader: UserId,
        file_name: MediaFileName,
        conversation_id: Option<ConversationId>,
        size_bytes: u64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            media_id,
            uploader,
            file_name,
            conversation_id,
            size_bytes,
            media_type: None,
            sha256: None,
            state: MediaState::Uploading {
                received_bytes: 0,
                expires_at,
                lease: None,
                parts: Vec::new(),
            },
            created_at: now,
            dimensions: None,
            thumbnails: Vec::new(),
            thumbnail_failure: None,
            attached_to: Vec::new(),
        }
    }

    /// The bytes it counts against the quotas: its declared size until it is deleted, plus its
    /// thumbnails.
    pub fn charged_bytes(&self) -> u64 {
        match self.state {
            MediaState::Deleted { .. } => 0,
            MediaState::Uploading { .. }
            | MediaState::Complete { .. }
            | MediaState::Assembled { .. } => self
                .thumbnails
                .iter()
                .fold(self.size_bytes, |total, thumbnail| {
                    total.saturating_add(thumbnail.bytes)
                }),
        }
    }

    /// Whether every byte is stored and checked.
    pub fn is_complete(&self) -> bool {
        self.state.completed_at().is_some()
    }

    /// How many bytes are stored: all of them once complete, none once deleted.
    pub fn received_bytes(&self) -> u64 {
        match self.state {
            MediaState::Uploading { received_bytes, .. } => received_bytes,
            MediaState::Complete { .. } | MediaState::Assembled { .. } => self.size_bytes,
            MediaState::Deleted { .. } => 0,
        }
    }

    /// Applies `update`, or says why it does not apply. Every adapter calls this atomically with
    /// reading the record, so two requests writing one upload at once cannot both win.
    ///
    /// # Errors
    /// - [`Error::Conflict`] for a write that does not start at the stored offset, while another
    ///   request holds the lease, or on media that is no longer uploading; for an `EndWrite` or
    ///   `Complete` that does not match the upload's state;
    /// - [`Error::NotFound`] for a write to an expired upload or to deleted media;
    /// - [`Error::TooLarge`] for an `EndWrite` past the declared size.
    pub fn apply(&mut self, update: MediaUpdate) -> Result<()> {
        if let MediaState::Deleted { .. } = self.state {
            return match update {
                MediaUpdate::Deleted { .. } => Ok(()),
                _ => Err(Error::NotFound),
            };
        }
        match update {
            MediaUpdate::BeginWrite { offset, lease, now } => {
                let MediaState::Uploading {
                    received_bytes,
                    expires_at,
                    lease: held,
                    ..
                } = &mut self.state
                else {
                    return Err(conflict("the upload is already complete"));
                };
                if now >= *expires_at {
                    return Err(Error::NotFound);
                }
                if offset != *received_bytes {
                    return Err(conflict(&format!(
                        "the upload is at offset {received_bytes}, not {offset}"
                    )));
                }
                if held.is_some_and(|held| held.until > now) {
                    return Err(conflict("another request is writing this upload"));
                }
                *held = Some(lease);
            }
            MediaUpdate::EndWrite {
                token,
                received_bytes: now_received,
                media_type,
            } => {
                let size_bytes = self.size_bytes;
                let MediaState::Uploading {
                    received_bytes,
                    lease,
                    parts,
                    ..
                } = &mut self.state
                else {
                    return Err(conflict("the upload is already complete"));
                };
                if lease.is_none_or(|lease| lease.token != token) {
                    return Err(conflict("this request no longer holds the upload"));
                }
                if now_received > size_bytes {
                    return Err(Error::TooLarge {
                        what: "the upload".into(),
                        limit: usize::try_from(size_bytes).unwrap_or(usize::MAX),
                        actual: usize::try_from(now_received).unwrap_or(usize::MAX),
                    });
                }
                if now_received < *received_bytes {
                    return Err(conflict("an upload never shrinks"));
                }
                if now_received > *received_bytes {
                    parts.push(*received_bytes);
                }
                *received_bytes = now_received;
                *lease = None;
                if media_type.is_some() {
                    self.media_type = media_type;
                }
            }
            MediaUpdate::RenewLease { token, until } => match &mut self.state {
                MediaState::Uploading {
                    lease: Some(lease), ..
                } if lease.token == token => lease.until = until,
                _ => return Err(conflict("this request no longer holds the upload")),
            },
            MediaUpdate::Complete {
                sha256,
                media_type,
                at,
                from_parts,
            } => {
                let MediaState::Uploading {
                    received_bytes,
                    parts,
                    ..
                } = &mut self.state
                else {
                    return Err(conflict("the upload is not ready to complete"));
                };
                if *received_bytes != self.size_bytes {
                    return Err(conflict("the upload is not ready to complete"));
                }
                let parts = std::mem::take(parts);
                self.sha256 = Some(sha256);
                self.media_type = Some(media_type);
                self.state = if !from_parts || parts.is_empty() {
                    MediaState::Complete { completed_at: at }
                } else {
                    MediaState::Assembled {
                        completed_at: at,
                        parts,
                    }
                };
            }
            MediaUpdate::PartsRemoved => match self.state {
                MediaState::Assembled { completed_at, .. } => {
                    self.state = MediaState::Complete { completed_at };
                }
                MediaState::Complete { .. } => {}
                MediaState::Uploading { .. } | MediaState::Deleted { .. } => {
                    return Err(conflict("only assembled media has parts to remove"));
                }
            },
            MediaUpdate::Thumbnailed {
                dimensions,
                thumbnails,
                failure,
            } => {
                if !self.is_complete() {
                    return Err(conflict("only complete media has thumbnails"));
                }
                self.dimensions = dimensions.or(self.dimensions);
                self.thumbnails = thumbnails;
                self.thumbnail_failure = failure;
            }
            MediaUpdate::Shrink { size_bytes } => match self.state {
                MediaState::Uploading {
                    received_bytes: 0, ..
                } if size_bytes <= self.size_bytes => self.size_bytes = size_bytes,
                _ => return Err(conflict("only an upload with nothing stored can shrink")),
            },
            MediaUpdate::Attached(attached_to) => {
                if !self.is_complete() {
                    return Err(conflict("only complete media can be attached"));
                }
                if !self.attached_to.contains(&attached_to) {
                    self.attached_to.push(attached_to);
                }
            }
            MediaUpdate::Deleted { at } => {
                let parts = match &mut self.state {
                    MediaState::Uploading { parts, .. } | MediaState::Assembled { parts, .. } => {
                        std::mem::take(parts)
                    }
                    MediaState::Complete { .. } | MediaState::Deleted { .. } => Vec::new(),
                };
                self.state = MediaState::Deleted {
                    deleted_at: at,
                    parts,
                };
            }
        }
        Ok(())
    }
}

fn conflict(reason: &str) -> Error {
    Error::Conflict {
        reason: reason.to_owned(),
    }
}

/// The object key of a media item's bytes.
pub fn media_object_key(media_id: MediaId) -> ObjectKey {
    ObjectKey(format!("media/{media_id}"))
}

/// The object key of the part of an unfinished upload that starts at `offset`.
pub fn media_part_object_key(media_id: MediaId, offset: u64) -> ObjectKey {
    ObjectKey(format!("media/{media_id}.part-{offset:020}"))
}

/// The object key of one of a media item's thumbnails.
pub fn thumbnail_object_key(media_id: MediaId, size: u32) -> ObjectKey {
    ObjectKey(format!("media/{media_id}.thumb-{size}"))
}

/// Media records, with each tenant's and user's usage.
///
/// # Contract (checked by the conformance suite in `storage/tests/media.rs`)
/// - Every method is scoped by tenant; one tenant never sees, changes or removes another's.
/// - [`MediaStore::create_media`] stores a new record if its [`MediaRecord::charged_bytes`] fit
///   the quotas next to the usage, atomically with reading the usage, so concurrent creations
///   cannot together overrun a quota; it is durable when it returns `Ok(Ok(()))`.
/// - [`MediaStore::update_media`] applies [`MediaRecord::apply`] atomically with reading the
///   record, and keeps the usage in step with the record's charged bytes.
/// - [`MediaStore::usage`] is the sum of the charged bytes of the tenant's records, and of
///   those the user uploaded.
/// - [`MediaStore::remove_media`] removes a record for good; usage no longer counts it.
/// - [`MediaStore::media_to_collect`] lists, oldest first, records that are deleted, uploads
///   that expired before `now`, complete media never attached that completed before
///   `orphaned_before`, and assembled media (whose parts are still to be deleted).
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Stores the record of a declared upload, if it fits the quotas.
    ///
    /// # Errors
    /// `Ok(Err(Error::QuotaExceeded))` if it does not fit (nothing is stored);
    /// [`StoreError::AlreadyExists`] if the id is taken; [`StoreError::Unavailable`] if the
    /// backend failed.
    async fn create_media(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        quotas: MediaQuotas,
    ) -> std::result::Result<Result<()>, StoreError>;

    /// Applies one change to a record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn update_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: MediaUpdate,
    ) -> std::result::Result<MediaUpdateOutcome, StoreError>;

    /// One record.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> std::result::Result<Option<MediaRecord>, StoreError>;

    /// What the tenant, and `user_id` within it, hold.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn usage(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> std::result::Result<MediaUsage, StoreError>;

    /// Removes a record for good; returns it, or `None` if there was none.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed (then nothing changed).
    async fn remove_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> std::result::Result<Option<MediaRecord>, StoreError>;

    /// Records the garbage collector should deal with, across tenants, oldest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn media_to_collect(
        &self,
        now: Timestamp,
        orphaned_before: Timestamp,
        limit: usize,
    ) -> std::result::Result<Vec<(TenantId, MediaRecord)>, StoreError>;
}

/// Whether the garbage collector should deal with this record now.
pub fn is_collectable(record: &MediaRecord, now: Timestamp, orphaned_before: Timestamp) -> bool {
    match record.state {
        MediaState::Deleted { .. } => true,
        MediaState::Uploading { expires_at, .. } => expires_at <= now,
        MediaState::Complete { completed_at } => {
            record.attached_to.is_empty() && completed_at < orphaned_before
        }
        // Not garbage, but unfinished work: its parts are still to be deleted.
        MediaState::Assembled { .. } => true,
    }
}

#[cfg(test)]
mod tests;
