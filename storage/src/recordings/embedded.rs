//! The embedded, durable [`RecordingStore`]: recording metadata and the tenant's audit log in a
//! fjall database of their own (the server opens it in `<data_dir>/recordings`, next to the
//! message store).
//!
//! Three keyspaces (layout in [`crate::keys`]): `recordings` holds each record, the
//! `recordings_by_conversation` index lists a conversation's recordings, and `audit` holds the
//! audit records. Every write is one batch committed with [`PersistMode::SyncAll`] while the
//! writer mutex is held, so a read-modify-write ([`RecordingStore::update_recording`]) never
//! loses a concurrent one, and an erase removes the record, its index entry and adds its audit
//! record together or not at all. Reads use snapshots, which see only whole batches.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fjall::{Database, Keyspace, PersistMode, Readable};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{AuditId, RecordingId, TenantId};
use switchboard_engine::recording::{
    AuditRecord, RecordingFilter, RecordingRecord, RecordingStore, RecordingUpdate,
    RecordingUpdateOutcome,
};

use crate::Result;
use crate::codec;
use crate::keys::{self, ULID_BYTES};
use crate::log::embedded::{open_database, open_table, unavailable};

const RECORDINGS: &str = "recordings";
const RECORDINGS_BY_CONVERSATION: &str = "recordings_by_conversation";
const AUDIT: &str = "audit";

struct RecordingTables {
    database: Database,
    recordings: Keyspace,
    by_conversation: Keyspace,
    audit: Keyspace,
    /// Serializes writes; only ever taken inside `spawn_blocking`.
    writer: Mutex<()>,
}

/// A durable [`RecordingStore`] in one directory. Cloning is cheap; clones share the database.
#[derive(Clone)]
pub struct EmbeddedRecordingStore {
    tables: Arc<RecordingTables>,
}

fn recording_key(tenant_id: &TenantId, recording_id: RecordingId) -> Vec<u8> {
    keys::tenant_id_key(tenant_id, recording_id.to_bytes())
}

fn by_conversation_key(tenant_id: &TenantId, record: &RecordingRecord) -> Vec<u8> {
    let mut key = keys::conversation_key(tenant_id, record.conversation_id);
    key.extend_from_slice(&record.recording_id.to_bytes());
    key
}

/// The id in the last 16 bytes of a key.
fn trailing_id(key: &[u8]) -> Option<[u8; ULID_BYTES]> {
    key.len()
        .checked_sub(ULID_BYTES)
        .and_then(|start| key[start..].try_into().ok())
}

impl EmbeddedRecordingStore {
    /// Opens the store in `path`, creating it if needed. Blocks on file I/O: call it at startup.
    ///
    /// # Errors
    /// [`crate::Error::Open`] if the database cannot be opened (for example because it is already
    /// open), [`crate::Error::OpenTable`] if a table cannot be created.
    pub fn open(path: &Path) -> Result<Self> {
        let database = open_database(path)?;
        Ok(Self {
            tables: Arc::new(RecordingTables {
                recordings: open_table(&database, RECORDINGS)?,
                by_conversation: open_table(&database, RECORDINGS_BY_CONVERSATION)?,
                audit: open_table(&database, AUDIT)?,
                database,
                writer: Mutex::new(()),
            }),
        })
    }

    async fn run_blocking<Output, Work>(&self, work: Work) -> Result<Output, StoreError>
    where
        Output: Send + 'static,
        Work: FnOnce(&RecordingTables) -> Result<Output, StoreError> + Send + 'static,
    {
        let tables = Arc::clone(&self.tables);
        tokio::task::spawn_blocking(move || work(&tables))
            .await
            .map_err(|error| StoreError::Unavailable(format!("storage task failed: {error}")))?
    }
}

impl RecordingTables {
    fn read(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        self.database
            .snapshot()
            .get(&self.recordings, recording_key(tenant_id, recording_id))
            .map_err(|error| unavailable("could not read recordings", error))?
            .map(|value| codec::decode(RECORDINGS, &value))
            .transpose()
    }

    fn commit(&self, batch: fjall::OwnedWriteBatch, what: &str) -> Result<(), StoreError> {
        batch.commit().map_err(|error| unavailable(what, error))
    }

    fn batch(&self) -> fjall::OwnedWriteBatch {
        self.database.batch().durability(Some(PersistMode::SyncAll))
    }
}

