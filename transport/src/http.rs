//! The HTTP API: conversations, messages, operations on messages (edit, delete, react),
//! history and threads, plus the health probes.
//!
//! Handlers authenticate with the same verifier as WebSockets (`Authorization: Bearer`), reach
//! the same actors through [`System`](switchboard_actors::system::System), and answer errors as
//! `{"code","message"}` JSON through [`WireError`]. The contract is `docs/openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_actors::session::Identity;
use switchboard_actors::system::{HistoryPage, MemberView, SettingsChange};
use switchboard_engine::Error;
use switchboard_engine::cursor::{Direction, HistoryCursor};
use switchboard_engine::ids::Emoji;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, UserId};
use switchboard_engine::membership::{ConversationChange, Patch};
use switchboard_engine::model::{
    ConversationKind, ConversationSnapshot, DeleteMode, Message, NewMessage, Role,
};
use switchboard_engine::operations::{MessageOperation, NewOperation};
use switchboard_engine::permissions::{self, Action};
use switchboard_engine::time::Timestamp;
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthError;
use crate::codec::{
    IceServersBody, MessageBody, ModerationEventBody, PresenceBody, parse_delete_mode,
    parse_moderation_action, parse_role,
};
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

/// The API routes (without the WebSocket endpoint).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(crate::recordings::routes())
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/v1/openapi.json", get(openapi_document))
        .route("/v1/presence", get(get_presence))
        .route("/v1/turn/credentials", get(turn_credentials))
        .route(
            "/v1/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/v1/conversations/{conversation_id}/settings",
            axum::routing::put(update_settings),
        )
        .route(
            "/v1/conversations/{conversation_id}",
            get(get_conversation).patch(update_conversation),
        )
        .route(
            "/v1/conversations/{conversation_id}/archive",
            axum::routing::post(archive_conversation),
        )
        .route(
            "/v1/conversations/{conversation_id}/members",
            axum::routing::post(add_members),
        )
        .route(
            "/v1/conversations/{conversation_id}/members/{user_id}",
            axum::routing::delete(remove_member),
        )
        .route(
            "/v1/conversations/{conversation_id}/members/{user_id}/role",
            axum::routing::put(change_role),
        )
        .route(
            "/v1/conversations/{conversation_id}/leave",
            axum::routing::post(leave_conversation),
        )
        .route(
            "/v1/conversations/{conversation_id}/owner",
            axum::routing::post(transfer_ownership),
        )
        .route(
            "/v1/conversations/{conversation_id}/moderation",
            get(moderation_log).post(moderate),
        )
        .route(
            "/v1/conversations/{conversation_id}/receipts",
            axum::routing::post(post_receipts),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages",
            get(list_messages).post(post_message),
        )
        .route(
            "/v1/conversations/{conversation_id}/forward",
            axum::routing::post(forward_messages),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages/{message_id}",
            get(get_message).patch(edit_message).delete(delete_message),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages/{message_id}/edits",
            get(list_edits),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages/{message_id}/thread",
            get(list_thread),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages/{message_id}/reactions",
            axum::routing::post(add_reaction),
        )
        .route(
            "/v1/conversations/{conversation_id}/messages/{message_id}/reactions/{emoji}",
            axum::routing::delete(remove_reaction),
        )
}

/// Every `(method, path)` the API serves, for the OpenAPI consistency test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/presence"),
    ("get", "/v1/turn/credentials"),
    ("get", "/v1/ws"),
    ("get", "/v1/recordings"),
    ("get", "/v1/recordings/{recording_id}"),
    ("delete", "/v1/recordings/{recording_id}"),
    ("get", "/v1/recordings/{recording_id}/media"),
    ("put", "/v1/recordings/{recording_id}/media"),
    ("put", "/v1/recordings/{recording_id}/quality"),
    ("get", "/v1/audit"),
    ("get", "/v1/conversations"),
    ("post", "/v1/conversations"),
    ("put", "/v1/conversations/{conversation_id}/settings"),
    ("get", "/v1/conversations/{conversation_id}"),
    ("patch", "/v1/conversations/{conversation_id}"),
    ("post", "/v1/conversations/{conversation_id}/archive"),
    ("post", "/v1/conversations/{conversation_id}/members"),
    (
        "delete",
        "/v1/conversations/{conversation_id}/members/{user_id}",
    ),
    (
        "put",
        "/v1/conversations/{conversation_id}/members/{user_id}/role",
    ),
    ("post", "/v1/conversations/{conversation_id}/leave"),
    ("post", "/v1/conversations/{conversation_id}/owner"),
    ("get", "/v1/conversations/{conversation_id}/moderation"),
    ("post", "/v1/conversations/{conversation_id}/moderation"),
    ("post", "/v1/conversations/{conversation_id}/receipts"),
    ("get", "/v1/conversations/{conversation_id}/messages"),
    ("post", "/v1/conversations/{conversation_id}/messages"),
    ("post", "/v1/conversations/{conversation_id}/forward"),
    (
        "get",
        "/v1/conversations/{conversation_id}/messages/{message_id}",
    ),
    (
        "patch",
        "/v1/conversations/{conversation_id}/messages/{message_id}",
    ),
    (
        "delete",
        "/v1/conversations/{conversation_id}/messages/{message_id}",
    ),
    (
        "get",
        "/v1/conversations/{conversation_id}/messages/{message_id}/edits",
    ),
    (
        "get",
        "/v1/conversations/{conversation_id}/messages/{message_id}/thread",
    ),
    (
        "post",
        "/v1/conversations/{conversation_id}/messages/{message_id}/reactions",
    ),
    (
        "delete",
        "/v1/conversations/{conversation_id}/messages/{message_id}/reactions/{emoji}",
    ),
];

/// 404 for unknown routes.
pub async fn route_not_found() -> WireError {
    WireError::route_not_found()
}

/// 405 for known routes with the wrong method.
pub async fn method_not_allowed() -> WireError {
    WireError::method_not_allowed()
}

/// The identity behind a request's bearer token.
pub struct Authenticated(pub Identity);

impl FromRequestParts<Arc<App>> for Authenticated {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let token = bearer_token(&parts.headers).ok_or(WireError::from(&AuthError::Missing))?;
        let identity = app
            .authenticator
            .verify(token, app.clock.now())
            .map_err(|error| WireError::from(&error))?;
        crate::security::CallerSlot::set(&parts.extensions, &identity);
        Ok(Authenticated(identity))
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    app: &App,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, WireError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WireError::body_too_large(app.http.max_body_bytes)
        } else {
            WireError::from(Error::invalid("body", rejection.body_text()))
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|error| WireError::from(Error::invalid("body", error.to_string())))
}

