//! The `SearchIndex` port: what an index of messages keeps ([`SearchDocument`]), how it
//! changes ([`IndexChange`], applied together with the event-log position they bring the
//! index to), and how it is asked ([`SearchRequest`] → [`SearchPage`]).
//!
//! The index never decides who may read what: a request carries its scope, the conversations
//! the caller is a member of now with the messages the caller deleted for themself, and the
//! index returns only messages inside it. Those rules are the history service's, applied by
//! whoever builds the request; the index only obeys the scope, so a removed member, a hidden
//! message or another tenant's text cannot be found, suggested or highlighted.

use std::ops::Range;

use async_trait::async_trait;

use super::query::SearchQuery;
use crate::StoreError;
use crate::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use crate::ports::LogCursor;
use crate::time::Timestamp;

/// The most hits one page may ask for.
pub const MAX_SEARCH_LIMIT: usize = 100;

/// One message as the index keeps it: its current text and what the filters read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchDocument {
    /// The tenant that owns its conversation.
    pub tenant_id: TenantId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its id.
    pub message_id: MessageId,
    /// Its position in the conversation.
    pub seq: Seq,
    /// Who sent it.
    pub sender_id: UserId,
    /// When the server accepted it.
    pub sent_at: Timestamp,
    /// Its text as it is now (after edits).
    pub text: String,
    /// Whether it carries attachments.
    pub has_attachment: bool,
}

/// One change to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// Adds the message, or replaces what the index has of it (an edit).
    Put(SearchDocument),
    /// Removes the message (deleted for everyone, or hard); nothing if it is not there.
    Remove {
        /// Its tenant.
        tenant_id: TenantId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// Its id.
        message_id: MessageId,
    },
}

/// A conversation a search may look in, as the caller may read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadableConversation {
    /// The conversation (the caller is a member now).
    pub conversation_id: ConversationId,
    /// Messages the caller deleted for themself: never found.
    pub hidden: Vec<MessageId>,
}

/// The order of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SearchSort {
    /// Best match first (ties: newest first).
    #[default]
    Relevance,
    /// Newest first.
    Newest,
}

/// Where a page of hits continues: after the hit with this order key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchCursor {
    /// After this many hits (relevance: scores are not stable keys).
    Offset(usize),
    /// After the hit sent at this time with this message id (newest first).
    Before {
        /// Its time.
        sent_at: Timestamp,
        /// Its id (ties of time).
        message_id: MessageId,
    },
}

const CURSOR_VERSION: u8 = 1;

impl SearchCursor {
    /// The cursor as clients carry it: URL-safe base64 of a small versioned record.
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let mut bytes = vec![CURSOR_VERSION];
        match self {
            SearchCursor::Offset(offset) => {
                bytes.push(0);
                bytes.extend_from_slice(&(*offset as u64).to_be_bytes());
            }
            SearchCursor::Before {
                sent_at,
                message_id,
            } => {
                bytes.push(1);
                bytes.extend_from_slice(&sent_at.0.to_be_bytes());
                bytes.extend_from_slice(&message_id.to_bytes());
            }
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a cursor [`SearchCursor::encode`] made.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] (field `cursor`) for anything else.
    pub fn decode(text: &str) -> crate::Result<SearchCursor> {
        use base64::Engine as _;
        let malformed = || crate::Error::invalid("cursor", "not a cursor this API issued");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| malformed())?;
        let number =
            |slice: &[u8]| -> Option<u64> { Some(u64::from_be_bytes(slice.try_into().ok()?)) };
        match bytes.as_slice() {
            [CURSOR_VERSION, 0, offset @ ..] if offset.len() == 8 => {
                let offset = number(offset).ok_or_else(malformed)?;
                usize::try_from(offset)
                    .map(SearchCursor::Offset)
                    .map_err(|_| malformed())
            }
            [CURSOR_VERSION, 1, rest @ ..] if rest.len() == 24 => Ok(SearchCursor::Before {
                sent_at: Timestamp(number(&rest[..8]).ok_or_else(malformed)?),
                message_id: MessageId::from_bytes(rest[8..].try_into().map_err(|_| malformed())?),
            }),
            _ => Err(malformed()),
        }
    }
}

/// One search.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchRequest {
    /// The caller's tenant: no other is ever looked in.
    pub tenant_id: TenantId,
    /// What to find.
    pub query: SearchQuery,
    /// Where the caller may look; nothing outside it is found.
    pub scope: Vec<ReadableConversation>,
    /// The order.
    pub sort: SearchSort,
    /// At most this many hits (1 to [`MAX_SEARCH_LIMIT`]).
    pub limit: usize,
    /// Where the page starts; from the first hit when `None`.
    pub cursor: Option<SearchCursor>,
}

/// One message found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The message as indexed.
    pub document: SearchDocument,
    /// How well it matches (higher is better; comparable within one page only).
    pub score: f32,
    /// Where the query's words are in its text, as byte ranges, in order, not overlapping.
    pub matches: Vec<Range<usize>>,
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The hits, in the requested order.
    pub hits: Vec<SearchHit>,
    /// Where the next page starts, if there may be one.
    pub next: Option<SearchCursor>,
}

