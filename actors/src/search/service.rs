//! The search service: a caller's search, with the caller's scope worked out by the same rules
//! as history. The index is asked only about the conversations the caller is a member of now
//! (read from the store, not the token), minus the messages the caller deleted for themself;
//! an `in:` filter can only narrow that, so naming a conversation one is not in finds nothing
//! and says nothing of it. Not an actor: each call is one request's work on the store and the
//! index ports, every call bounded by a timeout.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchboard_engine::Error;
use switchboard_engine::ids::ConversationId;
use switchboard_engine::ports::{LogCursor, MessageStore};
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::{
    ReadableConversation, SearchCursor, SearchIndex, SearchPage, SearchRequest, SearchSort,
};

use super::indexer::SearchIndexerHandle;
use crate::session::Identity;
use crate::uploads::bounded;

/// How many conversation ids one read of the caller's memberships takes.
const MEMBERSHIP_PAGE: usize = 1_000;

/// What the service runs with.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// The most conversations one search looks in (the caller's first ones, in id order).
    pub max_conversations: usize,
    /// The longest one store or index call may take.
    pub call_timeout: Duration,
    /// How long a consistent search waits for the index to take everything stored.
    pub consistent_wait: Duration,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            max_conversations: 10_000,
            call_timeout: Duration::from_secs(5),
            consistent_wait: Duration::from_secs(2),
        }
    }
}

/// One search of messages, as the caller asked.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSearch {
    /// The parsed query.
    pub query: SearchQuery,
    /// The order.
    pub sort: SearchSort,
    /// At most this many hits.
    pub limit: usize,
    /// Where the page starts.
    pub cursor: Option<SearchCursor>,
    /// Wait until the index has taken everything stored before this search began (so a
    /// caller finds what it just sent), at most [`SearchSettings::consistent_wait`].
    pub consistent: bool,
}

/// Searches messages for their readers.
pub struct SearchService {
    store: Arc<dyn MessageStore>,
    index: Arc<dyn SearchIndex>,
    settings: SearchSettings,
    /// The indexer, for consistent searches (started after the service).
    indexer: OnceLock<SearchIndexerHandle>,
}

impl SearchService {
    /// A service over `store` (memberships, hidden messages) and `index`.
    pub fn new(
        store: Arc<dyn MessageStore>,
        index: Arc<dyn SearchIndex>,
        settings: SearchSettings,
    ) -> Self {
        Self {
            store,
            index,
            settings,
            indexer: OnceLock::new(),
        }
    }

    /// Lets consistent searches ask `indexer` to catch up. A second call changes nothing.
    pub fn use_indexer(&self, indexer: SearchIndexerHandle) {
        let _ = self.indexer.set(indexer);
    }

    /// One page of the caller's messages that match.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store or the index fails or is slow, or a consistent
    /// search's index does not catch up in time.
    pub async fn search_messages(
        &self,
        identity: &Identity,
        search: MessageSearch,
    ) -> Result<SearchPage, Error> {
        if search.consistent {
            let indexer = self.indexer.get().ok_or_else(|| {
                Error::unavailable("the search indexer is not running on this node")
            })?;
            indexer
                .catch_up(self.settings.consistent_wait)
                .await
                .map_err(|_| {
                    Error::unavailable(
                        "the search index did not catch up with the store in time; retry",
                    )
                })?;
        }
        let scope = self.scope(identity, &search.query.conversations).await?;
        let request = SearchRequest {
            tenant_id: identity.tenant_id.clone(),
            query: search.query,
            scope,
            sort: search.sort,
            limit: search.limit,
            cursor: search.cursor,
        };
        bounded(
            self.settings.call_timeout,
            "searching the index",
            self.index.search(&request),
        )
        .await
    }

    /// Up to `limit` words starting with `prefix` (folded) from messages the caller can read,
    /// most frequent first.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store or the index fails or is slow.
    pub async fn suggest(
        &self,
        identity: &Identity,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        let scope = self.scope(identity, &[]).await?;
        if scope.is_empty() {
            return Ok(Vec::new());
        }
        bounded(
            self.settings.call_timeout,
            "suggesting words",
            self.index
                .suggest(&identity.tenant_id, &scope, prefix, limit),
        )
        .await
    }

    /// The log position the index reflects.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the index fails.
    pub async fn indexed_up_to(&self) -> Result<LogCursor, Error> {
        bounded(
            self.settings.call_timeout,
            "reading the index's checkpoint",
            self.index.checkpoint(),
        )
        .await
    }

    /// The conversations the caller may search: member of now, narrowed to `only` when given,
    /// each with the caller's hidden messages.
    async fn scope(
        &self,
        identity: &Identity,
        only: &[ConversationId],
    ) -> Result<Vec<ReadableConversation>, Error> {
        let mut member_of: Vec<ConversationId> = Vec::new();
        let mut after = None;
        while member_of.len() < self.settings.max_conversations {
            let page = bounded(
                self.settings.call_timeout,
                "reading the caller's conversations",
                self.store.conversations_of_user(
                    &identity.tenant_id,
                    &identity.user_id,
                    after,
                    MEMBERSHIP_PAGE,
                ),
            )
            .await?;
            after = page.last().copied();
            let complete = page.len() < MEMBERSHIP_PAGE;
            member_of.extend(page);
            if complete {
                break;
            }
        }
        member_of.truncate(self.settings.max_conversations);
        if !only.is_empty() {
            member_of.retain(|conversation_id| only.contains(conversation_id));
        }
        let mut scope = Vec::with_capacity(member_of.len());
        for conversation_id in member_of {
            let hidden = bounded(
                self.settings.call_timeout,
                "reading hidden messages",
                self.store
                    .hidden_messages(&identity.tenant_id, conversation_id, &identity.user_id),
            )
            .await?;
            scope.push(ReadableConversation {
                conversation_id,
                hidden: hidden.into_iter().collect(),
            });
        }
        Ok(scope)
    }
}
