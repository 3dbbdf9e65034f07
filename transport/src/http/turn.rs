//! TURN: short-lived credentials and ICE servers for WebRTC calls.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::IceServersBody;
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::TokenRefused;
use super::extract::{Authenticated, parse_query};

/// The TURN route.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(turn_credentials))
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
        TokenRefused,
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
