//! The MongoDB [`RecentSearches`]: one document per user in the `recent_searches` collection
//! of the message store's database (`_id` `"<tenant>/<user>"`, the list as the same versioned
//! postcard `body` the embedded store writes), shared by every node. A search rewrites the
//! list in a transaction (read, [`remembered`], write), retried from a fresh read when another
//! writer conflicts, as the message store's appends are.

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::search::recent::{RecentSearch, RecentSearches, remembered};

use crate::codec;
use crate::log::mongo::{AttemptError, MongoMessageStore, binary, decode_field, unavailable};

const RECENT_SEARCHES: &str = "recent_searches";

/// Recent searches in the MongoDB database of a [`MongoMessageStore`].
#[derive(Clone)]
pub struct MongoRecentSearches {
    messages: MongoMessageStore,
    lists: Collection<Document>,
}

fn list_key(tenant_id: &TenantId, user_id: &UserId) -> String {
    format!("{tenant_id}/{user_id}")
}

impl MongoRecentSearches {
    /// Recent searches in the database of `messages` (sharing its client; no I/O here).
    pub fn new(messages: &MongoMessageStore) -> Self {
        Self {
            lists: messages.database().collection(RECENT_SEARCHES),
            messages: messages.clone(),
        }
    }

    async fn try_remember(&self, key: &str, search: &RecentSearch) -> Result<(), AttemptError> {
        let mut session = self.messages.start_transaction().await?;
        let list: Vec<RecentSearch> = match self
            .lists
            .find_one(doc! {"_id": key})
            .session(&mut session)
            .await?
        {
            Some(document) => decode_field(RECENT_SEARCHES, &document, "body")?,
            None => Vec::new(),
        };
        let list = remembered(list, search.clone());
        self.lists
            .replace_one(
                doc! {"_id": key},
                doc! {"_id": key, "body": binary(codec::encode(&list)?)},
            )
            .upsert(true)
            .session(&mut session)
            .await?;
        MongoMessageStore::commit(&mut session).await?;
        Ok(())
    }
}

#[async_trait]
impl RecentSearches for MongoRecentSearches {
    async fn remember(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        search: RecentSearch,
    ) -> Result<(), StoreError> {
        let key = list_key(tenant_id, user_id);
        self.messages
            .retrying("remembering a search", || self.try_remember(&key, &search))
            .await
    }

    async fn recent(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<RecentSearch>, StoreError> {
        self.lists
            .find_one(doc! {"_id": list_key(tenant_id, user_id)})
            .await
            .map_err(|error| unavailable("could not read recent searches", &error))?
            .map(|document| decode_field(RECENT_SEARCHES, &document, "body"))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn forget(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<usize, StoreError> {
        let erased: Option<Vec<RecentSearch>> = self
            .lists
            .find_one_and_delete(doc! {"_id": list_key(tenant_id, user_id)})
            .await
            .map_err(|error| unavailable("could not erase recent searches", &error))?
            .map(|document| decode_field(RECENT_SEARCHES, &document, "body"))
            .transpose()?;
        Ok(erased.map_or(0, |list| list.len()))
    }
}
