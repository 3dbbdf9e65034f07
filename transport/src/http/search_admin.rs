//! Operating the search index: `POST /v1/admin/search/reindex` rebuilds it from the event log
//! into a new generation in the background (the old one answers searches until the new one has
//! caught up and replaces it atomically), and `GET /v1/admin/search/reindex` reads how far the
//! rebuild has come. Both take a token with the admin role. The index holds every tenant, so a
//! rebuild is of all of them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use switchboard_actors::search::indexer::{RebuildProgress, RebuildState};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{AdminRoleRequired, TokenRefused};
use super::extract::Admin;
use super::search::search_service;

/// The search administration routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(start_reindex, reindex_progress))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RebuildBody {
    /// The generation being built (or built).
    generation: u64,
    /// `running` (the old generation answers searches) or `done` (this one does).
    state: &'static str,
    /// Event-log entries read into it so far.
    entries: u64,
    /// The event-log position it reflects.
    checkpoint: u64,
    /// The event-log position the generation answering searches reflects.
    live_checkpoint: u64,
    /// When the rebuild began, in Unix milliseconds.
    started_at: u64,
    /// When it became live, in Unix milliseconds; null while running.
    finished_at: Option<u64>,
    /// The last failure of a step (each is retried); null if none.
    last_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RebuildStatusBody {
    /// The generation answering searches now.
    live_generation: u64,
    /// The running rebuild, or the last one; null if there was none since the node started.
    rebuild: Option<RebuildBody>,
}

impl From<RebuildProgress> for RebuildBody {
    fn from(progress: RebuildProgress) -> Self {
        Self {
            generation: progress.generation,
            state: match progress.state {
                RebuildState::Running => "running",
                RebuildState::Done => "done",
            },
            entries: progress.entries,
            checkpoint: progress.checkpoint.0,
            live_checkpoint: progress.live_checkpoint.0,
            started_at: progress.started_at.0,
            finished_at: progress.finished_at.map(|at| at.0),
            last_error: progress.last_error,
        }
    }
}

/// Rebuild the search index.
///
/// Starts rebuilding this node's search index from the start of the event log into a new
/// generation, in the background, and answers at once (202). Searches keep using the current
/// generation until the new one has read to the head of the log; then it replaces the current
/// one atomically (and durably: a restart opens it). A rebuild already running is not started
/// again: its progress is answered. Each node rebuilds its own replica.
#[utoipa::path(post, path = "/v1/admin/search/reindex", tag = "search",
    responses(
        (status = 202, description = "The rebuild runs (just started, or already running).", body = RebuildBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 503, description = "Search is turned off, or the indexer cannot start a new generation (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn start_reindex(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
) -> Result<Response, WireError> {
    let progress = search_service(&app)?.reindex().await?;
    tracing::info!(admin = %identity.user_id, tenant = %identity.tenant_id, generation = progress.generation, "search index rebuild requested");
    Ok((StatusCode::ACCEPTED, Json(RebuildBody::from(progress))).into_response())
}

/// Read the rebuild's progress.
///
/// The generation answering searches, and the running rebuild (or the last one since the node
/// started).
#[utoipa::path(get, path = "/v1/admin/search/reindex", tag = "search",
    responses(
        (status = 200, description = "The progress.", body = RebuildStatusBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 503, description = "Search is turned off, or the indexer does not answer (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn reindex_progress(
    State(app): State<Arc<App>>,
    Admin(_admin): Admin,
) -> Result<Response, WireError> {
    let service = search_service(&app)?;
    let rebuild = service.rebuild_progress().await?;
    Ok(Json(RebuildStatusBody {
        live_generation: service.generation(),
        rebuild: rebuild.map(RebuildBody::from),
    })
    .into_response())
}
