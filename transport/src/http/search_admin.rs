//! Operating the search index: `POST /v1/admin/search/reindex` rebuilds it from the event log
//! into a new generation in the background (the old one answers searches until the new one has
//! caught up and replaces it atomically), and `GET /v1/admin/search/reindex` reads how far the
//! rebuild has come. Both take a token with the admin role, and `scope`: `tenant` (the default:
//! the caller's tenant's documents are read again, every other tenant's are kept as they are)
//! or `all` (every tenant's; only for an admin of one of `search.operator_tenants`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_actors::search::indexer::{RebuildProgress, RebuildState};
use switchboard_actors::search::service::SearchService;
use switchboard_actors::session::Identity;
use switchboard_engine::ports::TailScope;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::{AdminRoleRequired, TokenRefused};
use super::extract::{Admin, parse_query};
use super::search::search_service;

/// The search administration routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(start_reindex, reindex_progress))
}

/// Whose documents a rebuild reads again.
#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RebuildScopeParam {
    /// The caller's tenant's (every other tenant's documents are kept as they are).
    #[default]
    Tenant,
    /// Every tenant's (an admin of a tenant in `search.operator_tenants` only).
    All,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RebuildQuery {
    /// `tenant` (the default): the caller's tenant's documents are read again from the event
    /// log, every other tenant's are kept as they are; `all`: every tenant's (an admin of a
    /// tenant listed in `search.operator_tenants` only).
    #[serde(default)]
    scope: RebuildScopeParam,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RebuildBody {
    /// `tenant` (the caller's tenant's documents read again) or `all`.
    scope: &'static str,
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
    /// The running rebuild of the scope asked for, or its last one; null if there was none
    /// since the node started.
    rebuild: Option<RebuildBody>,
}

impl From<RebuildProgress> for RebuildBody {
    fn from(progress: RebuildProgress) -> Self {
        Self {
            scope: match progress.scope {
                TailScope::AllTenants => "all",
                TailScope::Tenant(_) => "tenant",
            },
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

/// The search service and the rebuild scope `query` asks for, if the caller may have it.
fn service_and_scope<'app>(
    app: &'app App,
    identity: &Identity,
    query: Result<Query<RebuildQuery>, QueryRejection>,
) -> Result<(&'app Arc<SearchService>, TailScope), WireError> {
    let parameters = parse_query(query)?;
    let service = search_service(app)?;
    let scope =
        service.rebuild_scope(identity, matches!(parameters.scope, RebuildScopeParam::All))?;
    Ok((service, scope))
}

/// Rebuild the search index.
///
/// Starts rebuilding this node's search index into a new generation, in the background, and
/// answers at once (202). With `scope=tenant` (the default) the new generation starts as a
/// copy of the current one without the caller's tenant's documents, which are read again from
/// the event log; every other tenant's are kept as they are. With `scope=all` (an admin of a
/// tenant in `search.operator_tenants` only) it is filled from the start of the event log.
/// Searches keep using the current generation until the new one has read to the head of the
/// log; then it replaces the current one atomically (and durably: a restart opens it). A
/// rebuild of the same scope already running is not started again: its progress is answered;
/// one of another scope is a 409 (one rebuild at a time per node). Each node rebuilds its own
/// replica.
#[utoipa::path(post, path = "/v1/admin/search/reindex", tag = "search",
    params(RebuildQuery),
    responses(
        (status = 202, description = "The rebuild runs (just started, or already running).", body = RebuildBody),
        (status = 400, description = "A malformed or unknown query parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 409, description = "A rebuild of another scope is running on this node (`conflict`); try again when it is done.", body = ErrorBody),
        (status = 503, description = "Search is turned off, or the indexer cannot start a new generation (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn start_reindex(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    query: Result<Query<RebuildQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let (service, scope) = service_and_scope(&app, &identity, query)?;
    let progress = service.reindex(scope).await?;
    tracing::info!(admin = %identity.user_id, tenant = %identity.tenant_id, scope = ?progress.scope, generation = progress.generation, "search index rebuild requested");
    Ok((StatusCode::ACCEPTED, Json(RebuildBody::from(progress))).into_response())
}

/// Read the rebuild's progress.
///
/// The generation answering searches, and the running rebuild of the scope (or its last one
/// since the node started): `scope=tenant` (the default), the caller's tenant's; `scope=all`
/// (an admin of a tenant in `search.operator_tenants` only), every tenant's.
#[utoipa::path(get, path = "/v1/admin/search/reindex", tag = "search",
    params(RebuildQuery),
    responses(
        (status = 200, description = "The progress.", body = RebuildStatusBody),
        (status = 400, description = "A malformed or unknown query parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 503, description = "Search is turned off, or the indexer does not answer (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn reindex_progress(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    query: Result<Query<RebuildQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let (service, scope) = service_and_scope(&app, &identity, query)?;
    let rebuild = service.rebuild_progress(scope).await?;
    Ok(Json(RebuildStatusBody {
        live_generation: service.generation(),
        rebuild: rebuild.map(RebuildBody::from),
    })
    .into_response())
}
