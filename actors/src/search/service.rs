//! The search service: a caller's search, with the caller's scope worked out by the same rules
//! as history. The index is asked only about the conversations the caller is a member of now
//! (read from the store, not the token), minus the messages the caller deleted for themself;
//! an `in:` filter can only narrow that, so naming a conversation one is not in finds nothing
//! and says nothing of it. Not an actor: each call is one request's work on the store and the
//! index ports, every call bounded by a timeout.
//!
//! Conversations and people are found by name among the caller's conversations, loaded from
//! the store per search (the engine's `search::directory` says what matches); messages through
//! the index.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, TenantId, UserId};
use switchboard_engine::model::ConversationSnapshot;
use switchboard_engine::ports::{Clock, LogCursor, MessageStore, TailScope};
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::directory::{
    ConversationMatch, NameMatcher, UserMatch, rank_conversations, rank_users,
};
use switchboard_engine::search::index::{
    ReadableConversation, SearchCursor, SearchPage, SearchRequest, SearchSort,
};
use switchboard_engine::search::recent::{RecentSearch, RecentSearches};

use super::indexer::{RebuildProgress, SearchIndexerHandle};
use super::live::LiveSearchIndex;
use crate::session::Identity;
use crate::uploads::bounded;

/// How many conversation ids one read of the caller's memberships takes.
const MEMBERSHIP_PAGE: usize = 1_000;

/// Searches over more conversations than this are not cached (their keys would be large).
const MAX_CACHED_SCOPE: usize = 1_000;

/// What a cached page was read at: the generation, its checkpoint, and the request.
type CacheKey = (u64, LogCursor, SearchRequest);

/// What the service runs with.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    /// The most conversations one search looks in (the caller's first ones, in id order).
    pub max_conversations: usize,
    /// The longest one store or index call may take.
    pub call_timeout: Duration,
    /// How long a consistent search waits for the index to take everything stored.
    pub consistent_wait: Duration,
    /// How many pages of results are kept (0: none).
    pub result_cache_entries: usize,
    /// The tenants whose administrators may rebuild every tenant's documents (the
    /// deployment's operators, not its customers).
    pub operator_tenants: Vec<TenantId>,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            max_conversations: 10_000,
            call_timeout: Duration::from_secs(5),
            consistent_wait: Duration::from_secs(2),
            result_cache_entries: 1_000,
            operator_tenants: Vec::new(),
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

/// One search of conversations or users by name.
#[derive(Debug, Clone, PartialEq)]
pub struct NameSearch {
    /// The parsed query: words, and `in:` (checked with
    /// [`switchboard_engine::search::directory::words_only`]).
    pub query: SearchQuery,
    /// At most this many results.
    pub limit: usize,
    /// How many results earlier pages had.
    pub offset: usize,
}

/// One page of conversations or users found.
#[derive(Debug, Clone, PartialEq)]
pub struct NamePage<T> {
    /// The results, best first.
    pub found: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next: Option<SearchCursor>,
}

impl<T> NamePage<T> {
    fn cut(found: Vec<T>, offset: usize, limit: usize) -> Self {
        let more = found.len() > offset + limit;
        Self {
            found: found.into_iter().skip(offset).take(limit).collect(),
            next: more.then_some(SearchCursor::Offset(offset + limit)),
        }
    }
}

/// What the service reads and writes.
pub struct SearchPorts {
    /// Memberships, conversations and hidden messages.
    pub store: Arc<dyn MessageStore>,
    /// The index of messages (its live generation).
    pub index: Arc<LiveSearchIndex>,
    /// Users' recent searches.
    pub recent: Arc<dyn RecentSearches>,
    /// The time recent searches are stamped with.
    pub clock: Arc<dyn Clock>,
}

/// Where the index stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStatus {
    /// The generation answering searches.
    pub generation: u64,
    /// The event-log position it reflects.
    pub checkpoint: LogCursor,
    /// Entries it had not yet taken when the indexer last looked.
    pub lag_entries: u64,
    /// How long ago the oldest of them was stored, in milliseconds.
    pub lag_millis: u64,
}

/// Searches messages for their readers.
pub struct SearchService {
    store: Arc<dyn MessageStore>,
    index: Arc<LiveSearchIndex>,
    /// Pages already answered, keyed by the index generation and checkpoint they were read
    /// at and the whole request (scope included): a commit or a new generation makes every
    /// earlier entry unreachable, and the least used ones go first.
    cache: Option<quick_cache::sync::Cache<CacheKey, SearchPage>>,
    recent: Arc<dyn RecentSearches>,
    clock: Arc<dyn Clock>,
    settings: SearchSettings,
    /// The indexer, for consistent searches (started after the service).
    indexer: OnceLock<SearchIndexerHandle>,
}

