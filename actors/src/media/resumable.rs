//! Resumable uploads (what the tus endpoints drive): an upload declared with its length, then
//! appended to by as many requests as it takes, from whatever offset the record holds, on any
//! node.
//!
//! Each request that appends takes the upload's write lease at the stored offset (a second
//! request at once, or one at another offset, gets `conflict`), renews the lease while its body
//! flows, and stores its bytes as one part object (`media/<id>.part-<offset>`). When the
//! connection breaks midway, the bytes that arrived are kept and the offset moves on by them, so
//! the client resumes from there; a body with a checksum is kept whole or not at all. A write
//! at offset 0 that brings the first 64 KiB (or the whole file) has its type checked before it
//! is stored. When the last byte arrives the parts are read back in order, the type is checked,
//! and they are copied into the media object (hashed on the way) and deleted. A record whose
//! every byte arrived but which is not complete (the node stopped between the last write and
//! completing it) is completed by the next request that reads its progress.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_engine::blob::{ByteRange, ByteSource, ByteStream, ObjectKey, ObjectStore};
use switchboard_engine::ids::{MediaId, TenantId};
use switchboard_engine::media::sniff::SNIFF_BYTES;
use switchboard_engine::media::{
    MediaRecord, MediaState, MediaUpdate, WriteLease, media_object_key, media_part_object_key,
    sniff,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, PutError, SourceError};

use super::{MediaService, NewUpload, SniffedSource, millis};
use crate::session::Identity;
use crate::uploads::{OBJECT_TIMEOUT, PacedSource, bounded};

/// How long a write lease lasts without renewal: a writer that died holds the upload no longer.
pub const WRITE_LEASE: Duration = Duration::from_secs(60);

/// How often a writer whose body is still flowing renews its lease.
const LEASE_RENEWAL: Duration = Duration::from_secs(20);

/// The media type parts are stored under (they are only ever read back here).
const PART_CONTENT_TYPE: &str = "application/octet-stream";

impl MediaService {
    /// Declares an upload: checks it (file name, size limit, conversation, quotas) and creates
    /// its record, with no byte yet.
    ///
    /// # Errors
    /// As the checks of [`MediaService::upload`].
    pub async fn declare(
        &self,
        identity: &Identity,
        upload: NewUpload,
    ) -> Result<MediaRecord, Error> {
        self.declare_record(identity, upload).await
    }

    /// Appends the bytes of `body` to an upload at `offset`, and completes it when they were
    /// the last. `sha256`, when given, is the digest of the whole body: a body that does not
    /// match it is not kept.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such upload of the caller's, or an expired one;
    /// [`Error::Conflict`] for another offset than the stored one, another request writing, or a
    /// complete upload; [`Error::TooLarge`] for a body past the declared length;
    /// [`Error::ChecksumMismatch`]; [`Error::UnsupportedMediaType`] (the upload is then
    /// deleted); [`Error::Unavailable`] if a store fails.
    pub async fn append(
        &self,
        identity: &Identity,
        media_id: MediaId,
        offset: u64,
        body: &mut dyn ByteSource,
        sha256: Option<[u8; 32]>,
    ) -> Result<MediaRecord, Error> {
        let tenant_id = &identity.tenant_id;
        let record = self.record(identity, media_id).await?;
        let now = self.ids.clock().now();
        let lease = WriteLease {
            token: self.ids.lease_token(),
            until: now.plus_millis(millis(WRITE_LEASE)),
        };
        self.update(
            tenant_id,
            media_id,
            MediaUpdate::BeginWrite { offset, lease, now },
        )
        .await?;
        let written = self
            .write_part(identity, &record, offset, lease.token, body, sha256)
            .await;
        let received_bytes = offset + written.as_ref().copied().unwrap_or(0);
        let ended = self
            .update(
                tenant_id,
                media_id,
                MediaUpdate::EndWrite {
                    token: lease.token,
                    received_bytes,
                    media_type: None,
                },
            )
            .await;
        match (written, ended) {
            (Err(error @ Error::UnsupportedMediaType { .. }), _) => {
                self.discard(tenant_id, media_id).await;
                Err(error)
            }
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
            (Ok(_), Ok(record)) if record.received_bytes() == record.size_bytes => {
                self.complete_parts(identity, record).await
            }
            (Ok(_), Ok(record)) => Ok(record),
        }
    }

