//! The MongoDB [`RecordingStore`]: recording metadata and the tenant's audit log in the same
//! database as the message store, shared by every engine node.
//!
//! Collections: `recordings` (one document per recording, `_id` `"<tenant>/<recording>"`, with
//! the tenant, conversation and recording id as indexed strings and the record itself as the
//! same versioned postcard `body` the embedded store writes) and `audit` (`_id`
//! `"<tenant>/<audit id>"`, likewise). ULID strings sort like the ids, so "newest first" is a
//! descending sort on the id string. Updates and erases are transactions (read, apply the
//! engine's rule, write; an erase deletes the record and inserts its audit record), retried
//! from fresh reads when another writer conflicts, like the message store's appends.

use std::sync::Arc;

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{AuditId, RecordingId, TenantId};
use switchboard_engine::recording::{
    AuditRecord, RecordingFilter, RecordingRecord, RecordingStore, RecordingUpdate,
    RecordingUpdateOutcome,
};
use tokio::sync::OnceCell;

use crate::codec;
use crate::log::mongo::{
    AttemptError, MongoMessageStore, binary, collect, decode_field, is_duplicate_key, limit_of,
    unavailable,
};

const RECORDINGS: &str = "recordings";
const AUDIT: &str = "audit";

/// A [`RecordingStore`] over the MongoDB database of a [`MongoMessageStore`].
#[derive(Clone)]
pub struct MongoRecordingStore {
    messages: MongoMessageStore,
    recordings: Collection<Document>,
    audit: Collection<Document>,
    /// Set once the indexes exist.
    indexes: Arc<OnceCell<()>>,
}

fn recording_key(tenant_id: &TenantId, recording_id: RecordingId) -> String {
    format!("{tenant_id}/{recording_id}")
}

fn recording_document(
    tenant_id: &TenantId,
    record: &RecordingRecord,
) -> Result<Document, StoreError> {
    Ok(doc! {
        "_id": recording_key(tenant_id, record.recording_id),
        "tenant": tenant_id.as_str(),
        "conversation": record.conversation_id.to_string(),
        "recording": record.recording_id.to_string(),
        "body": binary(codec::encode(record)?),
    })
}

/// At most `limit` records of `table` matching `query`, newest first by the ULID string in
/// `id_field`, older than `before` when it is given; each decoded from its `body`.
async fn newest_first<Record: serde::de::DeserializeOwned>(
    collection: &Collection<Document>,
    table: &'static str,
    mut query: Document,
    (id_field, before): (&str, Option<String>),
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    if let Some(before) = before {
        query.insert(id_field, doc! {"$lt": before});
    }
    let cursor = collection
        .find(query)
        .sort(doc! {id_field: -1})
        .limit(limit_of(limit))
        .await
        .map_err(|error| unavailable(&format!("could not read {table}"), &error))?;
    collect(cursor)
        .await?
        .iter()
        .map(|document| decode_field(table, document, "body"))
        .collect()
}

