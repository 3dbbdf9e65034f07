//! The in-memory search index: documents in a map, each searched with the engine's matcher.
//! Linear in the documents of the scope's conversations, which makes it the reference the
//! conformance suite compares real indexes with, and a test double; it is lost on exit.
//!
//! Relevance is the number of matched terms over the square root of the document's term
//! count (a short message that says it all ranks first), ties newest first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ConversationId, MessageId, TenantId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::analyzer::{Analyzer, Purpose, Token};
use switchboard_engine::search::index::{
    IndexChange, ReadableConversation, SearchCursor, SearchDocument, SearchHit, SearchIndex,
    SearchPage, SearchRequest, SearchSort, most_frequent,
};
use switchboard_engine::search::matching::{CompiledQuery, passes_filters};

/// One indexed message with its analysed text.
#[derive(Clone)]
struct Indexed {
    document: SearchDocument,
    tokens: Vec<Token>,
}

type ConversationKey = (TenantId, ConversationId);

#[derive(Default)]
struct State {
    /// Each conversation's messages, by id.
    conversations: HashMap<ConversationKey, BTreeMap<MessageId, Indexed>>,
    checkpoint: LogCursor,
}

/// The in-memory [`SearchIndex`].
pub struct MemorySearchIndex {
    analyzer: Analyzer,
    state: Mutex<State>,
}

impl Default for MemorySearchIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySearchIndex {
    /// An empty index at [`LogCursor::START`].
    pub fn new() -> Self {
        Self {
            analyzer: Analyzer::new(),
            state: Mutex::new(State::default()),
        }
    }

    /// A new index holding what this one holds now, at its checkpoint, except every document
    /// of `tenant_id`.
    pub fn copy_without_tenant(&self, tenant_id: &TenantId) -> Self {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let conversations = state
            .conversations
            .iter()
            .filter(|((tenant, _), _)| tenant != tenant_id)
            .map(|(key, messages)| (key.clone(), messages.clone()))
            .collect();
        Self {
            analyzer: Analyzer::new(),
            state: Mutex::new(State {
                conversations,
                checkpoint: state.checkpoint,
            }),
        }
    }

    /// How many documents it holds.
    pub fn n_documents(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .conversations
            .values()
            .map(BTreeMap::len)
            .sum()
    }
}

/// The documents of the scope, each with its hidden set applied.
fn in_scope<'a>(
    state: &'a State,
    tenant_id: &TenantId,
    scope: &'a [ReadableConversation],
) -> impl Iterator<Item = &'a Indexed> {
    scope.iter().flat_map(move |readable| {
        state
            .conversations
            .get(&(tenant_id.clone(), readable.conversation_id))
            .into_iter()
            .flat_map(|messages| messages.values())
            .filter(|indexed| !readable.hidden.contains(&indexed.document.message_id))
    })
}

#[async_trait]
impl SearchIndex for MemorySearchIndex {
    async fn apply(
        &self,
        changes: Vec<IndexChange>,
        checkpoint: LogCursor,
    ) -> Result<(), StoreError> {
        let analysed: Vec<_> = changes
            .into_iter()
            .map(|change| match change {
                IndexChange::Put(document) => {
                    let tokens = self.analyzer.tokens(&document.text, Purpose::Index);
                    Ok(Indexed { document, tokens })
                }
                IndexChange::Remove {
                    tenant_id,
                    conversation_id,
                    message_id,
                } => Err((tenant_id, conversation_id, message_id)),
            })
            .collect();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for change in analysed {
            match change {
                Ok(indexed) => {
                    let key = (
                        indexed.document.tenant_id.clone(),
                        indexed.document.conversation_id,
                    );
                    state
                        .conversations
                        .entry(key)
                        .or_default()
                        .insert(indexed.document.message_id, indexed);
                }
                Err((tenant_id, conversation_id, message_id)) => {
                    if let Some(messages) =
                        state.conversations.get_mut(&(tenant_id, conversation_id))
                    {
                        messages.remove(&message_id);
                    }
                }
            }
        }
        state.checkpoint = checkpoint;
        Ok(())
    }

    async fn checkpoint(&self) -> Result<LogCursor, StoreError> {
        Ok(self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checkpoint)
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchPage, StoreError> {
        let compiled = CompiledQuery::new(&self.analyzer, &request.query);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut hits: Vec<SearchHit> = in_scope(&state, &request.tenant_id, &request.scope)
            .filter(|indexed| passes_filters(&request.query, &indexed.document))
            .filter_map(|indexed| {
                let matches = compiled.matches(&indexed.tokens)?;
                let n_terms = indexed.tokens.len().max(1) as f32;
                Some(SearchHit {
                    document: indexed.document.clone(),
                    score: matches.len() as f32 / n_terms.sqrt(),
                    matches,
                })
            })
            .collect();
        drop(state);
        let newest_first = |left: &SearchHit, right: &SearchHit| {
            (right.document.sent_at, right.document.message_id)
                .cmp(&(left.document.sent_at, left.document.message_id))
        };
        match request.sort {
            SearchSort::Newest => hits.sort_by(newest_first),
            SearchSort::Relevance => hits.sort_by(|left, right| {
                right
                    .score
                    .total_cmp(&left.score)
                    .then_with(|| newest_first(left, right))
            }),
        }
        let start = match (request.sort, request.cursor) {
            (_, None) => 0,
            (_, Some(SearchCursor::Offset(offset))) => offset.min(hits.len()),
            (
                SearchSort::Newest,
                Some(SearchCursor::Before {
                    sent_at,
                    message_id,
                }),
            ) => hits
                .iter()
                .position(|hit| {
                    (hit.document.sent_at, hit.document.message_id) < (sent_at, message_id)
                })
                .unwrap_or(hits.len()),
            (SearchSort::Relevance, Some(SearchCursor::Before { .. })) => 0,
        };
        let limit = request.limit.max(1);
        let from_start: Vec<SearchHit> = hits.into_iter().skip(start).take(limit + 1).collect();
        Ok(SearchPage::cut(from_start, request.sort, start, limit))
    }

    async fn suggest(
        &self,
        tenant_id: &TenantId,
        scope: &[ReadableConversation],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = switchboard_engine::search::analyzer::fold(prefix);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let words = in_scope(&state, tenant_id, scope)
            .flat_map(|indexed| &indexed.tokens)
            .filter(|token| token.folded.starts_with(prefix.as_str()))
            .map(|token| token.folded.clone());
        Ok(most_frequent(words, limit))
    }
}