fn conversation_id(text: &str) -> Result<ConversationId, WireError> {
    ConversationId::parse(text).map_err(WireError::from)
}

fn message_id(field: &'static str, text: &str) -> Result<MessageId, WireError> {
    MessageId::parse(text)
        .map_err(|_| WireError::from(Error::invalid(field, "must be a message id")))
}

/// The `{conversation_id}` and `{message_id}` of a message's path, parsed.
pub(crate) struct MessagePath {
    conversation_id: ConversationId,
    message_id: MessageId,
}

/// The named segments of a request's path.
async fn path_segments(
    parts: &mut Parts,
    app: &Arc<App>,
) -> Result<Vec<(String, String)>, WireError> {
    Path::<Vec<(String, String)>>::from_request_parts(parts, app)
        .await
        .map(|Path(segments)| segments)
        .map_err(|rejection| WireError::from(Error::invalid("path", rejection.body_text())))
}

fn segment<'a>(segments: &'a [(String, String)], name: &str) -> &'a str {
    segments
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

impl FromRequestParts<Arc<App>> for MessagePath {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let segments = path_segments(parts, app).await?;
        Ok(MessagePath {
            conversation_id: conversation_id(segment(&segments, "conversation_id"))?,
            message_id: message_id("message_id", segment(&segments, "message_id"))?,
        })
    }
}

/// The `{emoji}` of a reaction's path (percent-decoded, not yet validated).
pub(crate) struct EmojiSegment(String);

impl FromRequestParts<Arc<App>> for EmojiSegment {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let segments = path_segments(parts, app).await?;
        Ok(EmojiSegment(segment(&segments, "emoji").to_owned()))
    }
}

fn optional_message_id(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<MessageId>, WireError> {
    text.map(|text| message_id(field, text)).transpose()
}

pub(crate) fn parse_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, WireError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| WireError::from(Error::invalid("query", rejection.body_text())))
}

/// This API's OpenAPI 3.1 document (generated from the code; `docs/openapi.json` is a copy).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "probes", security(()),
    responses((status = 200, description = "The OpenAPI document.", content_type = "application/json")))]
pub(crate) async fn openapi_document() -> Response {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response()
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "probes", security(()),
    responses((status = 200, description = "Alive.", body = StatusBody)))]
pub(crate) async fn health() -> Json<StatusBody> {
    Json(StatusBody { status: "ok" })
}

/// Readiness: storage answers.
#[utoipa::path(get, path = "/ready", tag = "probes", security(()),
    responses(
        (status = 200, description = "Ready to serve.", body = StatusBody),
        (status = 503, description = "Storage does not answer (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn ready(State(app): State<Arc<App>>) -> Result<Json<StatusBody>, WireError> {
    app.system.ready().await?;
    Ok(Json(StatusBody { status: "ready" }))
}

/// The body of the probes.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusBody {
    /// `ok` (liveness) or `ready` (readiness).
    status: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConversationBody {
    /// `direct`, `group` or `channel`.
    #[schema(example = "group")]
    kind: String,
    /// An optional title, at most 256 bytes, not blank.
    title: Option<String>,
    /// User ids to add as members (the caller becomes the owner).
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct MemberBody<'a> {
    /// The member.
    user_id: &'a str,
    /// `owner`, `admin`, `moderator` or `member`.
    role: &'static str,
    /// When they joined, milliseconds since the epoch.
    joined_at: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConversationBody<'a> {
    /// The conversation's ULID.
    conversation_id: String,
    /// `direct`, `group` or `channel`.
    kind: &'static str,
    /// The title, if any.
    title: Option<&'a str>,
    /// Who created it.
    created_by: &'a str,
    /// When, milliseconds since the epoch.
    created_at: u64,
    /// Every member, in user id order.
    members: Vec<MemberBody<'a>>,
    /// The newest seq of the conversation (reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<u64>,
    /// The caller's own state in the conversation (reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    me: Option<MyStateBody>,
}

/// The caller's own state in a conversation.
#[derive(Serialize, ToSchema)]
pub(crate) struct MyStateBody {
    /// The caller's role.
    role: &'static str,
    /// The caller's read cursor (a seq).
    read: u64,
    /// The caller's delivered cursor (a seq).
    delivered: u64,
    /// Messages of others after the read cursor that are not deleted, counted up to 1000.
    unread_count: usize,
    /// The caller's notifications for this conversation are muted until then (ms since the
    /// epoch); absent when not muted.
    #[serde(skip_serializing_if = "Option::is_none")]
    notifications_muted_until: Option<u64>,
    /// The caller archived the conversation for themself.
    archived: bool,
    /// The caller pinned the conversation.
    pinned: bool,
}

fn member_view_body<'a>(view: &'a MemberView, user_id: &UserId) -> ConversationBody<'a> {
    let mut body = conversation_body(&view.snapshot);
    body.head = Some(view.head.get());
    body.me = view.snapshot.member(user_id).map(|member| MyStateBody {
        role: member.role.as_str(),
        read: view.cursors.read.get(),
        delivered: view.cursors.delivered.get(),
        unread_count: view.unread_count,
        notifications_muted_until: view
            .settings
            .notifications_muted_until
            .map(|until| until.as_millis()),
        archived: view.settings.archived,
        pinned: view.settings.pinned,
    });
    body
}

fn conversation_body(snapshot: &ConversationSnapshot) -> ConversationBody<'_> {
    let conversation = &snapshot.conversation;
    ConversationBody {
        conversation_id: conversation.conversation_id.to_string(),
        kind: conversation.kind.as_str(),
        title: conversation.title.as_deref(),
        created_by: conversation.created_by.as_str(),
        created_at: conversation.created_at.as_millis(),
        members: snapshot
            .members
            .iter()
            .map(|member| MemberBody {
                user_id: member.user_id.as_str(),
                role: member.role.as_str(),
                joined_at: member.joined_at.as_millis(),
            })
            .collect(),
        head: None,
        me: None,
    }
}

