//! The caller's recent searches: `GET /v1/search/recent` lists them (newest first, each query
//! once, at most 20), `DELETE /v1/search/recent` erases them. Searches of messages and grouped
//! searches are remembered when their first page is asked for ([`remember`]); a failure to
//! remember is logged and never fails the search itself.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_actors::search::service::SearchService;
use switchboard_actors::session::Identity;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::TokenRefused;
use super::extract::Authenticated;
use super::search::search_service;

/// The recent searches routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(recent_searches, forget_recent_searches))
}

/// Records that the caller searched for `query`; logs (and otherwise ignores) a failure.
pub(super) async fn remember(service: &SearchService, identity: &Identity, query: &str) {
    if let Err(error) = service.remember(identity, query).await {
        tracing::warn!(%error, "could not remember a search");
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RecentSearchBody {
    /// The query as typed.
    query: String,
    /// When it was last run, in Unix milliseconds.
    at: u64,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RecentSearchesBody {
    /// Newest first, each query once, at most 20.
    searches: Vec<RecentSearchBody>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ForgottenBody {
    /// How many recent searches were erased.
    erased: usize,
}

/// List recent searches.
///
/// The caller's own recent searches (of messages, and grouped), newest first, each query once,
/// at most 20. Kept per user in the store, so they follow the user to any node.
#[utoipa::path(get, path = "/v1/search/recent", tag = "search",
    responses(
        (status = 200, description = "The caller's recent searches.", body = RecentSearchesBody),
        TokenRefused,
        (status = 503, description = "The store is unavailable, or search is turned off (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn recent_searches(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
) -> Result<Response, WireError> {
    let searches = search_service(&app)?.recent(&identity).await?;
    Ok(Json(RecentSearchesBody {
        searches: searches
            .into_iter()
            .map(|search| RecentSearchBody {
                query: search.query,
                at: search.at.0,
            })
            .collect(),
    })
    .into_response())
}

/// Erase recent searches.
///
/// Erases every recent search of the caller (nobody else's), durably.
#[utoipa::path(delete, path = "/v1/search/recent", tag = "search",
    responses(
        (status = 200, description = "Erased.", body = ForgottenBody),
        TokenRefused,
        (status = 503, description = "The store is unavailable, or search is turned off (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn forget_recent_searches(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
) -> Result<Response, WireError> {
    let erased = search_service(&app)?.forget(&identity).await?;
    Ok(Json(ForgottenBody { erased }).into_response())
}
