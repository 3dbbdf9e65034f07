//! The embedded, durable [`MediaStore`]: media records in a fjall database of their own (the
//! server opens it in `<data_dir>/media`).
//!
//! Three keyspaces. `media` holds each record under its tenant and id. `media_usage` holds the
//! charged bytes of each tenant (under the tenant's prefix) and of each user (under the tenant
//! and user), kept in step with the records in the same batch, so a quota check reads two keys
//! instead of summing a tenant's media. `media_lifecycle` indexes what the garbage collector
//! will want and from when: `[kind][time][tenant][id]`, kind 0 for deleted media, 1 for
//! unfinished uploads by expiry, 2 for complete media nobody attached by completion time; the
//! collector reads the due part of each instead of every record.
//!
//! Every write is one batch committed with [`PersistMode::SyncAll`] while the writer mutex is
//! held, so a read-modify-write never loses a concurrent one and two creations cannot together
//! pass a quota. Reads use snapshots, which see only whole batches.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fjall::{Database, Keyspace, PersistMode, Readable, Snapshot};
use switchboard_engine::ids::{MediaId, TenantId, UserId};
use switchboard_engine::media::{
    MediaQuotas, MediaRecord, MediaState, MediaStore, MediaUpdate, MediaUpdateOutcome, MediaUsage,
    is_collectable,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, StoreError};

use crate::codec;
use crate::keys::{self, ULID_BYTES};
use crate::log::embedded::{open_table, unavailable};
use crate::{Error as OpenError, Result};

const MEDIA: &str = "media";
const MEDIA_USAGE: &str = "media_usage";
const MEDIA_LIFECYCLE: &str = "media_lifecycle";

/// The kinds of the lifecycle index; the collector reads deleted, assembled, expiring,
/// orphaned.
const DELETED: u8 = 0;
const EXPIRING: u8 = 1;
const ORPHANED: u8 = 2;
/// Assembled media whose parts are still to be deleted (read after the deleted ones).
const ASSEMBLED: u8 = 3;

struct MediaTables {
    database: Database,
    records: Keyspace,
    usage: Keyspace,
    lifecycle: Keyspace,
    /// Serializes writes; only ever taken inside `spawn_blocking`.
    writer: Mutex<()>,
}

/// A durable [`MediaStore`] in one directory. Cloning is cheap; clones share the database.
#[derive(Clone)]
pub struct EmbeddedMediaStore {
    tables: Arc<MediaTables>,
}

fn record_key(tenant_id: &TenantId, media_id: MediaId) -> Vec<u8> {
    keys::tenant_id_key(tenant_id, media_id.to_bytes())
}

/// The lifecycle index key of a record, if the collector will ever want it as it is.
fn lifecycle_key(tenant_id: &TenantId, record: &MediaRecord) -> Option<Vec<u8>> {
    let (kind, at) = match record.state {
        MediaState::Deleted { deleted_at, .. } => (DELETED, deleted_at),
        MediaState::Uploading { expires_at, .. } => (EXPIRING, expires_at),
        MediaState::Complete { completed_at } if record.attached_to.is_empty() => {
            (ORPHANED, completed_at)
        }
        MediaState::Complete { .. } => return None,
        MediaState::Assembled { completed_at, .. } => (ASSEMBLED, completed_at),
    };
    let mut key = vec![kind];
    key.extend_from_slice(&at.0.to_be_bytes());
    key.extend_from_slice(&record_key(tenant_id, record.media_id));
    Some(key)
}

/// The tenant and media id a lifecycle key names.
fn parse_lifecycle_key(key: &[u8]) -> Option<(TenantId, MediaId)> {
    let rest = key.get(1 + 8..)?;
    let (&tenant_length, rest) = rest.split_first()?;
    let tenant = rest.get(..usize::from(tenant_length))?;
    let id: [u8; ULID_BYTES] = rest.get(usize::from(tenant_length)..)?.try_into().ok()?;
    let tenant_id = TenantId::parse(std::str::from_utf8(tenant).ok()?).ok()?;
    Some((tenant_id, MediaId::from_bytes(id)))
}

