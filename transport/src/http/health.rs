//! The probes: liveness, readiness and this API's OpenAPI document (the metrics handler lives
//! in [`crate::metrics`] and is registered here).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

/// The probes' routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(openapi_document))
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