#[async_trait]
impl RecordingStore for EmbeddedRecordingStore {
    async fn create_recording(
        &self,
        tenant_id: &TenantId,
        record: &RecordingRecord,
    ) -> Result<(), StoreError> {
        let tenant_id = tenant_id.clone();
        let record = record.clone();
        self.run_blocking(move |tables| {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if tables.read(&tenant_id, record.recording_id)?.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let mut batch = tables.batch();
            batch.insert(
                &tables.recordings,
                recording_key(&tenant_id, record.recording_id),
                codec::encode(&record)?,
            );
            batch.insert(
                &tables.by_conversation,
                by_conversation_key(&tenant_id, &record),
                [],
            );
            tables.commit(batch, "could not store a recording")
        })
        .await
    }

    async fn update_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        update: RecordingUpdate,
    ) -> Result<RecordingUpdateOutcome, StoreError> {
        let tenant_id = tenant_id.clone();
        self.run_blocking(move |tables| {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(mut record) = tables.read(&tenant_id, recording_id)? else {
                return Ok(RecordingUpdateOutcome::NotFound);
            };
            if let Err(error) = record.apply(update) {
                return Ok(RecordingUpdateOutcome::Refused(error));
            }
            let mut batch = tables.batch();
            batch.insert(
                &tables.recordings,
                recording_key(&tenant_id, recording_id),
                codec::encode(&record)?,
            );
            tables.commit(batch, "could not update a recording")?;
            Ok(RecordingUpdateOutcome::Updated(Box::new(record)))
        })
        .await
    }

    async fn recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        self.tables.read(tenant_id, recording_id)
    }

    async fn recordings(
        &self,
        tenant_id: &TenantId,
        filter: RecordingFilter,
        before: Option<RecordingId>,
        limit: usize,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        let tables = &self.tables;
        let snapshot = tables.database.snapshot();
        let (table, prefix) = match filter.conversation_id {
            Some(conversation_id) => (
                &tables.by_conversation,
                keys::conversation_key(tenant_id, conversation_id),
            ),
            None => (&tables.recordings, keys::tenant_prefix(tenant_id)),
        };
        let mut end = prefix.clone();
        end.extend_from_slice(&before.map_or([0xff; ULID_BYTES], RecordingId::to_bytes));
        let mut start = prefix;
        start.extend_from_slice(&[0; ULID_BYTES]);
        let scan = if before.is_some() {
            snapshot.range(table, start..end)
        } else {
            snapshot.range(table, start..=end)
        };
        let mut page = Vec::new();
        for guard in scan.rev().take(limit) {
            let key = guard
                .key()
                .map_err(|error| unavailable("could not read recordings", error))?;
            let recording_id = trailing_id(&key)
                .map(RecordingId::from_bytes)
                .ok_or_else(|| StoreError::Corrupt("a recording key is too short".to_owned()))?;
            let value = snapshot
                .get(&tables.recordings, recording_key(tenant_id, recording_id))
                .map_err(|error| unavailable("could not read recordings", error))?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("recording {recording_id} is indexed but missing"))
                })?;
            page.push(codec::decode(RECORDINGS, &value)?);
        }
        Ok(page)
    }

    async fn erase_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        audit: &AuditRecord,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        let tenant_id = tenant_id.clone();
        let audit = audit.clone();
        self.run_blocking(move |tables| {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(record) = tables.read(&tenant_id, recording_id)? else {
                return Ok(None);
            };
            let mut batch = tables.batch();
            batch.remove(&tables.recordings, recording_key(&tenant_id, recording_id));
            batch.remove(
                &tables.by_conversation,
                by_conversation_key(&tenant_id, &record),
            );
            batch.insert(
                &tables.audit,
                keys::tenant_id_key(&tenant_id, audit.audit_id.to_bytes()),
                codec::encode(&audit)?,
            );
            tables.commit(batch, "could not erase a recording")?;
            Ok(Some(record))
        })
        .await
    }

    async fn audit_log(
        &self,
        tenant_id: &TenantId,
        before: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let tables = &self.tables;
        let snapshot = tables.database.snapshot();
        let start = keys::tenant_id_key(tenant_id, [0; ULID_BYTES]);
        let end = keys::tenant_id_key(
            tenant_id,
            before.map_or([0xff; ULID_BYTES], AuditId::to_bytes),
        );
        let scan = if before.is_some() {
            snapshot.range(&tables.audit, start..end)
        } else {
            snapshot.range(&tables.audit, start..=end)
        };
        scan.rev()
            .take(limit)
            .map(|guard| {
                let value = guard
                    .value()
                    .map_err(|error| unavailable("could not read audit", error))?;
                codec::decode(AUDIT, &value)
            })
            .collect()
    }
}
