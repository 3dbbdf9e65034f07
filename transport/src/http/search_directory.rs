//! Finding conversations and people, and everything at once: `GET /v1/search/conversations`
//! (the caller's conversations by title, description and members' ids),
//! `GET /v1/search/users` (users who share a conversation with the caller, by id) and
//! `GET /v1/search` (messages, conversations and users for one query, grouped, each group's
//! cursor continuing on its own endpoint). What matches is the engine's
//! (`switchboard_engine::search::directory`); whose conversations are looked at is the search
//! service's: the caller's, now.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_actors::search::service::{MessageSearch, NamePage, NameSearch, SearchService};
use switchboard_actors::session::Identity;
use switchboard_engine::Error;
use switchboard_engine::model::ConversationKind;
use switchboard_engine::rate_limit::ActionClass;
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::directory::{
    ConversationField, ConversationMatch, UserMatch, words_only,
};
use switchboard_engine::search::index::{SearchCursor, SearchSort};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{NameSearchErrors, SearchRateLimited, TokenRefused};
use super::extract::{Authenticated, parse_query};
use super::search::{SearchHitBody, SearchPageBody, SnippetBody, search_service};

/// The most conversations or users one page may hold.
const MAX_NAME_LIMIT: usize = 50;

/// The page size of a conversation or user search when the request names none.
const DEFAULT_NAME_LIMIT: usize = 20;

/// The most results of each group a grouped search may ask for.
const MAX_GROUP_LIMIT: usize = 20;

/// Each group's size in a grouped search when the request names none.
const DEFAULT_GROUP_LIMIT: usize = 5;

/// The routes of conversation, user and grouped searches.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(search_conversations))
        .routes(routes!(search_users))
        .routes(routes!(search_everything))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameSearchQuery {
    /// Words, `"phrases"`, `-excluded`, `prefix*` and `in:<conversation>` (the query language
    /// of message search, without the filters that are about messages: `from:`, `has:`,
    /// `before:` and `after:` are refused). At least one word.
    q: String,
    /// Results per page: 1 to 50, default 20.
    limit: Option<usize>,
    /// A `next_cursor` from the previous page of the same search.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationFoundBody {
    /// The conversation.
    conversation_id: String,
    /// `direct`, `group` or `channel`.
    kind: &'static str,
    /// Its title with the matches in it; null when it has none.
    title: Option<SnippetBody>,
    /// Its description with the matches in it; null when it has none.
    description: Option<SnippetBody>,
    /// How many members it has.
    member_count: usize,
    /// The best place a word was found: `title`, `description` or `members`.
    matched_in: &'static str,
    /// The members whose ids matched.
    matching_members: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationPageBody {
    /// Title matches first, then description, then member matches; by title within each.
    conversations: Vec<ConversationFoundBody>,
    /// Continues the same search; null when there is nothing more.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserFoundBody {
    /// The user.
    user_id: String,
    /// How many of the caller's conversations they are in.
    shared_conversations: usize,
    /// The matches in `user_id`, as `[start, end)` pairs in Unicode characters.
    highlights: Vec<[usize; 2]>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserPageBody {
    /// Those sharing the most conversations with the caller first, then by id.
    users: Vec<UserFoundBody>,
    /// Continues the same search; null when there is nothing more.
    next_cursor: Option<String>,
}

fn kind_name(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
        ConversationKind::Channel => "channel",
    }
}

impl From<ConversationMatch> for ConversationFoundBody {
    fn from(found: ConversationMatch) -> Self {
        let conversation = found.conversation;
        Self {
            conversation_id: conversation.conversation_id.to_string(),
            kind: kind_name(conversation.kind),
            title: conversation
                .title
                .as_deref()
                .map(|title| SnippetBody::of(title, &found.title_matches)),
            description: conversation
                .profile
                .description
                .as_deref()
                .map(|description| SnippetBody::of(description, &found.description_matches)),
            member_count: found.member_count,
            matched_in: match found.field {
                ConversationField::Title => "title",
                ConversationField::Description => "description",
                ConversationField::Members => "members",
            },
            matching_members: found
                .matching_members
                .iter()
                .map(|user_id| user_id.as_str().to_owned())
                .collect(),
        }
    }
}

impl From<UserMatch> for UserFoundBody {
    fn from(found: UserMatch) -> Self {
        let highlights = SnippetBody::of(found.user_id.as_str(), &found.matches).highlights;
        Self {
            user_id: found.user_id.as_str().to_owned(),
            shared_conversations: found.shared_conversations,
            highlights,
        }
    }
}

fn conversation_page(page: NamePage<ConversationMatch>) -> ConversationPageBody {
    ConversationPageBody {
        conversations: page.found.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|cursor| cursor.encode()),
    }
}

fn user_page(page: NamePage<UserMatch>) -> UserPageBody {
    UserPageBody {
        users: page.found.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|cursor| cursor.encode()),
    }
}

/// The search the parameters ask for, of `what` (conversations or users).
fn name_search(parameters: &NameSearchQuery, what: &str) -> Result<NameSearch, Error> {
    let query = SearchQuery::parse(&parameters.q)?;
    words_only(&query, what)?;
    let limit = parameters.limit.unwrap_or(DEFAULT_NAME_LIMIT);
    if !(1..=MAX_NAME_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("from 1 to {MAX_NAME_LIMIT}"),
        ));
    }
    let offset = match parameters
        .cursor
        .as_deref()
        .map(SearchCursor::decode)
        .transpose()?
    {
        None => 0,
        Some(SearchCursor::Offset(offset)) => offset,
        Some(SearchCursor::Before { .. }) => {
            return Err(Error::invalid(
                "cursor",
                "it belongs to a search of messages",
            ));
        }
    };
    Ok(NameSearch {
        query,
        limit,
        offset,
    })
}