impl EmbeddedMediaStore {
    /// Opens the store in `path`, creating it if needed. Blocks on file I/O: call it at startup.
    ///
    /// # Errors
    /// [`OpenError::Open`] if the database cannot be opened (for example because it is already
    /// open), [`OpenError::OpenTable`] if a table cannot be created.
    pub fn open(path: &Path) -> Result<Self> {
        let database = Database::builder(path)
            .open()
            .map_err(|source| OpenError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            tables: Arc::new(MediaTables {
                records: open_table(&database, MEDIA)?,
                usage: open_table(&database, MEDIA_USAGE)?,
                lifecycle: open_table(&database, MEDIA_LIFECYCLE)?,
                database,
                writer: Mutex::new(()),
            }),
        })
    }

    /// Runs a write under the writer mutex on the blocking pool, with a snapshot taken after
    /// the mutex, so it sees every committed write.
    async fn write<Output, Work>(&self, work: Work) -> Result<Output, StoreError>
    where
        Output: Send + 'static,
        Work: FnOnce(&MediaTables, &Snapshot) -> Result<Output, StoreError> + Send + 'static,
    {
        let tables = Arc::clone(&self.tables);
        tokio::task::spawn_blocking(move || {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let snapshot = tables.database.snapshot();
            work(&tables, &snapshot)
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("storage task failed: {error}")))?
    }
}

impl MediaTables {
    fn read(
        &self,
        snapshot: &Snapshot,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        snapshot
            .get(&self.records, record_key(tenant_id, media_id))
            .map_err(|error| unavailable("could not read media", error))?
            .map(|value| codec::decode(MEDIA, &value))
            .transpose()
    }

    fn counter(&self, snapshot: &Snapshot, key: &[u8]) -> Result<u64, StoreError> {
        snapshot
            .get(&self.usage, key)
            .map_err(|error| unavailable("could not read media usage", error))?
            .map_or(Ok(0), |value| codec::decode(MEDIA_USAGE, &value))
    }

    fn usage(
        &self,
        snapshot: &Snapshot,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<MediaUsage, StoreError> {
        Ok(MediaUsage {
            tenant_bytes: self.counter(snapshot, &keys::tenant_prefix(tenant_id))?,
            user_bytes: self.counter(snapshot, &keys::tenant_user_key(tenant_id, user_id))?,
        })
    }

    /// Writes the change of one record from `old` to `new` (either absent) in one durable
    /// batch: the record, its lifecycle entry and its uploader's and tenant's usage.
    fn commit_change(
        &self,
        snapshot: &Snapshot,
        tenant_id: &TenantId,
        old: Option<&MediaRecord>,
        new: Option<&MediaRecord>,
    ) -> Result<(), StoreError> {
        let Some(any) = new.or(old) else {
            return Ok(());
        };
        let mut batch = self.database.batch().durability(Some(PersistMode::SyncAll));
        let key = record_key(tenant_id, any.media_id);
        match new {
            Some(record) => batch.insert(&self.records, key, codec::encode(record)?),
            None => batch.remove(&self.records, key),
        }
        let old_lifecycle = old.and_then(|record| lifecycle_key(tenant_id, record));
        let new_lifecycle = new.and_then(|record| lifecycle_key(tenant_id, record));
        if old_lifecycle != new_lifecycle {
            if let Some(key) = old_lifecycle {
                batch.remove(&self.lifecycle, key);
            }
            if let Some(key) = new_lifecycle {
                batch.insert(&self.lifecycle, key, []);
            }
        }
        let old_charged = old.map_or(0, MediaRecord::charged_bytes);
        let new_charged = new.map_or(0, MediaRecord::charged_bytes);
        if old_charged != new_charged {
            for usage_key in [
                keys::tenant_prefix(tenant_id),
                keys::tenant_user_key(tenant_id, &any.uploader),
            ] {
                let charged = self
                    .counter(snapshot, &usage_key)?
                    .saturating_sub(old_charged)
                    .saturating_add(new_charged);
                batch.insert(&self.usage, usage_key, codec::encode(&charged)?);
            }
        }
        batch
            .commit()
            .map_err(|error| unavailable("could not commit a media change", error))
    }
}

#[async_trait]
impl MediaStore for EmbeddedMediaStore {
    async fn create_media(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
        quotas: MediaQuotas,
    ) -> Result<Result<(), Error>, StoreError> {
        let tenant_id = tenant_id.clone();
        let record = record.clone();
        self.write(move |tables, snapshot| {
            if tables
                .read(snapshot, &tenant_id, record.media_id)?
                .is_some()
            {
                return Err(StoreError::AlreadyExists);
            }
            let usage = tables.usage(snapshot, &tenant_id, &record.uploader)?;
            if let Err(error) = quotas.admit(usage, record.charged_bytes()) {
                return Ok(Err(error));
            }
            tables.commit_change(snapshot, &tenant_id, None, Some(&record))?;
            Ok(Ok(()))
        })
        .await
    }