    /// The record of an upload (or complete media) of the caller's: what a client resuming
    /// asks. An upload whose every byte arrived but which was never completed is completed now.
    ///
    /// # Errors
    /// As [`MediaService::record`], and as completing it.
    pub async fn progress(
        &self,
        identity: &Identity,
        media_id: MediaId,
    ) -> Result<MediaRecord, Error> {
        let record = self.record(identity, media_id).await?;
        let now = self.ids.clock().now();
        match &record.state {
            MediaState::Uploading { lease, .. }
                if record.received_bytes() == record.size_bytes
                    && lease.is_none_or(|lease| lease.until <= now) =>
            {
                self.complete_parts(identity, record).await
            }
            _ => Ok(record),
        }
    }

    /// Stores one request's bytes as a part; returns how many were stored.
    async fn write_part(
        &self,
        identity: &Identity,
        record: &MediaRecord,
        offset: u64,
        token: u128,
        body: &mut dyn ByteSource,
        sha256: Option<[u8; 32]>,
    ) -> Result<u64, Error> {
        let tenant_id = &identity.tenant_id;
        let remaining = record.size_bytes - offset;
        let mut body = PacedSource::new(body);
        let mut body = LeasedSource {
            service: self,
            tenant_id,
            media_id: record.media_id,
            token,
            renewed_at: tokio::time::Instant::now(),
            source: &mut body,
            // Without a checksum, what arrived before a break is kept.
            keep_on_break: sha256.is_none(),
        };
        let mut body = SniffedSource::read(&mut body)
            .await
            .map_err(|error| Error::from(PutError::Source(error)))?;
        let prefix = body.prefix_bytes();
        if offset == 0 && (prefix.len() >= SNIFF_BYTES || prefix.len() as u64 == remaining) {
            self.allowed_types_of(tenant_id)
                .check(&sniff(&prefix), &record.file_name)?;
        }
        let key = media_part_object_key(record.media_id, offset);
        let written = self
            .ports
            .objects
            .put_stream(tenant_id, &key, PART_CONTENT_TYPE, &mut body, remaining)
            .await?;
        let mismatch = sha256.is_some_and(|expected| hex(&expected) != written.sha256);
        if mismatch || written.bytes == 0 {
            self.delete_object(tenant_id, &key).await?;
        }
        if mismatch {
            return Err(Error::ChecksumMismatch {
                algorithm: "sha256".to_owned(),
            });
        }
        Ok(written.bytes)
    }

    /// Checks the type of a fully received upload, copies its parts into the media object,
    /// completes the record and deletes the parts.
    async fn complete_parts(
        &self,
        identity: &Identity,
        record: MediaRecord,
    ) -> Result<MediaRecord, Error> {
        let tenant_id = &identity.tenant_id;
        let media_id = record.media_id;
        let keys = part_keys(&record);
        let objects = self.ports.objects.as_ref();
        let mut head = PartsSource::new(objects, tenant_id, keys.clone());
        let head = SniffedSource::read(&mut head)
            .await
            .map_err(|error| Error::unavailable(error.reason))?;
        let media_type = sniff(&head.prefix_bytes());
        if let Err(error) = self
            .allowed_types_of(tenant_id)
            .check(&media_type, &record.file_name)
        {
            self.discard(tenant_id, media_id).await;
            return Err(error);
        }
        let mut parts = PartsSource::new(objects, tenant_id, keys.clone());
        let written = objects
            .put_stream(
                tenant_id,
                &media_object_key(media_id),
                &media_type.mime,
                &mut parts,
                record.size_bytes,
            )
            .await
            .map_err(|error| {
                Error::unavailable(format!("could not assemble the upload: {error}"))
            })?;
        // The record lists the parts until they are deleted (`Assembled`): a crash before the
        // end leaves them to the collector, never without a record.
        let assembled = self
            .complete(tenant_id, media_id, written.sha256, media_type, true)
            .await?;
        match self.remove_parts(tenant_id, &assembled).await {
            Ok(Some(complete)) => Ok(complete),
            Ok(None) => Ok(assembled),
            Err(error) => {
                tracing::warn!(%tenant_id, %media_id, %error, "the parts of a completed upload are left to the collector");
                Ok(assembled)
            }
        }
    }

