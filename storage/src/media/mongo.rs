//! The MongoDB [`MediaStore`]: media records and usage in the same database as the message
//! store, shared by every engine node, so an upload begun on one node continues on another and
//! any node serves any media.
//!
//! Collections: `media` (one document per record, `_id` `"<tenant>/<media>"`, with the tenant
//! and the uploader as indexed strings, the record as the same versioned postcard `body` the
//! embedded store writes, and the lifecycle fields the garbage collector queries: `due_kind`
//! (0 deleted, 1 unfinished upload, 2 complete and unattached; absent otherwise) and `due_at`
//! (when, in milliseconds), indexed together) and `media_usage` (`_id` `"<tenant>"` for a
//! tenant, `"<tenant>/<user>"` for a user, with the `charged` bytes).
//!
//! Every write is a transaction: read, apply the engine's rule, write the record and move the
//! usage counters by the change in charged bytes. Two creations that would together overrun a
//! quota both write the tenant's counter, so the second conflicts, is retried from fresh reads
//! and then sees the first's bytes: the quota check is atomic with the creation, as the
//! contract asks. Counters are created (at zero) before the transaction that first moves them,
//! outside it, so that two first uploads race on an update, never on an insert.

use std::sync::Arc;

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{ClientSession, Collection, IndexModel};
use switchboard_engine::ids::{MediaId, TenantId, UserId};
use switchboard_engine::media::{
    MediaQuotas, MediaRecord, MediaState, MediaStore, MediaUpdate, MediaUpdateOutcome, MediaUsage,
    is_collectable,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, StoreError};
use tokio::sync::OnceCell;

use crate::codec;
use crate::log::mongo::{
    AttemptError, MongoMessageStore, binary, collect, decode_field, is_duplicate_key, limit_of,
    unavailable,
};

const MEDIA: &str = "media";
const MEDIA_USAGE: &str = "media_usage";

/// The kinds of `due_kind`; the collector reads deleted, assembled, expiring, orphaned.
const DELETED: i32 = 0;
const EXPIRING: i32 = 1;
const ORPHANED: i32 = 2;
/// Assembled media whose parts are still to be deleted (read after the deleted ones).
const ASSEMBLED: i32 = 3;

/// A [`MediaStore`] over the MongoDB database of a [`MongoMessageStore`].
#[derive(Clone)]
pub struct MongoMediaStore {
    messages: MongoMessageStore,
    media: Collection<Document>,
    usage: Collection<Document>,
    /// Set once the indexes exist.
    indexes: Arc<OnceCell<()>>,
}

fn media_key(tenant_id: &TenantId, media_id: MediaId) -> String {
    format!("{tenant_id}/{media_id}")
}

fn user_usage_key(tenant_id: &TenantId, user_id: &UserId) -> String {
    format!("{tenant_id}/{user_id}")
}

/// Milliseconds as BSON stores them (an `i64`; times past its range are clamped).
fn millis(at: Timestamp) -> i64 {
    i64::try_from(at.0).unwrap_or(i64::MAX)
}

