//! The media service: what users do with the files they upload (store one, read its record,
//! download it, delete it), scoped by tenant and checked against the engine's media rules.
//!
//! It is not an actor: every call is one request's work against two ports, the
//! [`MediaStore`] (records, usage, the write lease) and the [`ObjectStore`] (the bytes). An
//! upload is checked before its body is read (the file name, the size limit, the conversation
//! it names, the quotas, when the record is created), then its first bytes are read and sniffed
//! (a type the tenant does not accept is refused before the rest is read), then the bytes
//! stream into the object store, which hashes them on the way. Anything that fails after the
//! record exists discards the upload: the record is marked deleted (so it no longer counts
//! against the quotas), the object is deleted and the record removed; if a step of that fails,
//! the deleted record stays for the garbage collector.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_engine::blob::{
    ByteRange, ByteSource, DirectReadHeaders, ObjectRange, ObjectStore,
};
use switchboard_engine::ids::{ConversationId, MediaId, TenantId};
use switchboard_engine::media::sniff::SNIFF_BYTES;
use switchboard_engine::media::{
    Disposition, MediaAllowList, MediaFileName, MediaQuotas, MediaRecord, MediaState, MediaStore,
    MediaType, MediaUpdate, MediaUpdateOutcome, Thumbnail, WriteLease, media_object_key, sniff,
    thumbnail_object_key,
};
use switchboard_engine::ports::MessageStore;
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, PutError, SourceError};

use switchboard_engine::media::MediaEvents;
use switchboard_engine::media::thumbnail::awaits_thumbnails;

use self::thumbnailer::ThumbnailerHandle;
use crate::clock::IdGenerator;
use crate::session::Identity;
use crate::uploads::{OBJECT_TIMEOUT, PacedSource, bounded};

pub mod collector;
mod resumable;
pub mod thumbnailer;

pub use resumable::WRITE_LEASE;

/// How many of the messages attaching one media item a reader's access check reads, in
/// conversations the reader is a member of (a forwarded photo is attached by every copy).
pub const MAX_ATTACHING_MESSAGES_CHECKED: usize = 64;

/// How many distinct conversations attaching one media item a reader's access check asks
/// about membership.
pub const MAX_ATTACHING_CONVERSATIONS_CHECKED: usize = 1024;

/// How long announcing a completed upload may hold up its answer.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the media service can be tuned with (the `[media]` config section).
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The largest file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Storage quotas, unless the tenant has its own.
    pub quotas: MediaQuotas,
    /// Tenants with quotas of their own.
    pub tenant_quotas: HashMap<TenantId, MediaQuotas>,
    /// Accepted media types, unless the tenant has its own list.
    pub allowed_types: MediaAllowList,
    /// Tenants with lists of their own.
    pub tenant_allowed_types: HashMap<TenantId, MediaAllowList>,
    /// How long an unfinished upload is kept.
    pub upload_expiry: Duration,
    /// How long complete media nobody attached is kept; `None` keeps it.
    pub orphan_ttl: Option<Duration>,
    /// How long a store call may take.
    pub call_timeout: Duration,
    /// The sizes thumbnails are made at: a removal deletes the objects of these sizes as well
    /// as those the record lists, so thumbnails a crash left unrecorded go with their media.
    pub thumbnail_sizes: Vec<u32>,
    /// Whether signed links send the client to the object store itself (a presigned URL),
    /// when the object store hands out such URLs.
    pub redirect_links: bool,
}

/// Where media is kept: the records and the bytes.
#[derive(Clone)]
pub struct MediaPorts {
    /// Records and usage.
    pub store: Arc<dyn MediaStore>,
    /// The bytes.
    pub objects: Arc<dyn ObjectStore>,
}

/// A file about to be uploaded, as its uploader declared it.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Its name.
    pub file_name: String,
    /// The conversation it is for, if any: the uploader must be a member.
    pub conversation_id: Option<ConversationId>,
    /// Its length in bytes, or with `length_is_upper_bound` at most that many.
    pub declared_bytes: u64,
    /// Whether the file may end before `declared_bytes` (a form upload declares the form's
    /// length: the size limit and the quotas are checked against it, and the media settles at
    /// the file's length).
    pub length_is_upper_bound: bool,
}

