//! The embedded, durable [`RecentSearches`]: one key per user (tenant and user, as in
//! [`crate::keys::tenant_user_key`]) holding the user's list as a versioned postcard record, in
//! a fjall database of its own (the server opens `<data_dir>/recent-searches`). A search
//! rewrites the list under the writer mutex (read, [`remembered`], write, synced), so two
//! searches of one user never lose each other.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fjall::{Database, Keyspace, PersistMode, Readable};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::search::recent::{RecentSearch, RecentSearches, remembered};

use crate::Result;
use crate::codec;
use crate::keys;
use crate::log::embedded::{open_database, open_table, unavailable};

const RECENT_SEARCHES: &str = "recent_searches";

struct RecentTables {
    database: Database,
    lists: Keyspace,
    /// Serializes writes; only ever taken inside `spawn_blocking`.
    writer: Mutex<()>,
}

impl RecentTables {
    fn read(&self, key: &[u8]) -> Result<Vec<RecentSearch>, StoreError> {
        self.database
            .snapshot()
            .get(&self.lists, key)
            .map_err(|error| unavailable("could not read recent searches", error))?
            .map(|value| codec::decode(RECENT_SEARCHES, &value))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

/// Recent searches in one directory. Cloning is cheap; clones share the database.
#[derive(Clone)]
pub struct EmbeddedRecentSearches {
    tables: Arc<RecentTables>,
}

impl EmbeddedRecentSearches {
    /// Opens the store in `path`, creating it if needed. Blocks on file I/O: call it at startup.
    ///
    /// # Errors
    /// [`crate::Error::Open`] if the database cannot be opened (for example because it is already
    /// open), [`crate::Error::OpenTable`] if its table cannot be created.
    pub fn open(path: &Path) -> Result<Self> {
        let database = open_database(path)?;
        Ok(Self {
            tables: Arc::new(RecentTables {
                lists: open_table(&database, RECENT_SEARCHES)?,
                database,
                writer: Mutex::new(()),
            }),
        })
    }

    async fn run_blocking<Output, Work>(&self, work: Work) -> Result<Output, StoreError>
    where
        Output: Send + 'static,
        Work: FnOnce(&RecentTables) -> Result<Output, StoreError> + Send + 'static,
    {
        let tables = Arc::clone(&self.tables);
        tokio::task::spawn_blocking(move || work(&tables))
            .await
            .map_err(|error| StoreError::Unavailable(format!("storage task failed: {error}")))?
    }
}

#[async_trait]
impl RecentSearches for EmbeddedRecentSearches {
    async fn remember(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        search: RecentSearch,
    ) -> Result<(), StoreError> {
        let key = keys::tenant_user_key(tenant_id, user_id);
        self.run_blocking(move |tables| {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let list = remembered(tables.read(&key)?, search);
            let mut batch = tables
                .database
                .batch()
                .durability(Some(PersistMode::SyncAll));
            batch.insert(&tables.lists, key, codec::encode(&list)?);
            batch
                .commit()
                .map_err(|error| unavailable("could not store a recent search", error))
        })
        .await
    }

    async fn recent(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<RecentSearch>, StoreError> {
        let key = keys::tenant_user_key(tenant_id, user_id);
        self.run_blocking(move |tables| tables.read(&key)).await
    }

    async fn forget(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<usize, StoreError> {
        let key = keys::tenant_user_key(tenant_id, user_id);
        self.run_blocking(move |tables| {
            let _writer = tables.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let erased = tables.read(&key)?.len();
            let mut batch = tables
                .database
                .batch()
                .durability(Some(PersistMode::SyncAll));
            batch.remove(&tables.lists, key);
            batch
                .commit()
                .map_err(|error| unavailable("could not erase recent searches", error))?;
            Ok(erased)
        })
        .await
    }
}