/// Bytes as BSON stores them.
fn bytes_field(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// When and why the collector will want a record as it is, if ever.
fn due(record: &MediaRecord) -> Option<(i32, Timestamp)> {
    match record.state {
        MediaState::Deleted { deleted_at, .. } => Some((DELETED, deleted_at)),
        MediaState::Uploading { expires_at, .. } => Some((EXPIRING, expires_at)),
        MediaState::Complete { completed_at } if record.attached_to.is_empty() => {
            Some((ORPHANED, completed_at))
        }
        MediaState::Complete { .. } => None,
        MediaState::Assembled { completed_at, .. } => Some((ASSEMBLED, completed_at)),
    }
}

fn media_document(tenant_id: &TenantId, record: &MediaRecord) -> Result<Document, StoreError> {
    let mut document = doc! {
        "_id": media_key(tenant_id, record.media_id),
        "tenant": tenant_id.as_str(),
        "uploader": record.uploader.as_str(),
        "body": binary(codec::encode(record)?),
    };
    if let Some((kind, at)) = due(record) {
        document.insert("due_kind", kind);
        document.insert("due_at", millis(at));
    }
    Ok(document)
}

impl MongoMediaStore {
    /// A media store in the database of `messages` (sharing its client; no I/O here).
    pub fn new(messages: &MongoMessageStore) -> Self {
        Self {
            media: messages.database.collection(MEDIA),
            usage: messages.database.collection(MEDIA_USAGE),
            messages: messages.clone(),
            indexes: Arc::new(OnceCell::new()),
        }
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| async {
                let index = IndexModel::builder()
                    .keys(doc! {"due_kind": 1, "due_at": 1})
                    .options(IndexOptions::builder().name("due".to_owned()).build())
                    .build();
                self.media
                    .create_index(index)
                    .await
                    .map_err(|error| unavailable("could not create the media indexes", &error))?;
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    /// Creates the usage counters of a tenant and a user at zero if they do not exist yet.
    async fn ensure_counters(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<(), StoreError> {
        for key in [
            tenant_id.as_str().to_owned(),
            user_usage_key(tenant_id, user_id),
        ] {
            let created = self
                .usage
                .update_one(
                    doc! {"_id": &key},
                    doc! {"$setOnInsert": {"charged": 0_i64}},
                )
                .upsert(true)
                .await;
            match created {
                Ok(_) => {}
                // Another writer created it first.
                Err(error) if is_duplicate_key(&error) => {}
                Err(error) => return Err(unavailable("could not create media usage", &error)),
            }
        }
        Ok(())
    }

    /// The charged bytes under one counter, 0 if it does not exist.
    async fn counter(
        &self,
        key: &str,
        session: Option<&mut ClientSession>,
    ) -> Result<u64, AttemptError> {
        let find = self.usage.find_one(doc! {"_id": key});
        let document = match session {
            Some(session) => find.session(session).await?,
            None => find
                .await
                .map_err(|error| unavailable("could not read media usage", &error))?,
        };
        let charged = document
            .and_then(|document| document.get_i64("charged").ok())
            .unwrap_or(0);
        Ok(u64::try_from(charged).unwrap_or(0))
    }

    /// Moves a tenant's and its user's counters from `old_charged` to `new_charged` bytes.
    async fn move_counters(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        user_id: &UserId,
        old_charged: u64,
        new_charged: u64,
    ) -> Result<(), AttemptError> {
        if old_charged == new_charged {
            return Ok(());
        }
        let change = bytes_field(new_charged) - bytes_field(old_charged);
        for key in [
            tenant_id.as_str().to_owned(),
            user_usage_key(tenant_id, user_id),
        ] {
            self.usage
                .update_one(doc! {"_id": &key}, doc! {"$inc": {"charged": change}})
                .upsert(true)
                .session(&mut *session)
                .await?;
        }
        Ok(())
    }

    async fn read(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, AttemptError> {
        let document = self
            .media
            .find_one(doc! {"_id": media_key(tenant_id, media_id)})
            .session(&mut *session)
            .await?;
        Ok(document
            .map(|document| decode_field(MEDIA, &document, "body"))
            .transpose()?)
    }

    async fn try_create(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        quotas: MediaQuotas,
    ) -> Result<Result<(), Error>, AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        if self
            .read(&mut session, tenant_id, record.media_id)
            .await?
            .is_some()
        {
            return Err(AttemptError::Store(StoreError::AlreadyExists));
        }
        let usage = MediaUsage {
            tenant_bytes: self.counter(tenant_id.as_str(), Some(&mut session)).await?,
            user_bytes: self
                .counter(
                    &user_usage_key(tenant_id, &record.uploader),
                    Some(&mut session),
                )
                .await?,
        };
        if let Err(error) = quotas.admit(usage, record.charged_bytes()) {
            return Ok(Err(error));
        }
        match self
            .media
            .insert_one(media_document(tenant_id, record)?)
            .session(&mut session)
            .await
        {
            Ok(_) => {}
            Err(error) if is_duplicate_key(&error) => {
                return Err(AttemptError::Store(StoreError::AlreadyExists));
            }
            Err(error) => return Err(error.into()),
        }
        self.move_counters(
            &mut session,
            tenant_id,
            &record.uploader,
            0,
            record.charged_bytes(),
        )
        .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(Ok(()))
    }

    async fn try_update(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: &MediaUpdate,
    ) -> Result<MediaUpdateOutcome, AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        let Some(old) = self.read(&mut session, tenant_id, media_id).await? else {
            return Ok(MediaUpdateOutcome::NotFound);
        };
        let mut new = old.clone();
        if let Err(error) = new.apply(update.clone()) {
            return Ok(MediaUpdateOutcome::Refused(error));
        }
        self.media
            .replace_one(
                doc! {"_id": media_key(tenant_id, media_id)},
                media_document(tenant_id, &new)?,
            )
            .session(&mut session)
            .await?;
        self.move_counters(
            &mut session,
            tenant_id,
            &old.uploader,
            old.charged_bytes(),
            new.charged_bytes(),
        )
        .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(MediaUpdateOutcome::Updated(Box::new(new)))
    }

    async fn try_remove(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        let Some(document) = self
            .media
            .find_one_and_delete(doc! {"_id": media_key(tenant_id, media_id)})
            .session(&mut session)
            .await?
        else {
            return Ok(None);
        };
        let old: MediaRecord = decode_field(MEDIA, &document, "body")?;
        self.move_counters(
            &mut session,
            tenant_id,
            &old.uploader,
            old.charged_bytes(),
            0,
        )
        .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(Some(old))
    }
}

#[async_trait]
impl MediaStore for MongoMediaStore {
    async fn create_media(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        quotas: MediaQuotas,
    ) -> Result<Result<(), Error>, StoreError> {
        self.ready().await?;
        self.ensure_counters(tenant_id, &record.uploader).await?;
        self.messages
            .retrying("storing media", || {
                self.try_create(tenant_id, record, quotas)
            })
            .await
    }

    async fn update_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: MediaUpdate,
    ) -> Result<MediaUpdateOutcome, StoreError> {
        self.ready().await?;
        self.messages
            .retrying("updating media", || {
                self.try_update(tenant_id, media_id, &update)
            })
            .await
    }

    async fn media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        self.ready().await?;
        self.media
            .find_one(doc! {"_id": media_key(tenant_id, media_id)})
            .await
            .map_err(|error| unavailable("could not read media", &error))?
            .map(|document| decode_field(MEDIA, &document, "body"))
            .transpose()
    }

    async fn usage(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<MediaUsage, StoreError> {
        self.ready().await?;
        let read = |key: String| async move {
            match self.counter(&key, None).await {
                Ok(charged) => Ok(charged),
                Err(AttemptError::Store(error)) => Err(error),
                Err(AttemptError::Conflict) => Err(StoreError::Unavailable(
                    "could not read media usage".to_owned(),
                )),
            }
        };
        Ok(MediaUsage {
            tenant_bytes: read(tenant_id.as_str().to_owned()).await?,
            user_bytes: read(user_usage_key(tenant_id, user_id)).await?,
        })
    }

    async fn remove_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        self.ready().await?;
        self.messages
            .retrying("removing media", || self.try_remove(tenant_id, media_id))
            .await
    }

    async fn media_to_collect(
        &self,
        now: Timestamp,
        orphaned_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, MediaRecord)>, StoreError> {
        self.ready().await?;
        let mut found = Vec::new();
        for (kind, through) in [
            (DELETED, None),
            (ASSEMBLED, None),
            (EXPIRING, Some(doc! {"$lte": millis(now)})),
            (ORPHANED, Some(doc! {"$lt": millis(orphaned_before)})),
        ] {
            if found.len() >= limit {
                break;
            }
            let mut query = doc! {"due_kind": kind};
            if let Some(through) = through {
                query.insert("due_at", Bson::Document(through));
            }
            let cursor = self
                .media
                .find(query)
                .sort(doc! {"due_at": 1})
                .limit(limit_of(limit - found.len()))
                .await
                .map_err(|error| unavailable("could not read media", &error))?;
            for document in collect(cursor).await? {
                let tenant = document.get_str("tenant").map_err(|_| {
                    StoreError::Corrupt("a media document has no tenant".to_owned())
                })?;
                let tenant_id = TenantId::parse(tenant).map_err(|_| {
                    StoreError::Corrupt(format!("a media document names tenant {tenant:?}"))
                })?;
                let record: MediaRecord = decode_field(MEDIA, &document, "body")?;
                if is_collectable(&record, now, orphaned_before) {
                    found.push((tenant_id, record));
                }
            }
        }
        Ok(found)
    }
}