impl SearchPage {
    /// The page of `hits` (in the requested order, starting at the page's first hit, with at
    /// least one more than `limit` when there are more) that starts `offset` hits into the
    /// results: at most `limit` hits, and the cursor of the next page when there is one.
    pub fn cut(mut hits: Vec<SearchHit>, sort: SearchSort, offset: usize, limit: usize) -> Self {
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = match (more, sort, hits.last()) {
            (true, SearchSort::Newest, Some(last)) => Some(SearchCursor::Before {
                sent_at: last.document.sent_at,
                message_id: last.document.message_id,
            }),
            (true, SearchSort::Relevance, Some(_)) => Some(SearchCursor::Offset(offset + limit)),
            _ => None,
        };
        SearchPage { hits, next }
    }
}

/// Up to `limit` of `words`, the most frequent first (ties in alphabetical order): how
/// suggestions are ranked.
pub fn most_frequent(words: impl IntoIterator<Item = String>, limit: usize) -> Vec<String> {
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for word in words {
        *counts.entry(word).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(&right.0)));
    ranked
        .into_iter()
        .take(limit)
        .map(|(word, _)| word)
        .collect()
}

/// An index of messages.
///
/// # Contract (checked by the conformance suite in `storage/tests/search.rs`)
/// - [`SearchIndex::apply`] applies the changes in order and records `checkpoint` with them,
///   atomically: after a crash, [`SearchIndex::checkpoint`] names exactly the position the
///   stored documents reflect, so a follower of the event log resumes there and neither
///   misses nor repeats a change. A `Put` of a message already indexed replaces it.
/// - [`SearchIndex::search`] finds documents of the request's tenant, in its scope's
///   conversations, not hidden, matching every required clause (words: each of its terms;
///   phrases: its terms at consecutive positions; prefixes: a word starting with it) and the
///   filters, and no excluded clause; terms are the analyzer's ([`super::analyzer`]), the same
///   for documents and queries. Pages in order without gaps or repeats while the index does
///   not change.
/// - [`SearchIndex::suggest`] completes a prefix with whole words (folded) of documents in the
///   scope only, most frequent first.
#[async_trait]
pub trait SearchIndex: Send + Sync + 'static {
    /// Applies `changes` and records that the index now reflects the log up to `checkpoint`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the index failed (then nothing changed).
    async fn apply(
        &self,
        changes: Vec<IndexChange>,
        checkpoint: LogCursor,
    ) -> Result<(), StoreError>;

    /// The log position the index reflects; [`LogCursor::START`] for a new index.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the index failed.
    async fn checkpoint(&self) -> Result<LogCursor, StoreError>;

    /// One page of hits.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the index failed.
    async fn search(&self, request: &SearchRequest) -> Result<SearchPage, StoreError>;

    /// Up to `limit` words of documents in `scope` that start with `prefix` (folded).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the index failed.
    async fn suggest(
        &self,
        tenant_id: &TenantId,
        scope: &[ReadableConversation],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
}

/// One whole index, built from the event log from its start: the live generation serves
/// searches, and a rebuild fills the next one before it replaces the live one atomically.
#[derive(Clone)]
pub struct IndexGeneration {
    /// Its number: each new generation has a higher one than every earlier generation.
    pub number: u64,
    /// The index.
    pub index: std::sync::Arc<dyn SearchIndex>,
}

impl std::fmt::Debug for IndexGeneration {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("IndexGeneration")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// Where the generations of an index are made and which one is current.
///
/// # Contract
/// - [`SearchIndexGenerations::create`] makes a new, empty generation numbered above every
///   earlier one; it is not current until promoted, and a restart before that forgets it.
/// - [`SearchIndexGenerations::create_without_tenant`] makes a new generation, not current,
///   holding exactly what generation `source` holds at that moment (its documents and its
///   checkpoint) except every document of one tenant; `source` is not changed, and later
///   changes to either do not reach the other.
/// - [`SearchIndexGenerations::promote`] makes a generation the current one durably (the one
///   a restart opens), atomically: a crash leaves the old one current or the new one, whole.
#[async_trait]
pub trait SearchIndexGenerations: Send + Sync + 'static {
    /// A new, empty generation.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if it cannot be made.
    async fn create(&self) -> Result<IndexGeneration, StoreError>;

    /// A new generation holding what generation `source` holds now, at its checkpoint, except
    /// every document of `tenant_id`: where a rebuild of that one tenant starts.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if it cannot be made (or `source` is not a live generation
    /// of this node).
    async fn create_without_tenant(
        &self,
        source: u64,
        tenant_id: &TenantId,
    ) -> Result<IndexGeneration, StoreError>;

    /// Makes generation `number` (made by [`SearchIndexGenerations::create`]) the current one,
    /// and lets the older ones go.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if it cannot be recorded (then the old one stays current).
    async fn promote(&self, number: u64) -> Result<(), StoreError>;

    /// Lets go of a generation that will not be promoted (an abandoned rebuild).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if it cannot be removed.
    async fn discard(&self, number: u64) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests;