/// Stores, serves and deletes media.
pub struct MediaService {
    ports: MediaPorts,
    messages: Arc<dyn MessageStore>,
    settings: MediaSettings,
    ids: IdGenerator,
    /// Where completed images are sent to be thumbnailed, once it runs.
    thumbnailer: OnceLock<ThumbnailerHandle>,
    /// Where completed uploads are announced, if anywhere (the Kafka build's media topic).
    events: OnceLock<Arc<dyn MediaEvents>>,
}

impl MediaService {
    /// A service over these ports; `messages` answers which conversations a user is in.
    pub fn new(
        ports: MediaPorts,
        messages: Arc<dyn MessageStore>,
        settings: MediaSettings,
        ids: IdGenerator,
    ) -> Self {
        Self {
            ports,
            messages,
            settings,
            ids,
            thumbnailer: OnceLock::new(),
            events: OnceLock::new(),
        }
    }

    /// Announces every upload that completes from now on to `events`. A second call changes
    /// nothing.
    pub fn use_events(&self, events: Arc<dyn MediaEvents>) {
        let _ = self.events.set(events);
    }

    /// What follows an upload's completion: its thumbnails are asked for, and it is announced
    /// (within [`EVENT_TIMEOUT`]; a failure is logged, the media stays stored).
    async fn completed(&self, tenant_id: &TenantId, record: &MediaRecord) {
        self.request_thumbnails(tenant_id, record);
        let Some(events) = self.events.get() else {
            return;
        };
        let announced =
            tokio::time::timeout(EVENT_TIMEOUT, events.media_uploaded(tenant_id, record)).await;
        match announced {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%tenant_id, media_id = %record.media_id, %error, "media.uploaded was not produced");
            }
            Err(_) => {
                tracing::warn!(%tenant_id, media_id = %record.media_id, "media.uploaded timed out");
            }
        }
    }

    /// Sends images to `thumbnailer` once their upload completes (the thumbnailer is started
    /// after the service, which it uses). A second call changes nothing.
    pub fn use_thumbnailer(&self, thumbnailer: ThumbnailerHandle) {
        let _ = self.thumbnailer.set(thumbnailer);
    }

    /// Asks for the thumbnails of media that awaits them; `false` if there is no thumbnailer
    /// or it dropped the request.
    pub fn request_thumbnails(&self, tenant_id: &TenantId, record: &MediaRecord) -> bool {
        awaits_thumbnails(record)
            && self
                .thumbnailer
                .get()
                .is_some_and(|thumbnailer| thumbnailer.request(tenant_id.clone(), record.media_id))
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &MediaSettings {
        &self.settings
    }

    /// Stores one file whose bytes come from `body`, and returns its complete record.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad file name or a body that broke off, stalled or ended short
    /// of its declared length; [`Error::TooLarge`] for a declared length over
    /// `max_file_bytes` or a body longer than declared; [`Error::NotMember`] or
    /// [`Error::NotFound`] for a conversation the uploader is not in;
    /// [`Error::QuotaExceeded`]; [`Error::UnsupportedMediaType`]; [`Error::Unavailable`] if a
    /// store fails. Nothing is kept after any of them.
    pub async fn upload(
        &self,
        identity: &Identity,
        upload: NewUpload,
        body: &mut dyn ByteSource,
    ) -> Result<MediaRecord, Error> {
        let length_is_upper_bound = upload.length_is_upper_bound;
        let record = self.declare_record(identity, upload).await?;
        match self
            .receive(identity, &record, body, length_is_upper_bound)
            .await
        {
            Ok(record) => Ok(record),
            Err(error) => {
                self.discard(&identity.tenant_id, record.media_id).await;
                Err(error)
            }
        }
    }

    /// Checks a declared upload and creates its record.
    async fn declare_record(
        &self,
        identity: &Identity,
        upload: NewUpload,
    ) -> Result<MediaRecord, Error> {
        let file_name = MediaFileName::parse(&upload.file_name)?;
        if upload.declared_bytes > self.settings.max_file_bytes {
            return Err(too_large(
                self.settings.max_file_bytes,
                upload.declared_bytes,
            ));
        }
        if let Some(conversation_id) = upload.conversation_id {
            self.check_member(identity, conversation_id).await?;
        }
        let tenant_id = &identity.tenant_id;
        let now = self.ids.clock().now();
        let media_id = self.ids.media_id();
        let expires_at = now.plus_millis(millis(self.settings.upload_expiry));
        let record = MediaRecord::declared(
            media_id,
            identity.user_id.clone(),
            file_name,
            upload.conversation_id,
            upload.declared_bytes,
            now,
            expires_at,
        );
        bounded(
            self.settings.call_timeout,
            "declaring an upload",
            self.ports
                .store
                .create_media(tenant_id, &record, self.quotas_of(tenant_id)),
        )
        .await??;
        Ok(record)
    }

    /// The record of media the caller may read.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none in the caller's tenant, or the caller may not read
    /// it; [`Error::Unavailable`] if the store fails.
    pub async fn record(
        &self,
        identity: &Identity,
        media_id: MediaId,
    ) -> Result<MediaRecord, Error> {
        let record = self.stored(&identity.tenant_id, media_id).await?;
        if record.state.is_deleted()
            || (record.uploader != identity.user_id
                && !self.reads_an_attaching_message(identity, &record).await?)
        {
            return Err(Error::NotFound);
        }
        Ok(record)
    }

    /// Whether the caller can read one of the messages that attach the media: a member of its
    /// conversation, the message stored there carrying it, not deleted, and not hidden by the
    /// caller. The newest attachments are looked at first; membership is asked once per
    /// conversation (at most [`MAX_ATTACHING_CONVERSATIONS_CHECKED`] of them), and at most
    /// [`MAX_ATTACHING_MESSAGES_CHECKED`] messages are read, all in conversations the caller is
    /// a member of, so copies in other people's conversations never use up the budget.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if a store fails.
    async fn reads_an_attaching_message(
        &self,
        identity: &Identity,
        record: &MediaRecord,
    ) -> Result<bool, Error> {
        let tenant_id = &identity.tenant_id;
        let mut membership: HashMap<ConversationId, bool> = HashMap::new();
        let mut n_messages_read = 0;
        for attached in record.attached_to.iter().rev() {
            let is_member = match membership.get(&attached.conversation_id) {
                Some(is_member) => *is_member,
                None => {
                    if membership.len() >= MAX_ATTACHING_CONVERSATIONS_CHECKED {
                        continue;
                    }
                    let is_member =
                        match self.check_member(identity, attached.conversation_id).await {
                            Ok(()) => true,
                            Err(Error::NotMember | Error::NotFound) => false,
                            Err(error) => return Err(error),
                        };
                    membership.insert(attached.conversation_id, is_member);
                    is_member
                }
            };
            if !is_member {
                continue;
            }
            if n_messages_read >= MAX_ATTACHING_MESSAGES_CHECKED {
                break;
            }
            n_messages_read += 1;
            let message = bounded(
                self.settings.call_timeout,
                "reading an attaching message",
                self.messages.message_by_id(
                    tenant_id,
                    attached.conversation_id,
                    attached.message_id,
                ),
            )
            .await?;
            let Some(message) = message else { continue };
            if message.state.deleted.is_some()
                || !message
                    .attachments
                    .iter()
                    .any(|attachment| attachment.media_id == record.media_id)
            {
                continue;
            }
            let hidden = bounded(
                self.settings.call_timeout,
                "reading hidden messages",
                self.messages.hidden_messages(
                    tenant_id,
                    attached.conversation_id,
                    &identity.user_id,
                ),
            )
            .await?;
            if !hidden.contains(&attached.message_id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The record of complete media, for a caller whose permission was checked otherwise (a
    /// signed link).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no complete media of that id in the tenant;
    /// [`Error::Unavailable`] if the store fails.
    pub async fn complete_record(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<MediaRecord, Error> {
        let record = self.stored(tenant_id, media_id).await?;
        if !record.is_complete() {
            return Err(Error::NotFound);
        }
        Ok(record)
    }

    /// Opens a range of complete media, whoever asks: the caller checked the permission (with
    /// [`MediaService::record`] or a signed link).
    ///
    /// # Errors
    /// [`Error::NotFound`] while it is still uploading; [`Error::Unavailable`] if the object
    /// store fails or the bytes are missing.
    pub async fn open_object(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        range: ByteRange,
    ) -> Result<ObjectRange, Error> {
        if !record.is_complete() {
            return Err(Error::NotFound);
        }
        bounded(
            OBJECT_TIMEOUT,
            "opening media",
            self.ports
                .objects
                .get_range(tenant_id, &media_object_key(record.media_id), range),
        )
        .await?
        .ok_or_else(|| Error::unavailable("the media's bytes are missing"))
    }

    /// Where a client holding a signed link may read complete media directly from the object
    /// store for `valid_for`, if links are set to redirect there and the store hands out such
    /// URLs; its answers carry the media's type and `disposition`.
    pub fn direct_read_url(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        valid_for: Duration,
        disposition: Disposition,
    ) -> Option<String> {
        if !self.settings.redirect_links || !record.is_complete() {
            return None;
        }
        let media_type = record.media_type.as_ref()?;
        self.ports.objects.direct_read_url(
            tenant_id,
            &media_object_key(record.media_id),
            valid_for,
            DirectReadHeaders {
                content_type: &media_type.mime,
                content_disposition: &record.file_name.content_disposition(disposition),
            },
        )
    }

    /// Reads one thumbnail of complete media whole (thumbnails are small), whoever asks: the
    /// caller checked the permission as for [`MediaService::open_object`].
    ///
    /// # Errors
    /// [`Error::NotFound`] unless the media is complete; [`Error::Unavailable`] if the object
    /// store fails or the bytes are missing.
    pub async fn thumbnail_bytes(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        thumbnail: &Thumbnail,
    ) -> Result<Vec<u8>, Error> {
        if !record.is_complete() {
            return Err(Error::NotFound);
        }
        let body = bounded(
            OBJECT_TIMEOUT,
            "reading a thumbnail",
            self.ports
                .objects
                .get_object(tenant_id, &thumbnail.object_key),
        )
        .await?
        .ok_or_else(|| Error::unavailable("the thumbnail's bytes are missing"))?;
        Ok(body.bytes)
    }

    /// Deletes media: its uploader may, and so may an administrator of its tenant.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none the caller may delete; [`Error::Unavailable`] if
    /// the store fails (the garbage collector finishes what was begun).
    pub async fn delete(
        &self,
        identity: &Identity,
        media_id: MediaId,
        is_admin: bool,
    ) -> Result<(), Error> {
        let tenant_id = &identity.tenant_id;
        let record = self.stored(tenant_id, media_id).await?;
        if record.state.is_deleted() || (!is_admin && record.uploader != identity.user_id) {
            return Err(Error::NotFound);
        }
        self.mark_deleted(tenant_id, media_id).await?;
        self.remove(tenant_id, &record).await
    }

    /// One round of the garbage collector: removes at most `limit` records that are due
    /// (deleted media, unfinished uploads past their expiry, and complete media nobody attached
    /// for `orphan_ttl`, when it is set), each with its objects, and deletes the leftover parts
    /// of assembled uploads (keeping the media). Returns how many records it dealt with.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if a store fails (what was removed stays removed; the next round
    /// finds the rest again).
    pub async fn collect(&self, limit: usize) -> Result<usize, Error> {
        let now = self.ids.clock().now();
        let orphaned_before = match self.settings.orphan_ttl {
            Some(ttl) => Timestamp(now.as_millis().saturating_sub(millis(ttl))),
            None => Timestamp(0),
        };
        let due = bounded(
            self.settings.call_timeout,
            "listing the media to collect",
            self.ports
                .store
                .media_to_collect(now, orphaned_before, limit),
        )
        .await?;
        let mut n_removed = 0;
        for (tenant_id, record) in due {
            if let MediaState::Assembled { .. } = record.state {
                // Complete media whose upload was cut short after it was assembled: finish the
                // upload's work (its parts), keep the media.
                self.remove_parts(&tenant_id, &record).await?;
                n_removed += 1;
                continue;
            }
            if !record.state.is_deleted() {
                match self.mark_deleted(&tenant_id, record.media_id).await {
                    Ok(()) | Err(Error::NotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            self.remove(&tenant_id, &record).await?;
            n_removed += 1;
        }
        Ok(n_removed)
    }

    fn quotas_of(&self, tenant_id: &TenantId) -> MediaQuotas {
        self.settings
            .tenant_quotas
            .get(tenant_id)
            .copied()
            .unwrap_or(self.settings.quotas)
    }

    fn allowed_types_of(&self, tenant_id: &TenantId) -> &MediaAllowList {
        self.settings
            .tenant_allowed_types
            .get(tenant_id)
            .unwrap_or(&self.settings.allowed_types)
    }

    async fn check_member(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
    ) -> Result<(), Error> {
        let snapshot = bounded(
            self.settings.call_timeout,
            "reading a conversation",
            self.messages
                .load_conversation(&identity.tenant_id, conversation_id),
        )
        .await?
        .ok_or(Error::NotFound)?;
        if snapshot
            .members
            .iter()
            .any(|member| member.user_id == identity.user_id)
        {
            Ok(())
        } else {
            Err(Error::NotMember)
        }
    }

    /// Takes the upload's write lease, reads and checks its first bytes, streams the body into
    /// the object store and completes the record.
    async fn receive(
        &self,
        identity: &Identity,
        record: &MediaRecord,
        body: &mut dyn ByteSource,
        length_is_upper_bound: bool,
    ) -> Result<MediaRecord, Error> {
        let tenant_id = &identity.tenant_id;
        let media_id = record.media_id;
        let lease = WriteLease {
            token: self.ids.lease_token(),
            until: record
                .created_at
                .plus_millis(millis(self.settings.upload_expiry)),
        };
        let now = self.ids.clock().now();
        self.update(
            tenant_id,
            media_id,
            MediaUpdate::BeginWrite {
                offset: 0,
                lease,
                now,
            },
        )
        .await?;
        let mut body = PacedSource::new(body);
        let mut body = SniffedSource::read(&mut body)
            .await
            .map_err(|error| Error::from(PutError::Source(error)))?;
        let media_type = sniff(&body.prefix_bytes());
        self.allowed_types_of(tenant_id)
            .check(&media_type, &record.file_name)?;
        let written = self
            .ports
            .objects
            .put_stream(
                tenant_id,
                &media_object_key(media_id),
                &media_type.mime,
                &mut body,
                record.size_bytes,
            )
            .await?;
        if length_is_upper_bound && written.bytes < record.size_bytes {
            self.update(
                tenant_id,
                media_id,
                MediaUpdate::Shrink {
                    size_bytes: written.bytes,
                },
            )
            .await?;
        } else if written.bytes != record.size_bytes {
            return Err(Error::invalid(
                "body",
                format!(
                    "the body had {} of its {} declared bytes",
                    written.bytes, record.size_bytes
                ),
            ));
        }
        self.update(
            tenant_id,
            media_id,
            MediaUpdate::EndWrite {
                token: lease.token,
                received_bytes: written.bytes,
                media_type: Some(media_type.clone()),
            },
        )
        .await?;
        self.complete(tenant_id, media_id, written.sha256, media_type, false)
            .await
    }

    /// Completes an upload whose bytes are stored and checked, then does what follows
    /// completion (thumbnails, the `media.uploaded` event). `from_parts`: the media object was
    /// assembled from the upload's part objects, which the record keeps listing
    /// ([`MediaState::Assembled`]) until they are deleted.
    async fn complete(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        sha256: String,
        media_type: MediaType,
        from_parts: bool,
    ) -> Result<MediaRecord, Error> {
        let completed = self
            .update(
                tenant_id,
                media_id,
                MediaUpdate::Complete {
                    sha256,
                    media_type,
                    at: self.ids.clock().now(),
                    from_parts,
                },
            )
            .await?;
        self.completed(tenant_id, &completed).await;
        Ok(completed)
    }

    /// The stored record, deleted or not; [`Error::NotFound`] if there is none.
    async fn stored(&self, tenant_id: &TenantId, media_id: MediaId) -> Result<MediaRecord, Error> {
        bounded(
            self.settings.call_timeout,
            "reading a media record",
            self.ports.store.media(tenant_id, media_id),
        )
        .await?
        .ok_or(Error::NotFound)
    }

    async fn update(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: MediaUpdate,
    ) -> Result<MediaRecord, Error> {
        match bounded(
            self.settings.call_timeout,
            "updating a media record",
            self.ports.store.update_media(tenant_id, media_id, update),
        )
        .await?
        {
            MediaUpdateOutcome::Updated(record) => Ok(*record),
            MediaUpdateOutcome::NotFound => Err(Error::NotFound),
            MediaUpdateOutcome::Refused(error) => Err(error),
        }
    }

    async fn mark_deleted(&self, tenant_id: &TenantId, media_id: MediaId) -> Result<(), Error> {
        let at = self.ids.clock().now();
        self.update(tenant_id, media_id, MediaUpdate::Deleted { at })
            .await
            .map(|_| ())
    }

    /// Deletes a deleted record's objects, then the record.
    async fn remove(&self, tenant_id: &TenantId, record: &MediaRecord) -> Result<(), Error> {
        let keys = std::iter::once(media_object_key(record.media_id))
            .chain(resumable::part_keys(record))
            .chain(
                record
                    .thumbnails
                    .iter()
                    .map(|thumbnail| thumbnail.object_key.clone()),
            )
            .chain(
                self.settings
                    .thumbnail_sizes
                    .iter()
                    .filter(|size| {
                        !record
                            .thumbnails
                            .iter()
                            .any(|thumbnail| thumbnail.size == **size)
                    })
                    .map(|size| thumbnail_object_key(record.media_id, *size)),
            );
        for key in keys {
            self.delete_object(tenant_id, &key).await?;
        }
        bounded(
            self.settings.call_timeout,
            "removing a media record",
            self.ports.store.remove_media(tenant_id, record.media_id),
        )
        .await?;
        Ok(())
    }

    /// Gives up an upload that failed: best effort, and what fails is left, marked deleted, to
    /// the garbage collector.
    async fn discard(&self, tenant_id: &TenantId, media_id: MediaId) {
        let discarded = async {
            self.mark_deleted(tenant_id, media_id).await?;
            let record = self.stored(tenant_id, media_id).await?;
            self.remove(tenant_id, &record).await
        };
        if let Err(error) = discarded.await {
            tracing::warn!(%tenant_id, %media_id, %error, "a failed upload is left to the garbage collector");
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn too_large(limit: u64, actual: u64) -> Error {
    Error::TooLarge {
        what: "file".into(),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        actual: usize::try_from(actual).unwrap_or(usize::MAX),
    }
}

/// A body whose first [`SNIFF_BYTES`] (or all of a shorter one) were read ahead to be sniffed,
/// and are given again, first, to whoever reads it.
struct SniffedSource<'body> {
    prefix: VecDeque<Bytes>,
    rest: &'body mut dyn ByteSource,
}

impl<'body> SniffedSource<'body> {
    async fn read(body: &'body mut dyn ByteSource) -> Result<Self, SourceError> {
        let mut prefix = VecDeque::new();
        let mut n_bytes = 0;
        while n_bytes < SNIFF_BYTES {
            match body.next_chunk().await? {
                Some(chunk) => {
                    n_bytes += chunk.len();
                    prefix.push_back(chunk);
                }
                None => break,
            }
        }
        Ok(Self { prefix, rest: body })
    }

    /// The bytes read ahead, at most [`SNIFF_BYTES`] of them.
    fn prefix_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(SNIFF_BYTES);
        for chunk in &self.prefix {
            let room = SNIFF_BYTES - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        bytes
    }
}

#[async_trait]
impl ByteSource for SniffedSource<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        match self.prefix.pop_front() {
            Some(chunk) => Ok(Some(chunk)),
            None => self.rest.next_chunk().await,
        }
    }
}

#[cfg(test)]
mod tests;
