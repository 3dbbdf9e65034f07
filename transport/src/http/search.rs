//! Search over HTTP: `GET /v1/search/messages` and `GET /v1/search/suggestions` here;
//! conversations, users and the grouped search in `search_directory.rs`, recent searches in
//! `search_recent.rs`, rebuilds of the index in `search_admin.rs`. The query language and its refusals are the engine's
//! (`switchboard_engine::search::query`), the caller's scope is the search service's
//! (`switchboard_actors::search::service`); this module reads the parameters, asks, and renders
//! each hit with its snippet.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_actors::search::service::{MessageSearch, SearchService};
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, UserId};
use switchboard_engine::rate_limit::ActionClass;
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::{MAX_SEARCH_LIMIT, SearchCursor, SearchHit, SearchSort};
use switchboard_engine::search::query::MIN_PREFIX_CHARS;
use switchboard_engine::search::snippet::snippet;
use switchboard_engine::time::Timestamp;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{SearchRateLimited, TokenRefused};
use super::extract::{Authenticated, parse_query};

/// The page size when the request names none.
const DEFAULT_LIMIT: usize = 20;

/// The search routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(search_messages))
        .routes(routes!(suggest_words))
        .merge(super::search_directory::routes())
        .merge(super::search_recent::routes())
        .merge(super::search_admin::routes())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageSearchQuery {
    /// The query (at most 1 KiB and 32 terms): words, `"phrases"`, `-excluded`, `prefix*`
    /// (at least 2 characters before the `*`), `from:<user>`, `in:<conversation>`,
    /// `has:attachment`, `before:YYYY-MM-DD`, `after:YYYY-MM-DD` (days in UTC; `after:` is
    /// the day after). Case, accents and English word endings do not matter; Chinese,
    /// Japanese and Korean text is found by any substring of two characters or more.
    q: String,
    /// Only this conversation (as `in:`).
    conversation_id: Option<String>,
    /// Only messages of this sender (as `from:`).
    sender_id: Option<String>,
    /// Only messages sent before this time, in Unix milliseconds.
    before: Option<u64>,
    /// Only messages sent at or after this time, in Unix milliseconds.
    after: Option<u64>,
    /// Only messages with attachments (as `has:attachment`).
    has_attachment: Option<bool>,
    /// `relevance` (default: best match first) or `newest`.
    sort: Option<String>,
    /// Hits per page: 1 to 100, default 20.
    limit: Option<usize>,
    /// A `next_cursor` from the previous page of the same search.
    cursor: Option<String>,
    /// Wait (up to `search.consistent_wait_ms`, 2 s) until the index has taken every message
    /// stored before this request, so a client finds what it just sent; 503 if it has not.
    consistent: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SnippetBody {
    /// A window of the message's text around its first match (`…` where it was cut).
    text: String,
    /// The matches in `text`, as `[start, end)` pairs counted in Unicode characters (code
    /// points) from the start of `text`.
    pub(super) highlights: Vec<[usize; 2]>,
    /// `text` HTML-escaped, each match in `<mark>…</mark>`.
    html: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SearchHitBody {
    /// The message.
    message_id: String,
    /// Its conversation.
    conversation_id: String,
    /// Its seq in the conversation.
    seq: u64,
    /// Who sent it.
    sender_id: String,
    /// When it was sent, in Unix milliseconds.
    sent_at: u64,
    /// Whether it has attachments.
    has_attachment: bool,
    /// What it shows of its text.
    snippet: SnippetBody,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SearchPageBody {
    /// The hits, in the requested order.
    pub(super) hits: Vec<SearchHitBody>,
    /// Continues the same search; null when there is nothing more.
    pub(super) next_cursor: Option<String>,
}

impl SnippetBody {
    /// What `text` shows with its matches at the byte ranges `matches`.
    pub(super) fn of(text: &str, matches: &[std::ops::Range<usize>]) -> Self {
        let shown = snippet(text, matches);
        Self {
            text: shown.text,
            highlights: shown
                .highlights
                .into_iter()
                .map(|range| [range.start, range.end])
                .collect(),
            html: shown.html,
        }
    }
}

impl From<SearchHit> for SearchHitBody {
    fn from(hit: SearchHit) -> Self {
        Self {
            message_id: hit.document.message_id.to_string(),
            conversation_id: hit.document.conversation_id.to_string(),
            seq: hit.document.seq.0,
            sender_id: hit.document.sender_id.as_str().to_owned(),
            sent_at: hit.document.sent_at.0,
            has_attachment: hit.document.has_attachment,
            snippet: SnippetBody::of(&hit.document.text, &hit.matches),
        }
    }
}

/// The search as the parameters ask it; `None` when they contradict each other, so that
/// nothing can match.
pub(super) fn message_search(
    parameters: MessageSearchQuery,
) -> Result<Option<MessageSearch>, Error> {
    let mut query = SearchQuery::parse(&parameters.q)?;
    if let Some(conversation_id) = parameters.conversation_id {
        let conversation_id = ConversationId::parse(&conversation_id)
            .map_err(|_| Error::invalid("conversation_id", "not a conversation id"))?;
        if !query.conversations.is_empty() && !query.conversations.contains(&conversation_id) {
            // `in:` and `conversation_id` name different conversations: nothing is in both.
            return Ok(None);
        }
        query.conversations = vec![conversation_id];
    }
    if let Some(sender_id) = parameters.sender_id {
        let sender_id =
            UserId::parse(&sender_id).map_err(|_| Error::invalid("sender_id", "not a user id"))?;
        if !query.from.contains(&sender_id) {
            query.from.push(sender_id);
        }
    }
    if let Some(before) = parameters.before {
        let before = Timestamp(before);
        query.before = Some(query.before.map_or(before, |earlier| earlier.min(before)));
    }
    if let Some(after) = parameters.after {
        let after = Timestamp(after);
        query.after = Some(query.after.map_or(after, |later| later.max(after)));
    }
    if parameters.has_attachment == Some(true) {
        query.has_attachment = true;
    }
    let sort = match parameters.sort.as_deref() {
        None | Some("relevance") => SearchSort::Relevance,
        Some("newest") => SearchSort::Newest,
        Some(_) => return Err(Error::invalid("sort", "relevance or newest")),
    };
    let limit = parameters.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("from 1 to {MAX_SEARCH_LIMIT}"),
        ));
    }
    let cursor = parameters
        .cursor
        .as_deref()
        .map(SearchCursor::decode)
        .transpose()?;
    if let (SearchSort::Relevance, Some(SearchCursor::Before { .. }))
    | (SearchSort::Newest, Some(SearchCursor::Offset(_))) = (sort, cursor)
    {
        return Err(Error::invalid(
            "cursor",
            "it belongs to a search in another order",
        ));
    }
    Ok(Some(MessageSearch {
        query,
        sort,
        limit,
        cursor,
        consistent: parameters.consistent == Some(true),
    }))
}

