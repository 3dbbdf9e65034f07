//! The in-memory [`MediaStore`]: media records in an ordered map behind one mutex, usage summed
//! on demand. It is the test double of the media port and passes the same conformance suite
//! (`tests/media.rs`) as the durable adapter; everything is lost when it is dropped.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use switchboard_engine::ids::{MediaId, TenantId, UserId};
use switchboard_engine::media::{
    MediaQuotas, MediaRecord, MediaStore, MediaUpdate, MediaUpdateOutcome, MediaUsage,
    is_collectable,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, StoreError};

type MediaTable = BTreeMap<(TenantId, MediaId), MediaRecord>;

/// Media records in memory.
#[derive(Default)]
pub struct MemoryMediaStore {
    records: Mutex<MediaTable>,
}

impl MemoryMediaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MediaTable> {
        // Every critical section leaves the map consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn usage_in(records: &MediaTable, tenant_id: &TenantId, user_id: &UserId) -> MediaUsage {
    records
        .iter()
        .filter(|((tenant, _), _)| tenant == tenant_id)
        .fold(MediaUsage::default(), |usage, (_, record)| {
            let charged = record.charged_bytes();
            MediaUsage {
                tenant_bytes: usage.tenant_bytes.saturating_add(charged),
                user_bytes: if record.uploader == *user_id {
                    usage.user_bytes.saturating_add(charged)
                } else {
                    usage.user_bytes
                },
            }
        })
}

#[async_trait]
impl MediaStore for MemoryMediaStore {
    async fn create_media(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        quotas: MediaQuotas,
    ) -> Result<Result<(), Error>, StoreError> {
        let mut records = self.lock();
        let key = (tenant_id.clone(), record.media_id);
        if records.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        let usage = usage_in(&records, tenant_id, &record.uploader);
        if let Err(error) = quotas.admit(usage, record.charged_bytes()) {
            return Ok(Err(error));
        }
        records.insert(key, record.clone());
        Ok(Ok(()))
    }

    async fn update_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: MediaUpdate,
    ) -> Result<MediaUpdateOutcome, StoreError> {
        let mut records = self.lock();
        let Some(record) = records.get_mut(&(tenant_id.clone(), media_id)) else {
            return Ok(MediaUpdateOutcome::NotFound);
        };
        let mut updated = record.clone();
        Ok(match updated.apply(update) {
            Ok(()) => {
                *record = updated.clone();
                MediaUpdateOutcome::Updated(Box::new(updated))
            }
            Err(error) => MediaUpdateOutcome::Refused(error),
        })
    }

    async fn media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        Ok(self.lock().get(&(tenant_id.clone(), media_id)).cloned())
    }

    async fn usage(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<MediaUsage, StoreError> {
        Ok(usage_in(&self.lock(), tenant_id, user_id))
    }

    async fn remove_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        Ok(self.lock().remove(&(tenant_id.clone(), media_id)))
    }

    async fn media_to_collect(
        &self,
        now: Timestamp,
        orphaned_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, MediaRecord)>, StoreError> {
        Ok(self
            .lock()
            .iter()
            .filter(|(_, record)| is_collectable(record, now, orphaned_before))
            .take(limit)
            .map(|((tenant_id, _), record)| (tenant_id.clone(), record.clone()))
            .collect())
    }
}
