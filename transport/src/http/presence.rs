//! Presence: read the presence of users who share a conversation with the caller.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::UserId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::PresenceBody;
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::TokenRefused;
use super::extract::{Authenticated, parse_query};

/// The presence route.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(get_presence))
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
        TokenRefused,
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