impl SearchService {
    /// A service over `ports`.
    pub fn new(ports: SearchPorts, settings: SearchSettings) -> Self {
        Self {
            store: ports.store,
            index: ports.index,
            cache: (settings.result_cache_entries > 0)
                .then(|| quick_cache::sync::Cache::new(settings.result_cache_entries)),
            recent: ports.recent,
            clock: ports.clock,
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
            self.indexer()?
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
        let generation = self.index.current();
        let cache_key = match &self.cache {
            Some(_) if request.scope.len() <= MAX_CACHED_SCOPE => {
                let checkpoint = bounded(
                    self.settings.call_timeout,
                    "reading the index's checkpoint",
                    generation.index.checkpoint(),
                )
                .await?;
                Some((generation.number, checkpoint, request.clone()))
            }
            _ => None,
        };
        if let (Some(cache), Some(key)) = (&self.cache, &cache_key)
            && let Some(page) = cache.get(key)
        {
            return Ok(page);
        }
        let page = bounded(
            self.settings.call_timeout,
            "searching the index",
            generation.index.search(&request),
        )
        .await?;
        if let (Some(cache), Some(key)) = (&self.cache, cache_key) {
            cache.insert(key, page.clone());
        }
        Ok(page)
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
                .current()
                .index
                .suggest(&identity.tenant_id, &scope, prefix, limit),
        )
        .await
    }

