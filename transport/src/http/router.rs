//! The API's router and its OpenAPI document, built together: each resource module's `routes()`
//! registers its handlers with utoipa-axum's `routes!`, which adds the axum route and the
//! document's entry in one call, so the router and the document cannot drift apart.
//!
//! Adding a resource is its module plus one `.merge(super::<resource>::routes())` line in [`api`].
//! The merge order is the order of the document's paths.

use std::sync::Arc;

use axum::Router;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::ApiDoc;
use crate::server::App;

/// Every API route (the WebSocket upgrade included) with its OpenAPI document.
pub fn api() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(super::health::routes())
        .merge(super::presence::routes())
        .merge(super::turn::routes())
        .routes(routes!(crate::ws::upgrade))
        .merge(super::conversations::routes())
        .merge(super::members::routes())
        .merge(super::moderation::routes())
        .merge(super::messages::routes())
        .merge(super::recordings::routes())
        .merge(super::media::routes())
        .merge(super::media_uploads::routes())
        .merge(super::media_links::routes())
        .merge(super::media_thumbnails::routes())
        .merge(super::search::routes())
        .merge(super::admin::routes())
}

/// The API routes, without their document (which [`crate::openapi::document_json`] serves).
pub fn routes() -> Router<Arc<App>> {
    let (router, _document) = api().split_for_parts();
    router
}

#[cfg(test)]
mod tests;