    async fn update_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
        update: MediaUpdate,
    ) -> Result<MediaUpdateOutcome, StoreError> {
        let tenant_id = tenant_id.clone();
        self.write(move |tables, snapshot| {
            let Some(old) = tables.read(snapshot, &tenant_id, media_id)? else {
                return Ok(MediaUpdateOutcome::NotFound);
            };
            let mut new = old.clone();
            if let Err(error) = new.apply(update) {
                return Ok(MediaUpdateOutcome::Refused(error));
            }
            tables.commit_change(snapshot, &tenant_id, Some(&old), Some(&new))?;
            Ok(MediaUpdateOutcome::Updated(Box::new(new)))
        })
        .await
    }

    async fn media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        let tables = &self.tables;
        tables.read(&tables.database.snapshot(), tenant_id, media_id)
    }

    async fn usage(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<MediaUsage, StoreError> {
        let tables = &self.tables;
        tables.usage(&tables.database.snapshot(), tenant_id, user_id)
    }

    async fn remove_media(
        &self,
        tenant_id: &TenantId,
        media_id: MediaId,
    ) -> Result<Option<MediaRecord>, StoreError> {
        let tenant_id = tenant_id.clone();
        self.write(move |tables, snapshot| {
            let old = tables.read(snapshot, &tenant_id, media_id)?;
            tables.commit_change(snapshot, &tenant_id, old.as_ref(), None)?;
            Ok(old)
        })
        .await
    }

    async fn media_to_collect(
        &self,
        now: Timestamp,
        orphaned_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(TenantId, MediaRecord)>, StoreError> {
        let tables = &self.tables;
        let snapshot = tables.database.snapshot();
        // Each kind's entries due by the time its rule names, as a key range.
        let due = |kind: u8, through: Option<u64>| {
            let start = vec![kind];
            let end = match through {
                Some(time) => {
                    let mut end = vec![kind];
                    end.extend_from_slice(&time.to_be_bytes());
                    end
                }
                None => vec![kind + 1],
            };
            (start, end)
        };
        let mut found = Vec::new();
        for (start, end) in [
            due(DELETED, None),
            due(ASSEMBLED, None),
            // Expired when expires_at <= now: every key below now + 1.
            due(EXPIRING, Some(now.0.saturating_add(1))),
            // Orphaned when completed_at < orphaned_before.
            due(ORPHANED, Some(orphaned_before.0)),
        ] {
            for guard in snapshot.range(&tables.lifecycle, start..end) {
                if found.len() >= limit {
                    return Ok(found);
                }
                let key = guard
                    .key()
                    .map_err(|error| unavailable("could not read media_lifecycle", error))?;
                let (tenant_id, media_id) = parse_lifecycle_key(&key).ok_or_else(|| {
                    StoreError::Corrupt("a media_lifecycle key does not parse".to_owned())
                })?;
                if let Some(record) = tables.read(&snapshot, &tenant_id, media_id)?
                    && is_collectable(&record, now, orphaned_before)
                {
                    found.push((tenant_id, record));
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use switchboard_engine::ids::{ConversationId, MessageId, UserId};
    use switchboard_engine::media::{AttachedTo, MediaFileName};

    use super::*;

    #[test]
    fn lifecycle_keys_name_their_record_and_sort_by_kind_then_time() {
        let tenant_id = TenantId::parse("acme").expect("valid");
        let media_id = MediaId::from_parts(7, 9);
        let record = MediaRecord::declared(
            media_id,
            UserId::parse("alice").expect("valid"),
            MediaFileName::parse("a.txt").expect("valid"),
            None,
            3,
            Timestamp(10),
            Timestamp(20),
        );
        let key = lifecycle_key(&tenant_id, &record).expect("an upload expires");
        assert_eq!(key[0], EXPIRING);
        assert_eq!(
            parse_lifecycle_key(&key),
            Some((tenant_id.clone(), media_id))
        );
        let mut later = record.clone();
        later.state = MediaState::Uploading {
            received_bytes: 0,
            expires_at: Timestamp(21),
            lease: None,
            parts: Vec::new(),
        };
        assert!(key < lifecycle_key(&tenant_id, &later).expect("expires"));
        let mut attached = record;
        attached.state = MediaState::Complete {
            completed_at: Timestamp(15),
        };
        attached.attached_to = vec![AttachedTo {
            conversation_id: ConversationId::from_parts(1, 1),
            message_id: MessageId::from_parts(1, 1),
        }];
        assert_eq!(lifecycle_key(&tenant_id, &attached), None);
    }
}
