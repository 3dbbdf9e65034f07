//! The in-memory [`RecentSearches`]: each user's list in a map behind one mutex. The test
//! double of the port; it passes the same conformance suite as the durable adapters and loses
//! everything when dropped.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::search::recent::{RecentSearch, RecentSearches, remembered};

/// Recent searches in memory.
#[derive(Default)]
pub struct MemoryRecentSearches {
    lists: Mutex<HashMap<(TenantId, UserId), Vec<RecentSearch>>>,
}

impl MemoryRecentSearches {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RecentSearches for MemoryRecentSearches {
    async fn remember(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        search: RecentSearch,
    ) -> Result<(), StoreError> {
        // Every critical section leaves the map consistent.
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let list = lists
            .entry((tenant_id.clone(), user_id.clone()))
            .or_default();
        *list = remembered(std::mem::take(list), search);
        Ok(())
    }

    async fn recent(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<RecentSearch>, StoreError> {
        let lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(lists
            .get(&(tenant_id.clone(), user_id.clone()))
            .cloned()
            .unwrap_or_default())
    }

    async fn forget(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<usize, StoreError> {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(lists
            .remove(&(tenant_id.clone(), user_id.clone()))
            .map_or(0, |list| list.len()))
    }
}
