//! Members of a conversation: add, remove, change a role, leave and transfer ownership.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::Response;
use http::request::Parts;
use serde::Deserialize;
use switchboard_engine::ids::{ConversationId, UserId};
use switchboard_engine::membership::ConversationChange;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::requests;
use crate::server::App;
use crate::wire_error::WireError;

use super::conversations::{ChangeResponse, apply_change};
use super::documented_errors::ChangeErrors;
use super::extract::{
    Authenticated, conversation_id, parse_body, parse_query, path_segments, segment,
};

/// The members routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
        .routes(routes!(change_role))
        .routes(routes!(leave_conversation))
        .routes(routes!(transfer_ownership))
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
    let change = requests::add_members(Some(&body.user_ids))?;
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
    let change = requests::change_role(user_id, Some(&body.role))?;
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
