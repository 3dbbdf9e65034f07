//! Moderation of a conversation: act on a member (mute, ban, ...) and read the moderation log.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::Seq;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::{ModerationEventBody, requests};
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::conversations::{ChangeResponse, apply_change};
use super::documented_errors::{ChangeErrors, TokenRefused};
use super::extract::{Authenticated, conversation_id, page_limit, parse_body, parse_query};

/// The moderation routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(moderate, moderation_log))
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
    let change = requests::moderate(
        Some(&body.action),
        Some(&body.user_id),
        body.duration_ms,
        body.reason,
    )?;
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
        TokenRefused,
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