/// Search conversations.
///
/// Finds the caller's conversations (member of now) whose title, description or members' ids
/// match the words; `in:` narrows. Counts against `limits.search_per_minute`.
#[utoipa::path(get, path = "/v1/search/conversations", tag = "search",
    params(NameSearchQuery),
    responses(
        (status = 200, description = "A page of conversations.", body = ConversationPageBody),
        NameSearchErrors,
        TokenRefused,
        SearchRateLimited,
    ))]
pub(crate) async fn search_conversations(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<NameSearchQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let started = tokio::time::Instant::now();
    let (service, search) = admitted(&app, &identity, query, "conversations").await?;
    let page = service.search_conversations(&identity, &search).await?;
    app.search_latency
        .observe("conversations", started.elapsed());
    Ok(Json(conversation_page(page)).into_response())
}

/// Search users.
///
/// Finds the users who share a conversation with the caller (in one of the `in:`
/// conversations, when the query names any) whose ids match the words; a prefix also matches
/// an id from its start. The caller is never among them. Counts against
/// `limits.search_per_minute`.
#[utoipa::path(get, path = "/v1/search/users", tag = "search",
    params(NameSearchQuery),
    responses(
        (status = 200, description = "A page of users.", body = UserPageBody),
        NameSearchErrors,
        TokenRefused,
        SearchRateLimited,
    ))]
pub(crate) async fn search_users(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<NameSearchQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let started = tokio::time::Instant::now();
    let (service, search) = admitted(&app, &identity, query, "users").await?;
    let page = service.search_users(&identity, &search).await?;
    app.search_latency.observe("users", started.elapsed());
    Ok(Json(user_page(page)).into_response())
}

/// A name search of `what` as its parameters ask, once its parameters are valid, search is on
/// and the caller's search budget has a token.
async fn admitted<'a>(
    app: &'a App,
    identity: &Identity,
    query: Result<Query<NameSearchQuery>, QueryRejection>,
    what: &str,
) -> Result<(&'a Arc<SearchService>, NameSearch), WireError> {
    let parameters = parse_query(query)?;
    let search = name_search(&parameters, what)?;
    let service = search_service(app)?;
    app.system
        .take_budget(identity, ActionClass::Search)
        .await?;
    Ok((service, search))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupedSearchQuery {
    /// The query language of message search. Messages get the whole query; conversations and
    /// users its words and `in:` (the message filters do not apply to them, and without a
    /// word they find nothing).
    q: String,
    /// Results per group: 1 to 20, default 5.
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct GroupedSearchBody {
    /// Messages, best match first; `next_cursor` continues on `/v1/search/messages` (same `q`).
    messages: SearchPageBody,
    /// Conversations; `next_cursor` continues on `/v1/search/conversations`.
    conversations: ConversationPageBody,
    /// Users; `next_cursor` continues on `/v1/search/users`.
    users: UserPageBody,
}

/// Search everything.
///
/// One query over messages, conversations and users, each group as its own endpoint would
/// answer its first page (with the same scope rules). Counts once against
/// `limits.search_per_minute`, and is kept among the caller's recent searches.
#[utoipa::path(get, path = "/v1/search", tag = "search",
    params(GroupedSearchQuery),
    responses(
        (status = 200, description = "The three groups.", body = GroupedSearchBody),
        (status = 400, description = "A query that cannot be read (as for messages); a limit outside 1 to 20; an unknown parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        SearchRateLimited,
        (status = 503, description = "The store or the index is unavailable, or search is turned off (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn search_everything(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<GroupedSearchQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let started = tokio::time::Instant::now();
    let parameters = parse_query(query)?;
    let query = SearchQuery::parse(&parameters.q)?;
    let limit = parameters.limit.unwrap_or(DEFAULT_GROUP_LIMIT);
    if !(1..=MAX_GROUP_LIMIT).contains(&limit) {
        return Err(Error::invalid("limit", format!("from 1 to {MAX_GROUP_LIMIT}")).into());
    }
    let service = search_service(&app)?;
    app.system
        .take_budget(&identity, ActionClass::Search)
        .await?;
    super::search_recent::remember(service, &identity, &parameters.q).await;
    let names = (!query.required.is_empty()).then(|| NameSearch {
        query: SearchQuery {
            required: query.required.clone(),
            excluded: query.excluded.clone(),
            conversations: query.conversations.clone(),
            ..SearchQuery::default()
        },
        limit,
        offset: 0,
    });
    let messages = service
        .search_messages(
            &identity,
            MessageSearch {
                query,
                sort: SearchSort::Relevance,
                limit,
                cursor: None,
                consistent: false,
            },
        )
        .await?;
    let (conversations, users) = match names {
        Some(names) => (
            conversation_page(service.search_conversations(&identity, &names).await?),
            user_page(service.search_users(&identity, &names).await?),
        ),
        None => (
            conversation_page(NamePage {
                found: Vec::new(),
                next: None,
            }),
            user_page(NamePage {
                found: Vec::new(),
                next: None,
            }),
        ),
    };
    app.search_latency.observe("all", started.elapsed());
    Ok(Json(GroupedSearchBody {
        messages: SearchPageBody {
            next_cursor: messages.next.map(|cursor| cursor.encode()),
            hits: messages.hits.into_iter().map(SearchHitBody::from).collect(),
        },
        conversations,
        users,
    })
    .into_response())
}