/// Create a conversation.
///
/// The caller becomes the owner; every listed user becomes a member (duplicates and the caller
/// are ignored). A `direct` conversation names exactly one other user; creating it again for
/// the same pair (by either of the two) answers 200 with the existing conversation.
#[utoipa::path(post, path = "/v1/conversations", tag = "conversations",
    request_body = CreateConversationBody,
    responses(
        (status = 201, description = "Created.", body = ConversationBody<'_>),
        (status = 200, description = "The pair's existing direct conversation.", body = ConversationBody<'_>),
        (status = 400, description = "Malformed body, unknown field, unknown kind, bad user id, or a direct conversation without exactly one other user (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 413, description = "The body is over `limits.max_body_bytes`, the title over 256 bytes, or too many members (`too_large`).", body = ErrorBody),
        (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn create_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let body: CreateConversationBody = parse_body(&app, body)?;
    let kind = ConversationKind::parse(&body.kind).ok_or_else(|| {
        WireError::from(Error::invalid(
            "kind",
            "must be one of direct, group, channel",
        ))
    })?;
    let members = body
        .members
        .iter()
        .map(|member| UserId::parse(member).map_err(WireError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let (snapshot, created) = app
        .system
        .create_conversation(&identity, kind, body.title, members)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(conversation_body(&snapshot))).into_response())
}

/// Read a conversation, its members, its head, and the caller's role, cursors and unread count.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    responses(
        (status = 200, description = "The conversation.", body = ConversationBody<'_>),
        (status = 400, description = "The id is not a ULID (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody), (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody), (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn get_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let view = app.system.member_view(&identity, conversation_id).await?;
    Ok(Json(member_view_body(&view, &identity.user_id)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceiptsBody {
    /// Read through this seq (moves the read cursor forward only, and the delivered cursor
    /// with it).
    read: Option<u64>,
    /// Delivered through this seq (moves the delivered cursor forward only).
    delivered: Option<u64>,
}

/// Report messages as read or delivered.
///
/// Cursors only move forward and never past the conversation's head; a report that moves
/// nothing changes nothing. Joined WebSocket sessions of the conversation get a `receipt`
/// event. Answers with the conversation as the caller sees it now (cursors, unread count).
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/receipts", tag = "conversations",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = ReceiptsBody,
    responses(
        (status = 200, description = "The conversation with the caller's cursors and unread count.", body = ConversationBody<'_>),
        (status = 400, description = "Malformed body or unknown field (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody),
        (status = 404, description = "No such conversation in the caller's tenant (`not_found`).", body = ErrorBody),
        (status = 503, description = "Storage or the conversation is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn post_receipts(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: ReceiptsBody = parse_body(&app, body)?;
    let view = app
        .system
        .mark(
            &identity,
            conversation_id,
            body.read.map(Seq),
            body.delivered.map(Seq),
        )
        .await?;
    Ok(Json(member_view_body(&view, &identity.user_id)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostMessageBody {
    /// The idempotency key, at most 64 bytes: the caller's own in this conversation (shared
    /// with operations; another member may use the same one); reusing it for a different
    /// request is refused (`conflict`).
    client_id: String,
    /// The text: not blank, at most `limits.max_message_bytes`.
    text: String,
    /// A message of this conversation this one replies to.
    reply_to: Option<String>,
    /// Post as a reply in the thread under this message of this conversation.
    thread_root: Option<String>,
}

/// Send a message.
///
/// Answers once the message is durable, and fans it out to joined WebSocket sessions. A
/// repeated `client_id` (the caller's own: other members' keys never collide with it) with the
/// same text and references stores nothing new and answers with the original message and the
/// header `idempotent-replayed: true`; the same `client_id` with another text or references is
/// refused (409 `conflict`). With `thread_root`, the message is a reply in that message's
/// thread. Shares the user's rate limit with WebSocket sends.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/messages", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = PostMessageBody,
    responses(
        (status = 201, description = "The stored message (new, or the original for a repeated client_id).", body = MessageBody<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        (status = 400, description = "Malformed body, unknown field, bad client_id, empty text, or reply_to / thread_root not naming a message of this conversation, or a thread_root that is itself a thread reply (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "Not a member (`not_member`), or a member posting in a channel without being a moderator or above (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody),
        (status = 409, description = "The thread's root was deleted, or the caller used this client_id for a different request (`conflict`).", body = ErrorBody),
        (status = 413, description = "The text is over `limits.max_message_bytes` or the body over `limits.max_body_bytes` (`too_large`).", body = ErrorBody),
        (status = 429, description = "The user's rate limit is exhausted (`rate_limited`, with `retry_after_ms` and `Retry-After`).", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn post_message(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: PostMessageBody = parse_body(&app, body)?;
    let new_message = NewMessage {
        client_id: ClientId::parse(&body.client_id)?,
        text: body.text,
        reply_to: optional_message_id("reply_to", body.reply_to.as_deref())?,
        thread_root: optional_message_id("thread_root", body.thread_root.as_deref())?,
        forwarded_from: None,
    };
    let sent = app
        .system
        .send(&identity, conversation_id, new_message)
        .await?;
    let mut response = (StatusCode::CREATED, Json(MessageBody::new(&sent.message))).into_response();
    mark_replayed(&mut response, sent.created);
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    /// Page size; default `limits.history_default_limit` (50); larger values are clamped to
    /// `limits.history_max_limit` (200); 0 is invalid.
    limit: Option<usize>,
    /// A `next_cursor` from a previous page of this conversation.
    cursor: Option<String>,
    /// Start a forward page after this seq. Not combinable with `cursor`.
    after_seq: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryPageBody<'a> {
    /// Messages, in the page's direction.
    items: Vec<MessageBody<'a>>,
    /// Continues in the same direction; null when there is nothing more.
    next_cursor: Option<String>,
}

/// Page through a conversation's history.
///
/// Messages only, each in its current state (edited text, tombstone, reactions, thread
/// counters); operations are not listed. Without `after_seq`, pages go backward, newest first.
/// With `after_seq=N`, they go forward from seq N+1, oldest first. `next_cursor` continues in
/// the same direction; it is null when there is nothing more (backward) or the page was not
/// full (forward).
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), HistoryQuery),
    responses(
        (status = 200, description = "A page.", body = HistoryPageBody<'_>),
        (status = 400, description = "Bad limit, unknown parameter, a cursor not issued for this conversation, or both cursor and after_seq (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody), (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody), (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn list_messages(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let query = parse_query(query)?;
    let limit = query.limit.unwrap_or(app.http.history_default_limit);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1").into());
    }
    let limit = limit.min(app.http.history_max_limit);
    let (direction, position) = match (query.cursor, query.after_seq) {
        (Some(_), Some(_)) => {
            return Err(
                Error::invalid("cursor", "use either cursor or after_seq, not both").into(),
            );
        }
        (None, Some(after_seq)) => (Direction::Forward, Some(Seq(after_seq))),
        (Some(cursor), None) => {
            let cursor = HistoryCursor::decode(&cursor, conversation_id)?;
            (cursor.direction, Some(cursor.seq))
        }
        (None, None) => (Direction::Backward, None),
    };
    let page: HistoryPage = match direction {
        Direction::Forward => {
            app.system
                .history_after(
                    &identity,
                    conversation_id,
                    position.unwrap_or(Seq::ZERO),
                    limit,
                )
                .await?
        }
        Direction::Backward => {
            app.system
                .history_before(&identity, conversation_id, position, limit)
                .await?
        }
    };
    let next_cursor = match (direction, page.next) {
        (Direction::Forward, Some(next)) => Some(next),
        (Direction::Backward, Some(next)) if next > Seq(1) => Some(next),
        _ => None,
    }
    .map(|seq| {
        HistoryCursor {
            conversation_id,
            direction,
            seq,
        }
        .encode()
    });
    let body = HistoryPageBody {
        items: page.messages.iter().map(MessageBody::new).collect(),
        next_cursor,
    };
    Ok(Json(body).into_response())
}

/// Marks a response as the replay of an earlier request with the same `client_id`.
fn mark_replayed(response: &mut Response, created: bool) {
    if !created {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
}

/// Read one message in its current state.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages/{message_id}", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID.")),
    responses(
        (status = 200, description = "The message.", body = MessageBody<'_>),
        (status = 400, description = "An id is not a ULID (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody), (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody), (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn get_message(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
) -> Result<Response, WireError> {
    let (message, _) = app
        .system
        .message(&identity, conversation_id, message_id)
        .await?;
    Ok(Json(MessageBody::new(&message)).into_response())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct EventRefBody {
    /// The event's ULID.
    event_id: String,
    /// The event's seq in the conversation.
    seq: u64,
    /// When it was accepted, milliseconds since the epoch.
    ts: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct OperationResponse<'a> {
    /// The operation's event in the seq stream.
    event: EventRefBody,
    /// The message as it is now.
    message: MessageBody<'a>,
}

async fn operate(
    app: &App,
    identity: &Identity,
    conversation_id: ConversationId,
    client_id: &str,
    operation: MessageOperation,
) -> Result<Response, WireError> {
    let new_operation = NewOperation {
        client_id: ClientId::parse(client_id)?,
        operation,
    };
    let result = app
        .system
        .operate(identity, conversation_id, new_operation)
        .await?;
    let body = OperationResponse {
        event: EventRefBody {
            event_id: result.event.message_id.to_string(),
            seq: result.event.seq.get(),
            ts: result.event.ts.as_millis(),
        },
        message: MessageBody::new(&result.message),
    };
    let mut response = Json(body).into_response();
    mark_replayed(&mut response, result.created);
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditMessageBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// The new text.
    text: String,
}

/// Edit a message.
///
/// Author only, within the edit window. The previous text joins the edit history; a
/// `message.edited` event with its own seq reaches every joined member. A repeated `client_id`
/// with the same text stores nothing new and answers with the original event; with another
/// text it is refused (`conflict`).
#[utoipa::path(patch, path = "/v1/conversations/{conversation_id}/messages/{message_id}", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID.")),
    request_body = EditMessageBody,
    responses(
        (status = 200, description = "The event and the message as it is now.", body = OperationResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        OperationErrors,
    ))]
pub(crate) async fn edit_message(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let body: EditMessageBody = parse_body(&app, body)?;
    let operation = MessageOperation::Edit {
        message_id,
        text: body.text,
    };
    operate(&app, &identity, conversation_id, &body.client_id, operation).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteMessageQuery {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// `for_everyone` (default), `hard`, or `for_me` (hidden for the caller only: no event, the
    /// answer is 204).
    mode: Option<String>,
}

/// Delete a message, for everyone or for yourself.
///
/// `for_me`: any member; the message disappears from the caller's history, thread listings
/// and message reads (404), and the caller's sessions get `skipped` in place of every entry
/// about it; nobody else is affected and no event is recorded. Answers 204.
///
/// `for_everyone` (default): the author within the edit window, or a moderator or stronger at
/// any time; the message becomes a tombstone (text and reactions gone; the edit history stays,
/// readable by moderators only). `hard`: admin or stronger; the edit history is purged too. A
/// `message.deleted` event reaches every joined member, and the text of the message's earlier
/// `message.edited` events is removed from replays.
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/messages/{message_id}", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID."), DeleteMessageQuery),
    responses(
        (status = 200, description = "The event and the tombstone.", body = OperationResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        (status = 204, description = "`for_me`: hidden for the caller."),
        OperationErrors,
    ))]
pub(crate) async fn delete_message(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
    query: Result<Query<DeleteMessageQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    if query.mode.as_deref() == Some("for_me") {
        ClientId::parse(&query.client_id)?;
        app.system
            .hide_for_me(&identity, conversation_id, message_id)
            .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let operation = MessageOperation::Delete {
        message_id,
        mode: parse_delete_mode(query.mode.as_deref())?,
    };
    operate(
        &app,
        &identity,
        conversation_id,
        &query.client_id,
        operation,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddReactionBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// A single Unicode emoji, or a `:name:` of at most 34 bytes.
    #[schema(example = "👍")]
    emoji: String,
}

/// React to a message.
///
/// One reaction per user per emoji; an emoji is a single Unicode emoji or a `:name:`. A
/// `reaction.added` event carrying the new count reaches every joined member.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/messages/{message_id}/reactions", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID.")),
    request_body = AddReactionBody,
    responses(
        (status = 200, description = "The event and the message as it is now.", body = OperationResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        OperationErrors,
    ))]
pub(crate) async fn add_reaction(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let body: AddReactionBody = parse_body(&app, body)?;
    let operation = MessageOperation::React {
        message_id,
        emoji: Emoji::parse(&body.emoji)?,
    };
    operate(&app, &identity, conversation_id, &body.client_id, operation).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveReactionQuery {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
}

/// Remove one's own reaction.
///
/// A `reaction.removed` event carrying the new count reaches every joined member.
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/messages/{message_id}/reactions/{emoji}", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID."), ("emoji" = String, Path, description = "The emoji, percent-encoded."), RemoveReactionQuery),
    responses(
        (status = 200, description = "The event and the message as it is now.", body = OperationResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        OperationErrors,
    ))]
pub(crate) async fn remove_reaction(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
    EmojiSegment(emoji): EmojiSegment,
    query: Result<Query<RemoveReactionQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let operation = MessageOperation::Unreact {
        message_id,
        emoji: Emoji::parse(&emoji)?,
    };
    operate(
        &app,
        &identity,
        conversation_id,
        &query.client_id,
        operation,
    )
    .await
}

#[derive(Serialize, ToSchema)]
pub(crate) struct EditVersionBody<'a> {
    /// The earlier text.
    text: &'a str,
    /// When an edit replaced it, milliseconds since the epoch.
    replaced_at: u64,
    /// The seq of that edit's event.
    replaced_by_seq: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct EditHistoryBody<'a> {
    /// The message.
    message_id: String,
    /// Earlier texts, oldest first.
    versions: Vec<EditVersionBody<'a>>,
}

/// Read a message's edit history.
///
/// Earlier texts, oldest first. Members may read it while the message stands; after a delete
/// for everyone only moderators and stronger may; a hard delete empties it.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages/{message_id}/edits", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID.")),
    responses(
        (status = 200, description = "The history.", body = EditHistoryBody<'_>),
        (status = 400, description = "An id is not a ULID (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "Not a member (`not_member`), or the message was deleted and the caller is below moderator (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn list_edits(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
) -> Result<Response, WireError> {
    let snapshot = app.system.conversation(&identity, conversation_id).await?;
    let (message, role): (Message, Role) = app
        .system
        .message(&identity, conversation_id, message_id)
        .await?;
    if message
        .state
        .deleted
        .as_ref()
        .is_some_and(|deletion| deletion.mode == DeleteMode::ForEveryone)
    {
        // A deleted message's history is kept for moderation only.
        permissions::check(
            snapshot.conversation.kind,
            role,
            Action::DeleteOthersMessages,
            None,
            None,
        )
        .map_err(|_| Error::Forbidden {
            reason: "the message was deleted; its edit history is visible to moderators only"
                .into(),
        })?;
    }
    let body = EditHistoryBody {
        message_id: message.message_id.to_string(),
        versions: message
            .state
            .previous_versions
            .iter()
            .map(|version| EditVersionBody {
                text: &version.text,
                replaced_at: version.replaced_at.as_millis(),
                replaced_by_seq: version.replaced_by_seq.get(),
            })
            .collect(),
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThreadQuery {
    /// Page size, as for history.
    limit: Option<usize>,
    /// Replies after this seq (a previous page's `next_after_seq`).
    after_seq: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ThreadPage<'a> {
    /// The thread's root message.
    root: MessageBody<'a>,
    /// Replies, oldest first.
    items: Vec<MessageBody<'a>>,
    /// Pass as `after_seq` for the next page; absent on the last page.
    next_after_seq: Option<u64>,
}

/// Page through the replies in a message's thread.
///
/// Oldest first, after `after_seq`; the root carries `thread_reply_count` and
/// `thread_last_reply_at`.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages/{message_id}/thread", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID."), ThreadQuery),
    responses(
        (status = 200, description = "The root and a page of replies.", body = ThreadPage<'_>),
        (status = 400, description = "Bad limit or unknown parameter (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody), (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody), (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn list_thread(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MessagePath {
        conversation_id,
        message_id,
    }: MessagePath,
    query: Result<Query<ThreadQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let root = message_id;
    let query = parse_query(query)?;
    let limit = query.limit.unwrap_or(app.http.history_default_limit);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1").into());
    }
    let limit = limit.min(app.http.history_max_limit);
    let (root_message, replies) = app
        .system
        .thread(
            &identity,
            conversation_id,
            root,
            Seq(query.after_seq.unwrap_or(0)),
            limit,
        )
        .await?;
    let page = ThreadPage {
        root: MessageBody::new(&root_message),
        items: replies.messages.iter().map(MessageBody::new).collect(),
        next_after_seq: replies.next.map(Seq::get),
    };
    Ok(Json(page).into_response())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ChangeResponse<'a> {
    /// The change's event in the seq stream.
    event: EventRefBody,
    /// The conversation as it is now (absent when the caller is no longer a member).
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<ConversationBody<'a>>,
}

async fn apply_change(
    app: &App,
    identity: &Identity,
    conversation_id: ConversationId,
    client_id: &str,
    change: ConversationChange,
) -> Result<Response, WireError> {
    let client_id = ClientId::parse(client_id)?;
    let result = app
        .system
        .change(identity, conversation_id, client_id, change)
        .await?;
    let still_member = result.snapshot.member(&identity.user_id).is_some();
    let body = ChangeResponse {
        event: EventRefBody {
            event_id: result.event.message_id.to_string(),
            seq: result.event.seq.get(),
            ts: result.event.ts.as_millis(),
        },
        conversation: still_member.then(|| conversation_body(&result.snapshot)),
    };
    let mut response = Json(body).into_response();
    mark_replayed(&mut response, result.created);
    Ok(response)
}

fn patch_field(value: Option<Option<String>>) -> Patch<String> {
    match value {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(value)) => Patch::Set(value),
    }
}

/// Deserializes a field that may be absent (keep), `null` (clear) or a value (set).
fn nullable<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateConversationBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// A new title; `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    title: Option<Option<String>>,
    /// A new description; `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// A new https avatar URL; `null` clears it; absent leaves it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    avatar_url: Option<Option<String>>,
}

/// Change the title, description or avatar.
///
/// Admin or stronger (not in direct conversations). A `conversation.updated` event with the
/// new values reaches every joined member.
#[utoipa::path(patch, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = UpdateConversationBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn update_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: UpdateConversationBody = parse_body(&app, body)?;
    let change = ConversationChange::Update {
        title: patch_field(body.title),
        description: patch_field(body.description),
        avatar_url: patch_field(body.avatar_url),
    };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// `true` to archive, `false` to unarchive.
    archived: bool,
}

/// Archive or unarchive the conversation.
///
/// Owner only. An archived conversation takes no messages, operations or changes (`conflict`)
/// until unarchived; it stays readable. A `conversation.archived` event reaches every joined
/// member.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/archive", tag = "conversations",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = ArchiveBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn archive_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: ArchiveBody = parse_body(&app, body)?;
    let change = ConversationChange::Archive {
        archived: body.archived,
    };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddMembersBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// Users to add (at most 100; members already in are skipped).
    user_ids: Vec<String>,
}

/// Add members.
///
/// Admin or stronger. Users already in are skipped; a banned user is refused (`forbidden`);
/// the conversation may hold at most `limits.max_members` members (`too_large`). One
/// `member.joined` event lists the new members.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/members", tag = "members",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = AddMembersBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn add_members(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: AddMembersBody = parse_body(&app, body)?;
    let user_ids = body
        .user_ids
        .iter()
        .map(|user_id| UserId::parse(user_id).map_err(WireError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let change = ConversationChange::AddMembers { user_ids };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientIdQuery {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
}

/// The `{conversation_id}` and `{user_id}` of a member's path, parsed.
pub(crate) struct MemberPath {
    conversation_id: ConversationId,
    user_id: UserId,
}

impl FromRequestParts<Arc<App>> for MemberPath {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let segments = path_segments(parts, app).await?;
        Ok(MemberPath {
            conversation_id: conversation_id(segment(&segments, "conversation_id"))?,
            user_id: UserId::parse(segment(&segments, "user_id"))?,
        })
    }
}

/// Remove a member.
///
/// Admin or stronger, and only members whose role ranks below the caller's. A `member.left`
/// event with reason `removed` reaches every joined member, the removed user's sessions
/// included; their subscription then ends.
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/members/{user_id}", tag = "members",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("user_id" = String, Path, description = "The member's user id."), ClientIdQuery),
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn remove_member(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MemberPath {
        conversation_id,
        user_id,
    }: MemberPath,
    query: Result<Query<ClientIdQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let change = ConversationChange::RemoveMember { user_id };
    apply_change(&app, &identity, conversation_id, &query.client_id, change).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaveBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
}

/// Leave the conversation.
///
/// Anyone but the owner (who transfers ownership first); not in direct conversations. A
/// `member.left` event with reason `left` reaches every joined member.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/leave", tag = "members",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = LeaveBody,
    responses(
        (status = 200, description = "The event (the caller is no longer a member, so no conversation).", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn leave_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: LeaveBody = parse_body(&app, body)?;
    apply_change(
        &app,
        &identity,
        conversation_id,
        &body.client_id,
        ConversationChange::Leave,
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeRoleBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// `admin`, `moderator` or `member`.
    role: String,
}

/// Change a member's role.
///
/// Admin or stronger; the member and the new role must both rank below the caller. Ownership
/// moves with the owner endpoint instead. A `member.role_changed` event reaches every joined
/// member.
#[utoipa::path(put, path = "/v1/conversations/{conversation_id}/members/{user_id}/role", tag = "members",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("user_id" = String, Path, description = "The member's user id.")),
    request_body = ChangeRoleBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn change_role(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    MemberPath {
        conversation_id,
        user_id,
    }: MemberPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let body: ChangeRoleBody = parse_body(&app, body)?;
    let change = ConversationChange::ChangeRole {
        user_id,
        role: parse_role(Some(&body.role))?,
    };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferOwnershipBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// The member who becomes the owner.
    user_id: String,
}

/// Transfer ownership.
///
/// Owner only. The new owner must be a member; the previous owner becomes an admin. A
/// `conversation.owner_changed` event reaches every joined member.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/owner", tag = "members",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = TransferOwnershipBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn transfer_ownership(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: TransferOwnershipBody = parse_body(&app, body)?;
    let change = ConversationChange::TransferOwnership {
        user_id: UserId::parse(&body.user_id)?,
    };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModerateBody {
    /// The idempotency key: the caller's own in this conversation (shared with sends and
    /// operations); reusing it for a different request is refused (`conflict`).
    client_id: String,
    /// `kick`, `ban`, `unban`, `mute` or `unmute`.
    action: String,
    /// Whom.
    user_id: String,
    /// For `ban` and `mute`: how long, in milliseconds; absent means until lifted.
    duration_ms: Option<u64>,
    /// Why (at most 512 bytes); recorded in the moderation log.
    reason: Option<String>,
}

/// Kick, ban, unban, mute or unmute a user.
///
/// Moderator or stronger, and only users whose role ranks below the caller's. A kick removes a
/// member (who may be added again); a ban removes them if they are a member and keeps them out
/// until unbanned or `duration_ms` passes; a mute keeps a member from posting (reading still
/// works) until unmuted or `duration_ms` passes. Bans and mutes end on their own, across
/// restarts. Each action is recorded in the moderation log and reaches every joined member as
/// a `moderation.*` event.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/moderation", tag = "moderation",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = ModerateBody,
    responses(
        (status = 200, description = "The event and the conversation now.", body = ChangeResponse<'_>, headers(("idempotent-replayed" = String, description = "Present, with value `true`, when the caller had made the same request with this client_id before and nothing new was stored."))),
        ChangeErrors,
    ))]
pub(crate) async fn moderate(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: ModerateBody = parse_body(&app, body)?;
    let change = ConversationChange::Moderate {
        action: parse_moderation_action(Some(&body.action))?,
        user_id: UserId::parse(&body.user_id)?,
        duration_ms: body.duration_ms,
        reason: body.reason,
    };
    apply_change(&app, &identity, conversation_id, &body.client_id, change).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModerationLogQuery {
    /// Page size, as for history.
    limit: Option<usize>,
    /// Entries before this seq (a previous page's `next_before_seq`).
    before_seq: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ModerationLogPage<'a> {
    /// Moderation actions, newest first: who (`actor_id`), whom, what, when (`ts`), why and
    /// until.
    items: Vec<ModerationEventBody<'a>>,
    /// Pass as `before_seq` for the next page; absent on the last page.
    next_before_seq: Option<u64>,
}

/// Read the moderation log.
///
/// Moderator or stronger. Every kick, ban, unban, mute and unmute, newest first.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/moderation", tag = "moderation",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ModerationLogQuery),
    responses(
        (status = 200, description = "A page of the log.", body = ModerationLogPage<'_>),
        (status = 400, description = "Bad limit or unknown parameter (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "Not a member (`not_member`), or below moderator (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No such conversation in the caller's tenant (`not_found`).", body = ErrorBody),
        (status = 503, description = "Storage or the conversation is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn moderation_log(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    query: Result<Query<ModerationLogQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let query = parse_query(query)?;
    let limit = page_limit(&app, query.limit)?;
    let events = app
        .system
        .moderation_log(&identity, conversation_id, query.before_seq.map(Seq), limit)
        .await?;
    let next_before_seq = match events.last() {
        Some(last) if events.len() == limit => Some(last.seq.get()),
        _ => None,
    };
    let page = ModerationLogPage {
        items: events
            .iter()
            .filter_map(ModerationEventBody::from_event)
            .collect(),
        next_before_seq,
    };
    Ok(Json(page).into_response())
}

/// A page size from a query: the default when absent, at least 1, clamped to the maximum.
pub(crate) fn page_limit(app: &App, limit: Option<usize>) -> Result<usize, WireError> {
    let limit = limit.unwrap_or(app.http.history_default_limit);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1").into());
    }
    Ok(limit.min(app.http.history_max_limit))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Page size, as for history.
    limit: Option<usize>,
    /// A `next_cursor` from the previous page.
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ListingBody<'a> {
    /// The conversation, with `head` and the caller's `me` (role, cursors, unread count,
    /// settings).
    #[serde(flatten)]
    conversation: ConversationBody<'a>,
    /// The newest message, absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_message: Option<MessageBody<'a>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ListPage<'a> {
    /// Conversations, in id (creation) order.
    items: Vec<ListingBody<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// List my conversations.
///
/// Every conversation the caller is a member of, in id (creation) order, each with its newest
/// message and the caller's role, cursors, unread count and own settings (muted, archived,
/// pinned). Cursor-paginated.
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page.", body = ListPage<'_>),
        (status = 400, description = "Bad limit or cursor, or unknown parameter (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 503, description = "Storage is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn list_conversations(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let limit = page_limit(&app, query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| {
            ConversationId::parse(cursor).map_err(|_| {
                WireError::from(Error::invalid("cursor", "is not a cursor of this list"))
            })
        })
        .transpose()?;
    let listings = app.system.my_conversations(&identity, after, limit).await?;
    let next_cursor = match listings.last() {
        Some(last) if listings.len() == limit => {
            Some(last.view.snapshot.conversation.conversation_id.to_string())
        }
        _ => None,
    };
    let page = ListPage {
        items: listings
            .iter()
            .map(|listing| ListingBody {
                conversation: member_view_body(&listing.view, &identity.user_id),
                last_message: listing.last_message.as_ref().map(MessageBody::new),
            })
            .collect(),
        next_cursor,
    };
    Ok(Json(page).into_response())
}

/// Deserializes an optional number that may be absent (keep), `null` (clear) or a value (set).
fn nullable_u64<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsBody {
    /// Mute notifications until this time (ms since the epoch); `null` unmutes; absent leaves
    /// it.
    #[serde(default, deserialize_with = "nullable_u64")]
    #[schema(value_type = Option<u64>)]
    notifications_muted_until: Option<Option<u64>>,
    /// Archive (`true`) or unarchive (`false`) for yourself; absent leaves it.
    archived: Option<bool>,
    /// Pin (`true`) or unpin (`false`); absent leaves it.
    pinned: Option<bool>,
}

/// Change your own settings for a conversation.
///
/// Private to the caller: nobody else sees them and no event is sent. Answers with the
/// conversation as the caller sees it now.
#[utoipa::path(put, path = "/v1/conversations/{conversation_id}/settings", tag = "conversations",
    params(("conversation_id" = String, Path, description = "The conversation's ULID.")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The conversation with the caller's settings.", body = ConversationBody<'_>),
        (status = 400, description = "Malformed body or unknown field (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "The caller is not a member (`not_member`).", body = ErrorBody),
        (status = 404, description = "No such conversation in the caller's tenant (`not_found`).", body = ErrorBody),
        (status = 503, description = "Storage is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn update_settings(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: SettingsBody = parse_body(&app, body)?;
    let change = SettingsChange {
        notifications_muted_until: match body.notifications_muted_until {
            None => Patch::Keep,
            Some(None) => Patch::Clear,
            Some(Some(until)) => Patch::Set(Timestamp(until)),
        },
        archived: body.archived,
        pinned: body.pinned,
    };
    app.system
        .update_settings(&identity, conversation_id, change)
        .await?;
    let view = app.system.member_view(&identity, conversation_id).await?;
    Ok(Json(member_view_body(&view, &identity.user_id)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardBody {
    /// The idempotency key (at most 62 bytes); copy `i` in each target is stored under
    /// `<client_id>+<i>`, so retrying the same forward stores nothing twice.
    client_id: String,
    /// Messages of this conversation to copy, in order (at most `limits.forward_max_messages`).
    message_ids: Vec<String>,
    /// Conversations to copy them into (at most `limits.forward_max_targets`).
    to: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ForwardResult<'a> {
    /// The target conversation.
    conversation_id: String,
    /// The copies stored there, in order (absent when the target refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<MessageBody<'a>>>,
    /// Why the target refused (copies before the refusal stay stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ForwardResponse<'a> {
    /// One result per target, in request order.
    results: Vec<ForwardResult<'a>>,
}

/// Forward messages to other conversations.
///
/// Copies messages of this conversation (the caller must be a member) into each target, where
/// the caller must be allowed to post; each copy is a new message of the caller's carrying
/// `forwarded_from` (the original's conversation, id and sender; for a copy of a copy, the
/// first original). Deleted messages cannot be forwarded. One messages token is taken per
/// target. Answers 200 with a result per target: the copies, or the error that target gave.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/forward", tag = "messages",
    params(("conversation_id" = String, Path, description = "The source conversation's ULID.")),
    request_body = ForwardBody,
    responses(
        (status = 200, description = "One result per target.", body = ForwardResponse<'_>),
        (status = 400, description = "Malformed body, unknown field, bad ids, no messages or targets, a client_id over 62 bytes (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 403, description = "Not a member of the source (`not_member`).", body = ErrorBody),
        (status = 404, description = "No such source conversation, or a message that is not in it (`not_found`).", body = ErrorBody),
        (status = 409, description = "A message to forward was deleted (`conflict`); a target where the caller used a copy's client_id for a different request reports `conflict` in its result.", body = ErrorBody),
        (status = 413, description = "More messages or targets than configured (`too_large`).", body = ErrorBody),
        (status = 429, description = "The user's rate limit is exhausted (`rate_limited`).", body = ErrorBody),
        (status = 503, description = "Storage or a conversation is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn forward_messages(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let source = conversation_id(&conversation_id_text)?;
    let body: ForwardBody = parse_body(&app, body)?;
    let client_id = ClientId::parse(&body.client_id)?;
    let message_ids = body
        .message_ids
        .iter()
        .map(|text| message_id("message_ids", text))
        .collect::<Result<Vec<_>, _>>()?;
    let targets = body
        .to
        .iter()
        .map(|text| {
            ConversationId::parse(text)
                .map_err(|_| WireError::from(Error::invalid("to", "must be conversation ids")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = app
        .system
        .forward(&identity, source, message_ids, targets, &client_id)
        .await?;
    let results = outcomes
        .iter()
        .map(|outcome| match &outcome.result {
            Ok(copies) => ForwardResult {
                conversation_id: outcome.conversation_id.to_string(),
                messages: Some(
                    copies
                        .iter()
                        .map(|copy| MessageBody::new(&copy.message))
                        .collect(),
                ),
                error: None,
            },
            Err(error) => ForwardResult {
                conversation_id: outcome.conversation_id.to_string(),
                messages: None,
                error: Some(WireError::from(error).into_body()),
            },
        })
        .collect();
    Ok(Json(ForwardResponse { results }).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PresenceQuery {
    /// Comma-separated user ids (at most 100).
    user_ids: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PresenceResponse<'a> {
    /// The presence of each named user who shares a conversation with the caller.
    users: Vec<PresenceBody<'a>>,
    /// Users named who share no conversation with the caller (their presence is not shown).
    refused: Vec<&'a str>,
}

/// Read users' presence.
///
/// Online (a session open), away (a session open, and the user said so) or offline (with
/// `last_seen`, when known), for users who share a conversation with the caller. WebSocket
/// clients subscribe to changes with `subscribe_presence` instead.
#[utoipa::path(get, path = "/v1/presence", tag = "presence",
    params(PresenceQuery),
    responses(
        (status = 200, description = "Their presence.", body = PresenceResponse<'_>),
        (status = 400, description = "Bad user ids or unknown parameter (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 413, description = "More than 100 users (`too_large`).", body = ErrorBody),
        (status = 429, description = "The user's signals rate limit is exhausted (`rate_limited`).", body = ErrorBody),
        (status = 503, description = "Storage is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn get_presence(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<PresenceQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let user_ids = query
        .user_ids
        .split(',')
        .filter(|text| !text.is_empty())
        .map(|text| UserId::parse(text).map_err(WireError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let (visible, refused) = app.system.presence(&identity, user_ids).await?;
    let body = PresenceResponse {
        users: visible.iter().map(PresenceBody::new).collect(),
        refused: refused.iter().map(UserId::as_str).collect(),
    };
    Ok(Json(body).into_response())
}

/// The errors of a change to a conversation, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "only describes responses; the errors are built by WireError"
)]
pub(crate) enum ChangeErrors {
    /// Malformed body or query, unknown field, or a bad value (`invalid`).
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// The bearer token is missing or refused (`token_*` codes).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not a member (`not_member`), or the permission matrix (docs/PERMISSIONS.md) or a ban
    /// refuses it (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such conversation in the caller's tenant (`not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The conversation's state refuses it: archived, already a member, not a member, not
    /// banned, same role; or the caller used this client_id for another kind of request
    /// (`conflict`).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Too many members, or a value over its limit (`too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The user's rate limit is exhausted (`rate_limited`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Storage or the conversation is unavailable; retry with the same client_id
    /// (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors of an operation on a message, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "only describes responses; the errors are built by WireError"
)]
pub(crate) enum OperationErrors {
    /// Malformed body or query, unknown field, bad client_id, invalid text or emoji
    /// (`invalid`).
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// The bearer token is missing or refused (`token_*` codes).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not a member (`not_member`), or not allowed (`forbidden`): see docs/PERMISSIONS.md, the
    /// author-only rule and the edit window (`conversations.edit_window_ms`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such conversation (or message) in the caller's tenant (`not_found`); other tenants'
    /// data always looks like this.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The message's state refuses it: already deleted, already reacted, no such reaction of
    /// yours; or the caller used this client_id for a different request (`conflict`).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Text over `limits.max_message_bytes`, or more than 50 distinct reactions on the message
    /// (`too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The user's rate limit is exhausted (`rate_limited`, with `retry_after_ms` and
    /// `Retry-After`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Storage or the conversation is unavailable; for a write the outcome is unknown, retry
    /// with the same client_id (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct TurnQuery {
    /// The lifetime wanted, in seconds (default `turn.ttl_secs`, at most `turn.max_ttl_secs`).
    ttl_secs: Option<u64>,
}

/// Get TURN credentials and ICE servers.
///
/// coturn-compatible TURN REST API credentials (`use-auth-secret`): `username` is
/// `<expiry unix seconds>:<tenant>:<user>:<key id>`, tenant and user percent-encoded (`:` as
/// `%3A`, `%` as `%25`), and `password` is `base64(HMAC-SHA1(secret, username))`. The answer has
/// both shapes clients expect: `username`/`password`/`ttl`/`uris` and `iceServers` (as
/// `RTCIceServer`s). Rate limited as a signal.
#[utoipa::path(get, path = "/v1/turn/credentials", tag = "webrtc",
    params(TurnQuery),
    responses(
        (status = 200, description = "Credentials and servers.", body = IceServersBody<'_>),
        (status = 400, description = "Unknown parameter or a bad ttl (`invalid`).", body = ErrorBody),
        (status = 401, description = "The bearer token is missing or refused (`token_*` codes).", body = ErrorBody),
        (status = 429, description = "The user's signals rate limit is exhausted (`rate_limited`).", body = ErrorBody),
    ))]
pub(crate) async fn turn_credentials(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<TurnQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let servers = app.system.ice_servers(&identity, query.ttl_secs).await?;
    Ok(Json(IceServersBody::new(&servers)).into_response())
}