    /// One page of the caller's conversations whose title, description or members' ids
    /// match `search`'s words (its `in:` narrows; it has no other filter), best first.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn search_conversations(
        &self,
        identity: &Identity,
        search: &NameSearch,
    ) -> Result<NamePage<ConversationMatch>, Error> {
        let matcher = NameMatcher::new(&search.query);
        let mut found: Vec<ConversationMatch> = self
            .snapshots(identity, &search.query.conversations)
            .await?
            .iter()
            .filter_map(|snapshot| matcher.conversation(snapshot))
            .collect();
        rank_conversations(&mut found);
        Ok(NamePage::cut(found, search.offset, search.limit))
    }

    /// One page of the users who share a conversation with the caller (one of `search`'s
    /// `in:` conversations when it has any) and whose ids match its words, those sharing the
    /// most conversations first. The caller is not among them.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn search_users(
        &self,
        identity: &Identity,
        search: &NameSearch,
    ) -> Result<NamePage<UserMatch>, Error> {
        let mut shared: HashMap<UserId, usize> = HashMap::new();
        for snapshot in self
            .snapshots(identity, &search.query.conversations)
            .await?
        {
            for member in snapshot.members {
                if member.user_id != identity.user_id {
                    *shared.entry(member.user_id).or_default() += 1;
                }
            }
        }
        let matcher = NameMatcher::new(&search.query);
        let mut found: Vec<UserMatch> = shared
            .iter()
            .filter_map(|(user_id, shared)| matcher.user(user_id, *shared))
            .collect();
        rank_users(&mut found);
        Ok(NamePage::cut(found, search.offset, search.limit))
    }

    /// Records that the caller ran `query` (as typed), for [`SearchService::recent`].
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn remember(&self, identity: &Identity, query: &str) -> Result<(), Error> {
        let search = RecentSearch {
            query: query.trim().to_owned(),
            at: self.clock.now(),
        };
        bounded(
            self.settings.call_timeout,
            "remembering a search",
            self.recent
                .remember(&identity.tenant_id, &identity.user_id, search),
        )
        .await
    }

    /// The caller's recent searches, newest first.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn recent(&self, identity: &Identity) -> Result<Vec<RecentSearch>, Error> {
        bounded(
            self.settings.call_timeout,
            "reading recent searches",
            self.recent.recent(&identity.tenant_id, &identity.user_id),
        )
        .await
    }

    /// Erases the caller's recent searches; returns how many there were.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails or is slow.
    pub async fn forget(&self, identity: &Identity) -> Result<usize, Error> {
        bounded(
            self.settings.call_timeout,
            "erasing recent searches",
            self.recent.forget(&identity.tenant_id, &identity.user_id),
        )
        .await
    }

    /// What an administrator of `identity`'s tenant may rebuild: their own tenant's documents,
    /// or with `every_tenant` every tenant's, which only an administrator of an operator
    /// tenant ([`SearchSettings::operator_tenants`]) may.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for every tenant's documents from any other tenant.
    pub fn rebuild_scope(
        &self,
        identity: &Identity,
        every_tenant: bool,
    ) -> Result<TailScope, Error> {
        if !every_tenant {
            return Ok(TailScope::Tenant(identity.tenant_id.clone()));
        }
        if self.settings.operator_tenants.contains(&identity.tenant_id) {
            Ok(TailScope::AllTenants)
        } else {
            Err(Error::Forbidden {
                reason: "rebuilding every tenant's search index takes an admin of a tenant \
                         listed in search.operator_tenants"
                    .into(),
            })
        }
    }

    /// Starts rebuilding the documents of `scope` (one tenant's, or every tenant's) into a
    /// new generation, or answers that rebuild if it is already running.
    ///
    /// # Errors
    /// [`Error::Conflict`] while a rebuild of another scope runs; [`Error::Unavailable`] if the
    /// indexer is not running here, does not answer, or cannot make a new generation.
    pub async fn reindex(&self, scope: TailScope) -> Result<RebuildProgress, Error> {
        self.indexer()?
            .reindex(scope, self.settings.call_timeout)
            .await
            .map_err(crate::Error::into_domain)
    }

    /// The progress of the running rebuild of `scope`, or of its last one.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the indexer is not running here or does not answer.
    pub async fn rebuild_progress(
        &self,
        scope: TailScope,
    ) -> Result<Option<RebuildProgress>, Error> {
        self.indexer()?
            .rebuild_progress(scope, self.settings.call_timeout)
            .await
            .map_err(|error| Error::unavailable(error.to_string()))
    }

    /// The generation searches read now.
    pub fn generation(&self) -> u64 {
        self.index.generation()
    }

    /// How the index stands, for readiness probes.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the index cannot tell where it stands.
    pub async fn status(&self) -> Result<IndexStatus, Error> {
        let checkpoint = self.indexed_up_to().await?;
        let (lag_entries, lag_millis) = self.indexer.get().map_or((0, 0), |indexer| {
            let stats = indexer.stats();
            (
                stats.lag_entries.load(std::sync::atomic::Ordering::Relaxed),
                stats.lag_millis.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        Ok(IndexStatus {
            generation: self.index.generation(),
            checkpoint,
            lag_entries,
            lag_millis,
        })
    }

    fn indexer(&self) -> Result<&SearchIndexerHandle, Error> {
        self.indexer
            .get()
            .ok_or_else(|| Error::unavailable("the search indexer is not running on this node"))
    }

    /// The log position the index reflects.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the index fails.
    pub async fn indexed_up_to(&self) -> Result<LogCursor, Error> {
        bounded(
            self.settings.call_timeout,
            "reading the index's checkpoint",
            self.index.current().index.checkpoint(),
        )
        .await
    }

    /// The ids of the conversations the caller is a member of now (the first
    /// [`SearchSettings::max_conversations`], in id order), narrowed to `only` when given.
    async fn member_of(
        &self,
        identity: &Identity,
        only: &[ConversationId],
    ) -> Result<Vec<ConversationId>, Error> {
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
        Ok(member_of)
    }

    /// The conversations the caller may search: member of now, narrowed to `only` when given,
    /// each with the caller's hidden messages.
    async fn scope(
        &self,
        identity: &Identity,
        only: &[ConversationId],
    ) -> Result<Vec<ReadableConversation>, Error> {
        let member_of = self.member_of(identity, only).await?;
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

    /// The conversations the caller is a member of now (narrowed to `only`), as stored.
    async fn snapshots(
        &self,
        identity: &Identity,
        only: &[ConversationId],
    ) -> Result<Vec<ConversationSnapshot>, Error> {
        let member_of = self.member_of(identity, only).await?;
        let mut snapshots = Vec::with_capacity(member_of.len());
        for conversation_id in member_of {
            let snapshot = bounded(
                self.settings.call_timeout,
                "reading a conversation",
                self.store
                    .load_conversation(&identity.tenant_id, conversation_id),
            )
            .await?;
            // Left between the two reads: not the caller's any more.
            if let Some(snapshot) =
                snapshot.filter(|snapshot| snapshot.member(&identity.user_id).is_some())
            {
                snapshots.push(snapshot);
            }
        }
        Ok(snapshots)
    }
}