pub(super) fn search_service(app: &App) -> Result<&Arc<SearchService>, WireError> {
    app.search.as_ref().ok_or_else(|| {
        WireError::from(Error::unavailable(
            "search is turned off on this node (search.enabled = false)",
        ))
    })
}

/// Search messages.
///
/// Finds the caller's messages: in conversations the caller is a member of now, never one the
/// caller deleted for themself, one deleted for everyone, or another tenant's. A
/// conversation named with `in:` or `conversation_id` that the caller is not in finds nothing
/// (and says nothing of it). Each hit carries a snippet with its matches. New messages are
/// found once the indexer has taken them, within a second on an idle node; with
/// `consistent=true`, at once. Searches count against `limits.search_per_minute` (60).
#[utoipa::path(get, path = "/v1/search/messages", tag = "search",
    params(MessageSearchQuery),
    responses(
        (status = 200, description = "A page of hits.", body = SearchPageBody),
        SearchRateLimited,
        (status = 400, description = "A query that cannot be read (the reason names the position: an unbalanced quote, a lone `*`, a prefix under 2 characters, a bad date or id, a filter given twice or excluded), over 1 KiB or 32 terms; a limit outside 1 to 100; a bad sort or cursor; an unknown parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 503, description = "The store or the index is unavailable, search is turned off, or a consistent search's index did not catch up in time (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn search_messages(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<MessageSearchQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let started = tokio::time::Instant::now();
    let parameters = parse_query(query)?;
    let typed = (parameters.cursor.is_none()).then(|| parameters.q.clone());
    let search = message_search(parameters)?;
    let service = search_service(&app)?;
    app.system
        .take_budget(&identity, ActionClass::Search)
        .await?;
    if let Some(typed) = typed {
        super::search_recent::remember(service, &identity, &typed).await;
    }
    let Some(search) = search else {
        return Ok(Json(SearchPageBody {
            hits: Vec::new(),
            next_cursor: None,
        })
        .into_response());
    };
    let page = service.search_messages(&identity, search).await?;
    app.search_latency.observe("messages", started.elapsed());
    Ok(Json(SearchPageBody {
        next_cursor: page.next.map(|cursor| cursor.encode()),
        hits: page.hits.into_iter().map(SearchHitBody::from).collect(),
    })
    .into_response())
}

/// The most suggestions one request may ask for.
const MAX_SUGGESTIONS: usize = 20;

/// The longest prefix a suggestion request may give, in characters.
const MAX_PREFIX_CHARS: usize = 64;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuggestionsQuery {
    /// The start of a word: 2 to 64 characters (case and accents do not matter).
    prefix: String,
    /// How many words: 1 to 20, default 10.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct SuggestionsBody {
    /// Whole words (folded: lowercase, without accents) from messages the caller can read,
    /// most frequent first.
    suggestions: Vec<String>,
}

/// Suggest words.
///
/// Completes a prefix with words of messages the caller can read (the same scope as a search:
/// conversations the caller is a member of now, nothing hidden for the caller, deleted or of
/// another tenant), most frequent among the newest 200 messages that have one first. Counts
/// against `limits.search_per_minute`.
#[utoipa::path(get, path = "/v1/search/suggestions", tag = "search",
    params(SuggestionsQuery),
    responses(
        (status = 200, description = "The words.", body = SuggestionsBody),
        (status = 400, description = "A prefix under 2 or over 64 characters, a limit outside 1 to 20, or an unknown parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        SearchRateLimited,
        (status = 503, description = "The store or the index is unavailable, or search is turned off (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn suggest_words(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<SuggestionsQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let started = tokio::time::Instant::now();
    let query = parse_query(query)?;
    let n_chars = query.prefix.trim().chars().count();
    if !(MIN_PREFIX_CHARS..=MAX_PREFIX_CHARS).contains(&n_chars) {
        return Err(Error::invalid(
            "prefix",
            format!("from {MIN_PREFIX_CHARS} to {MAX_PREFIX_CHARS} characters"),
        )
        .into());
    }
    let limit = query.limit.unwrap_or(10);
    if !(1..=MAX_SUGGESTIONS).contains(&limit) {
        return Err(Error::invalid("limit", format!("from 1 to {MAX_SUGGESTIONS}")).into());
    }
    let service = search_service(&app)?;
    app.system
        .take_budget(&identity, ActionClass::Search)
        .await?;
    let suggestions = service
        .suggest(&identity, query.prefix.trim(), limit)
        .await?;
    app.search_latency.observe("suggestions", started.elapsed());
    Ok(Json(SuggestionsBody { suggestions }).into_response())
}
