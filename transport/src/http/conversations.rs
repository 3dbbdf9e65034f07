//! Conversations: create, list, read, update, archive, receipts and the caller's own settings.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_actors::session::Identity;
use switchboard_actors::system::{MemberView, SettingsChange};
use switchboard_engine::Error;
use switchboard_engine::ids::{ClientId, ConversationId, Seq, UserId};
use switchboard_engine::membership::{ConversationChange, Patch};
use switchboard_engine::model::{ConversationKind, ConversationSnapshot};
use switchboard_engine::time::Timestamp;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::MessageBody;
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{CallerNotMember, ChangeErrors, TokenRefused};
use super::extract::{
    Authenticated, EventRefBody, conversation_id, mark_replayed, page_limit, parse_body,
    parse_query,
};

/// The conversations routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(update_settings))
        .routes(routes!(get_conversation, update_conversation))
        .routes(routes!(post_receipts))
        .routes(routes!(archive_conversation))
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

pub(super) fn member_view_body<'a>(view: &'a MemberView, user_id: &UserId) -> ConversationBody<'a> {
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

pub(super) fn conversation_body(snapshot: &ConversationSnapshot) -> ConversationBody<'_> {
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
        TokenRefused,
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
        TokenRefused, CallerNotMember, (status = 404, description = "No such conversation (or message) in the caller's tenant (`not_found`); other tenants' data always looks like this.", body = ErrorBody), (status = 503, description = "Storage or the conversation is unavailable; for a write the outcome is unknown, retry with the same client_id (`unavailable`).", body = ErrorBody),
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
        TokenRefused,
        CallerNotMember,
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

#[derive(Serialize, ToSchema)]
pub(crate) struct ChangeResponse<'a> {
    /// The change's event in the seq stream.
    event: EventRefBody,
    /// The conversation as it is now (absent when the caller is no longer a member).
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<ConversationBody<'a>>,
}

pub(super) async fn apply_change(
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

pub(super) fn patch_field(value: Option<Option<String>>) -> Patch<String> {
    match value {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(value)) => Patch::Set(value),
    }
}

/// Deserializes a field that may be absent (keep), `null` (clear) or a value (set).
pub(super) fn nullable<'de, D: serde::Deserializer<'de>>(
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
        TokenRefused,
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
        TokenRefused,
        CallerNotMember,
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
