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

/// Readiness: storage answers, and the search index (when on) can say where it stands.
///
/// An index that is behind the log (catching up after a restart, or new and filling from the
/// start after a schema change) is still ready: it answers searches with what it has, and says
/// how far behind it is.
#[utoipa::path(get, path = "/ready", tag = "probes", security(()),
    responses(
        (status = 200, description = "Ready to serve.", body = ReadyBody),
        (status = 503, description = "Storage or the search index does not answer (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn ready(State(app): State<Arc<App>>) -> Result<Json<ReadyBody>, WireError> {
    app.system.ready().await?;
    let search = match &app.search {
        None => None,
        Some(service) => {
            let status = service.status().await?;
            Some(SearchReadyBody {
                status: if status.lag_entries == 0 {
                    "up_to_date"
                } else {
                    "catching_up"
                },
                generation: status.generation,
                checkpoint: status.checkpoint.0,
                lag_entries: status.lag_entries,
                lag_seconds: status.lag_millis as f64 / 1e3,
            })
        }
    };
    Ok(Json(ReadyBody {
        status: "ready",
        search,
    }))
}

/// The body of the liveness probe.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatusBody {
    /// `ok`.
    status: &'static str,
}

/// The body of the readiness probe.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReadyBody {
    /// `ready`.
    status: &'static str,
    /// The search index; absent when search is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    search: Option<SearchReadyBody>,
}

/// Where the search index stands.
#[derive(Serialize, ToSchema)]
pub(crate) struct SearchReadyBody {
    /// `up_to_date` (it had taken the whole log when the indexer last looked) or
    /// `catching_up`.
    status: &'static str,
    /// The generation answering searches.
    generation: u64,
    /// The event-log position it reflects.
    checkpoint: u64,
    /// Entries it had not yet taken (counted up to 10000).
    lag_entries: u64,
    /// How long ago the oldest of them was stored.
    lag_seconds: f64,
}
