//! The in-memory [`RecordingStore`]: recording metadata and the audit log in ordered maps
//! behind one mutex. It is the test double of the recording port and passes the same
//! conformance suite (`tests/recordings.rs`) as the durable adapters; everything is lost when
//! it is dropped.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{AuditId, RecordingId, TenantId};
use switchboard_engine::recording::{
    AuditRecord, RecordingFilter, RecordingRecord, RecordingStore, RecordingUpdate,
    RecordingUpdateOutcome,
};

#[derive(Default)]
struct RecordingTables {
    recordings: BTreeMap<(TenantId, RecordingId), RecordingRecord>,
    audit: BTreeMap<(TenantId, AuditId), AuditRecord>,
}

/// Recording metadata and audit records in memory.
#[derive(Default)]
pub struct MemoryRecordingStore {
    tables: Mutex<RecordingTables>,
}

impl MemoryRecordingStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, RecordingTables> {
        // Every critical section leaves the maps consistent, so a panic elsewhere cannot have
        // left them half-written.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl RecordingStore for MemoryRecordingStore {
    async fn create_recording(
        &self,
        tenant_id: &TenantId,
        record: &RecordingRecord,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        let key = (tenant_id.clone(), record.recording_id);
        if tables.recordings.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        tables.recordings.insert(key, record.clone());
        Ok(())
    }

    async fn update_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        update: RecordingUpdate,
    ) -> Result<RecordingUpdateOutcome, StoreError> {
        let mut tables = self.lock();
        let Some(record) = tables
            .recordings
            .get_mut(&(tenant_id.clone(), recording_id))
        else {
            return Ok(RecordingUpdateOutcome::NotFound);
        };
        let mut updated = record.clone();
        Ok(match updated.apply(update) {
            Ok(()) => {
                *record = updated.clone();
                RecordingUpdateOutcome::Updated(Box::new(updated))
            }
            Err(error) => RecordingUpdateOutcome::Refused(error),
        })
    }

    async fn recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        Ok(self
            .lock()
            .recordings
            .get(&(tenant_id.clone(), recording_id))
            .cloned())
    }

    async fn recordings(
        &self,
        tenant_id: &TenantId,
        filter: RecordingFilter,
        before: Option<RecordingId>,
        limit: usize,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        let tables = self.lock();
        let end = (
            tenant_id.clone(),
            before.unwrap_or(RecordingId::from_bytes([0xff; 16])),
        );
        let start = (tenant_id.clone(), RecordingId::from_bytes([0; 16]));
        let range = if before.is_some() {
            tables.recordings.range(start..end)
        } else {
            tables.recordings.range(start..=end)
        };
        Ok(range
            .rev()
            .map(|(_, record)| record)
            .filter(|record| {
                filter
                    .conversation_id
                    .is_none_or(|conversation_id| record.conversation_id == conversation_id)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn erase_recording(
        &self,
        tenant_id: &TenantId,
        recording_id: RecordingId,
        audit: &AuditRecord,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        let mut tables = self.lock();
        let erased = tables.recordings.remove(&(tenant_id.clone(), recording_id));
        if erased.is_some() {
            tables
                .audit
                .insert((tenant_id.clone(), audit.audit_id), audit.clone());
        }
        Ok(erased)
    }

    async fn audit_log(
        &self,
        tenant_id: &TenantId,
        before: Option<AuditId>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let tables = self.lock();
        let start = (tenant_id.clone(), AuditId::from_bytes([0; 16]));
        let end = (
            tenant_id.clone(),
            before.unwrap_or(AuditId::from_bytes([0xff; 16])),
        );
        let range = if before.is_some() {
            tables.audit.range(start..end)
        } else {
            tables.audit.range(start..=end)
        };
        Ok(range
            .rev()
            .take(limit)
            .map(|(_, audit)| audit.clone())
            .collect())
    }
}