impl MongoRecordingStore {
    /// A recording store in the database of `messages` (sharing its client; no I/O here).
    pub fn new(messages: &MongoMessageStore) -> Self {
        Self {
            recordings: messages.database.collection(RECORDINGS),
            audit: messages.database.collection(AUDIT),
            messages: messages.clone(),
            indexes: Arc::new(OnceCell::new()),
        }
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| async {
                let index = |keys: Document, name: &str| {
                    IndexModel::builder()
                        .keys(keys)
                        .options(IndexOptions::builder().name(name.to_owned()).build())
                        .build()
                };
                self.recordings
                    .create_indexes([
                        index(doc! {"tenant": 1, "recording": -1}, "tenant_newest"),
                        index(
                            doc! {"tenant": 1, "conversation": 1, "recording": -1},
                            "conversation_newest",
                        ),
                    ])
                    .await
                    .map_err(|error| {
                        unavailable("could not create the recordings indexes", &error)
                    })?;
                self.audit
                    .create_indexes([index(doc! {"tenant": 1, "audit": -1}, "tenant_newest")])
                    .await
                    .map_err(|error| unavailable("could not create the audit indexes", &error))?;
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    async fn try_update(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        update: &RecordingUpdate,
    ) -> Result<RecordingUpdateOutcome, AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        let key = recording_key(tenant_id, recording_id);
        let Some(document) = self
            .recordings
            .find_one(doc! {"_id": &key})
            .session(&mut session)
            .await?
        else {
            return Ok(RecordingUpdateOutcome::NotFound);
        };
        let mut record: RecordingRecord = decode_field(RECORDINGS, &document, "body")?;
        if let Err(error) = record.apply(update.clone()) {
            return Ok(RecordingUpdateOutcome::Refused(error));
        }
        self.recordings
            .replace_one(doc! {"_id": &key}, recording_document(tenant_id, &record)?)
            .session(&mut session)
            .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(RecordingUpdateOutcome::Updated(Box::new(record)))
    }

    async fn try_erase(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        audit: &AuditRecord,
    ) -> Result<Option<RecordingRecord>, AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        let key = recording_key(tenant_id, recording_id);
        let Some(document) = self
            .recordings
            .find_one_and_delete(doc! {"_id": &key})
            .session(&mut session)
            .await?
        else {
            return Ok(None);
        };
        let record: RecordingRecord = decode_field(RECORDINGS, &document, "body")?;
        self.audit
            .insert_one(doc! {
                "_id": format!("{tenant_id}/{}", audit.audit_id),
                "tenant": tenant_id.as_str(),
                "audit": audit.audit_id.to_string(),
                "body": binary(codec::encode(audit)?),
            })
            .session(&mut session)
            .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(Some(record))
    }
}

#[async_trait]
impl RecordingStore for MongoRecordingStore {
    async fn create_recording(
        &self,
        tenant_id: &TenantId,
        record: &RecordingRecord,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        match self
            .recordings
            .insert_one(recording_document(tenant_id, record)?)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate_key(&error) => Err(StoreError::AlreadyExists),
            Err(error) => Err(unavailable("could not store a recording", &error)),
        }
    }

    async fn update_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        update: RecordingUpdate,
    ) -> Result<RecordingUpdateOutcome, StoreError> {
        self.ready().await?;
        self.messages
            .retrying("updating a recording", || {
                self.try_update(tenant_id, recording_id, &update)
            })
            .await
    }

    async fn recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        self.ready().await?;
        self.recordings
            .find_one(doc! {"_id": recording_key(tenant_id, recording_id)})
            .await
            .map_err(|error| unavailable("could not read recordings", &error))?
            .map(|document| decode_field(RECORDINGS, &document, "body"))
            .transpose()
    }

    async fn recordings(
        &self,
        tenant_id: &TenantId,
        filter: RecordingFilter,
        before: Option<RecordingId>,
        limit: usize,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        self.ready().await?;
        let mut query = doc! {"tenant": tenant_id.as_str()};
        if let Some(conversation_id) = filter.conversation_id {
            query.insert("conversation", conversation_id.to_string());
        }
        newest_first(
            &self.recordings,
            RECORDINGS,
            query,
            ("recording", before.map(|id| id.to_string())),
            limit,
        )
        .await
    }

    async fn erase_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        audit: &AuditRecord,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        self.ready().await?;
        self.messages
            .retrying("erasing a recording", || {
                self.try_erase(tenant_id, recording_id, audit)
            })
            .await
    }

    async fn audit_log(
        &self,
        tenant_id: &TenantId,
        before: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.ready().await?;
        newest_first(
            &self.audit,
            AUDIT,
            doc! {"tenant": tenant_id.as_str()},
            ("audit", before.map(|id| id.to_string())),
            limit,
        )
        .await
    }
}
