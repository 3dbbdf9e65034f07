//! The in-memory [`ObjectStore`]: objects in a map behind a mutex, keyed by tenant and key.
//! It is the test double of the object port (the actors' tests and the benches use it) and
//! passes the same conformance suite (`tests/object_store.rs`) as the filesystem and S3
//! stores; everything is lost when it is dropped. A streamed put collects the chunks (memory
//! is where it stores them) and inserts the object only once the source has ended within its
//! limit, so a failed put leaves the map as it was.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::ids::TenantId;
use switchboard_engine::recording::{
    ByteSource, ObjectBody, ObjectKey, ObjectStore, WrittenObject,
};
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