    /// Deletes the part objects an assembled upload was made from, then records that they are
    /// gone; the record as it is then, `None` if it is not there any more. Idempotent: the
    /// completing request and the collector may both do it.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if a store fails (the record still lists the parts).
    pub(super) async fn remove_parts(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
    ) -> Result<Option<MediaRecord>, Error> {
        for key in part_keys(record) {
            self.delete_object(tenant_id, &key).await?;
        }
        match self
            .update(tenant_id, record.media_id, MediaUpdate::PartsRemoved)
            .await
        {
            Ok(record) => Ok(Some(record)),
            // Deleted meanwhile: the collector removes what is left.
            Err(Error::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    pub(super) async fn delete_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<bool, Error> {
        bounded(
            OBJECT_TIMEOUT,
            "deleting an object",
            self.ports.objects.delete_object(tenant_id, key),
        )
        .await
    }

    async fn renew_lease(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        token: u128,
        now: Timestamp,
    ) -> Result<(), Error> {
        let until = now.plus_millis(millis(WRITE_LEASE));
        self.update(
            tenant_id,
            media_id,
            MediaUpdate::RenewLease { token, until },
        )
        .await
        .map(|_| ())
    }
}

/// The object keys of the parts an unfinished upload stored, in order: while it uploads, once
/// assembled until they are deleted, and once deleted unfinished.
pub(super) fn part_keys(record: &MediaRecord) -> Vec<ObjectKey> {
    match &record.state {
        MediaState::Uploading { parts, .. }
        | MediaState::Assembled { parts, .. }
        | MediaState::Deleted { parts, .. } => parts
            .iter()
            .map(|offset| media_part_object_key(record.media_id, *offset))
            .collect(),
        MediaState::Complete { .. } => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A request's body that renews the upload's write lease while it flows and, when asked to,
/// ends quietly where the connection broke so that what arrived is kept.
struct LeasedSource<'service, 'body> {
    service: &'service MediaService,
    tenant_id: &'service TenantId,
    media_id: MediaId,
    token: u128,
    renewed_at: tokio::time::Instant,
    source: &'body mut dyn ByteSource,
    keep_on_break: bool,
}

#[async_trait]
impl ByteSource for LeasedSource<'_, '_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        if self.renewed_at.elapsed() >= LEASE_RENEWAL {
            let now = self.service.ids.clock().now();
            self.service
                .renew_lease(self.tenant_id, self.media_id, self.token, now)
                .await
                .map_err(|error| {
                    SourceError::new(format!("the upload's lease was lost: {error}"))
                })?;
            self.renewed_at = tokio::time::Instant::now();
        }
        match self.source.next_chunk().await {
            Err(_) if self.keep_on_break => Ok(None),
            other => other,
        }
    }
}

/// An upload's parts read back in order, as one body.
struct PartsSource<'store> {
    objects: &'store dyn ObjectStore,
    tenant_id: &'store TenantId,
    keys: VecDeque<ObjectKey>,
    current: Option<Box<dyn ByteStream>>,
}

impl<'store> PartsSource<'store> {
    fn new(
        objects: &'store dyn ObjectStore,
        tenant_id: &'store TenantId,
        keys: Vec<ObjectKey>,
    ) -> Self {
        Self {
            objects,
            tenant_id,
            keys: keys.into(),
            current: None,
        }
    }
}

#[async_trait]
impl ByteSource for PartsSource<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        loop {
            if let Some(stream) = &mut self.current {
                match stream.next_chunk().await {
                    Ok(Some(chunk)) => return Ok(Some(chunk)),
                    Ok(None) => self.current = None,
                    Err(error) => return Err(SourceError::new(error.to_string())),
                }
            }
            let Some(key) = self.keys.pop_front() else {
                return Ok(None);
            };
            let range = self
                .objects
                .get_range(self.tenant_id, &key, ByteRange::ALL)
                .await
                .map_err(|error| SourceError::new(error.to_string()))?
                .ok_or_else(|| SourceError::new(format!("the part {key} is missing")))?;
            self.current = Some(range.bytes);
        }
    }
}
