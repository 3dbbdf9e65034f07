//! Messages: post, forward, read, history, threads, edits, deletes and reactions.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_actors::session::Identity;
use switchboard_actors::system::HistoryPage;
use switchboard_engine::Error;
use switchboard_engine::cursor::{Direction, HistoryCursor};
use switchboard_engine::ids::{ClientId, ConversationId, Seq};
use switchboard_engine::model::{DeleteMode, Message, NewMessage, Role};
use switchboard_engine::operations::{MessageOperation, NewOperation};
use switchboard_engine::permissions::{self, Action};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::MessageBody;
use crate::codec::requests::{self, Deletion};
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{CallerNotMember, OperationErrors, TokenRefused};
use super::extract::{
    Authenticated, EmojiSegment, EventRefBody, MessagePath, conversation_id, mark_replayed,
    message_id, optional_message_id, parse_body, parse_query,
};

/// The messages routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_messages, post_message))
        .routes(routes!(forward_messages))
        .routes(routes!(get_message, edit_message, delete_message))
        .routes(routes!(list_edits))
        .routes(routes!(list_thread))
        .routes(routes!(add_reaction))
        .routes(routes!(remove_reaction))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostMessageBody {
    /// The idempotency key, at most 64 bytes: the caller's own in this conversation (shared
    /// with operations; another member may use the same one); reusing it for a different
    /// request is refused (`conflict`).
    client_id: String,
    /// The text: at most `limits.max_message_bytes`; not blank, unless the message attaches
    /// media, when it may be empty or left out (a photo without a caption).
    text: Option<String>,
    /// A message of this conversation this one replies to.
    reply_to: Option<String>,
    /// Post as a reply in the thread under this message of this conversation.
    thread_root: Option<String>,
    /// Media to attach (ids from `POST /v1/media` or a finished tus upload), at most
    /// `media.max_attachments` (default 10), each named once: complete, and uploaded by the
    /// caller. Members who can read the message can then read the media.
    #[serde(default)]
    attachments: Vec<String>,
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
        (status = 400, description = "Malformed body, unknown field, bad client_id, empty text without attachments, reply_to / thread_root not naming a message of this conversation, a thread_root that is itself a thread reply, or an attachment that is not the caller's own complete media of this tenant or is named twice (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 403, description = "Not a member (`not_member`), or a member posting in a channel without being a moderator or above (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody),
        (status = 409, description = "The thread's root was deleted, an attachment is still uploading, or the caller used this client_id for a different request (`conflict`).", body = ErrorBody),
        (status = 413, description = "The text is over `limits.max_message_bytes`, more than `media.max_attachments` attachments, or the body over `limits.max_body_bytes` (`too_large`).", body = ErrorBody),
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
    let client_id = ClientId::parse(&body.client_id)?;
    let attachments = requests::media_ids(Some(&body.attachments))?;
    let new_message = NewMessage {
        client_id,
        text: requests::message_text(body.text, &attachments)?,
        reply_to: optional_message_id("reply_to", body.reply_to.as_deref())?,
        thread_root: optional_message_id("thread_root", body.thread_root.as_deref())?,
        forwarded_from: None,
        attachments,
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
        TokenRefused, CallerNotMember, (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
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

/// Read one message in its current state.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages/{message_id}", tag = "messages",
    params(("conversation_id" = String, Path, description = "The conversation's ULID."), ("message_id" = String, Path, description = "The message's ULID.")),
    responses(
        (status = 200, description = "The message.", body = MessageBody<'_>),
        (status = 400, description = "An id is not a ULID (`invalid`).", body = ErrorBody),
        TokenRefused, CallerNotMember, (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
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
    let operation = requests::edit(message_id, Some(body.text))?;
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
    let operation = match requests::delete(message_id, query.mode.as_deref())? {
        Deletion::ForMe => {
            ClientId::parse(&query.client_id)?;
            app.system
                .hide_for_me(&identity, conversation_id, message_id)
                .await?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        Deletion::Operation(operation) => operation,
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
    let operation = requests::react(message_id, Some(&body.emoji))?;
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
    let operation = requests::unreact(message_id, Some(&emoji))?;
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
        TokenRefused,
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
        TokenRefused, CallerNotMember, (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
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
        TokenRefused,
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
