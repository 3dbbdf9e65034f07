//! The in-memory [`ObjectStore`]: objects in a map behind a mutex, keyed by tenant and key.
//! It is the test double of the object port (the actors' tests and the benches use it) and
//! passes the same conformance suite (`tests/object_store.rs`) as the filesystem and S3
//! stores; everything is lost when it is dropped. A streamed put collects the chunks (memory
//! is where it stores them) and inserts the object only once the source has ended within its
//! limit, so a failed put leaves the map as it was.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_engine::blob::{
    ByteRange, ByteSource, ChunksStream, ObjectBody, ObjectKey, ObjectRange, ObjectStore,
    WrittenObject,
};
use switchboard_engine::ids::TenantId;
use switchboard_engine::{PutError, StoreError};

use crate::blob::stream::{Checksum, Intake};

/// Objects in memory.
#[derive(Default)]
pub struct MemoryObjectStore {
    objects: Mutex<HashMap<(TenantId, ObjectKey), ObjectBody>>,
}

impl MemoryObjectStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many objects it holds, across tenants (for tests that check nothing was left).
    pub fn n_objects(&self) -> usize {
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn location(&self, tenant_id: &TenantId, key: &ObjectKey) -> String {
        format!("memory:{tenant_id}/{key}")
    }

    async fn put_stream(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        content_type: &str,
        source: &mut dyn ByteSource,
        max_bytes: u64,
    ) -> Result<WrittenObject, PutError> {
        let mut intake = Intake::new(source, max_bytes);
        let mut checksum = Checksum::default();
        let mut bytes = Vec::new();
        while let Some(chunk) = intake.next_chunk().await? {
            checksum.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        let body = ObjectBody {
            bytes,
            content_type: content_type.to_owned(),
        };
        self.objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((tenant_id.clone(), key.clone()), body);
        Ok(checksum.finish())
    }

    async fn get_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<Option<ObjectBody>, StoreError> {
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant_id.clone(), key.clone()))
            .cloned())
    }

    async fn get_range(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<Option<ObjectRange>, StoreError> {
        let Some(body) = self.get_object(tenant_id, key).await? else {
            return Ok(None);
        };
        let total_bytes = u64::try_from(body.bytes.len()).unwrap_or(u64::MAX);
        let (start, end) = range.within(total_bytes);
        let mut bytes = Bytes::from(body.bytes);
        bytes.truncate(usize::try_from(end).unwrap_or(usize::MAX));
        let bytes = bytes.split_off(usize::try_from(start).unwrap_or(usize::MAX));
        Ok(Some(ObjectRange {
            content_type: body.content_type,
            total_bytes,
            start,
            end,
            bytes: Box::new(ChunksStream::new((!bytes.is_empty()).then_some(bytes))),
        }))
    }

    async fn delete_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> Result<bool, StoreError> {
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant_id.clone(), key.clone()))
            .is_some())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
