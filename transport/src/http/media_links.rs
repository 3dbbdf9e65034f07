//! Signed media links: `POST /v1/media/{id}/links` makes one for media the caller may read;
//! `GET /v1/media/{id}/content` with its query serves the bytes without a token, as
//! `GET /v1/media/{id}` does (ranges, `ETag`), until the link expires. The signing is
//! `crate::link_signing`'s.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use switchboard_engine::Error;
use switchboard_engine::ids::{MediaId, TenantId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::link_signing::SignedLink;
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::documented_errors::TokenRefused;
use super::extract::{Authenticated, parse_body, parse_query};
use super::media::{disposition_of, serve_media};
use super::media_thumbnails::serve_thumbnail;

/// The link routes.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(create_link))
        .routes(routes!(linked_media))
}

fn media_id(text: &str) -> Result<MediaId, WireError> {
    MediaId::parse(text).map_err(WireError::from)
}

/// What a new link should allow.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewLinkBody {
    /// How long it works, in seconds (default `media.link_ttl_secs`, at most
    /// `media.link_max_ttl_secs`).
    ttl_secs: Option<u64>,
}

/// A signed link.
#[derive(Serialize, ToSchema)]
pub(crate) struct LinkBody {
    /// The path and query to fetch without a token (relative to this server).
    url: String,
    /// When it stops working, in Unix milliseconds.
    expires_at: u64,
}

/// Make a signed link.
///
/// For media the caller may read: a URL that serves it without a token (for `<img>`,
/// `<video>`, players) until it expires.
#[utoipa::path(post, path = "/v1/media/{media_id}/links", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID.")),
    request_body(content = NewLinkBody, description = "Optional."),
    responses(
        (status = 201, description = "The link.", body = LinkBody),
        (status = 400, description = "Bad id, unknown field, or a ttl of 0 or over `media.link_max_ttl_secs` (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such complete media the caller may read (`not_found`).", body = ErrorBody),
        (status = 503, description = "The media store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn create_link(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let request: NewLinkBody = match body {
        Ok(bytes) if bytes.is_empty() => NewLinkBody::default(),
        body => parse_body(&app, body)?,
    };
    let media_id = media_id(&media_id_text)?;
    let record = app.media.record(&identity, media_id).await?;
    if !record.is_complete() {
        return Err(WireError::from(Error::NotFound));
    }
    let settings = &app.media_links;
    let ttl_secs = request.ttl_secs.unwrap_or(settings.default_ttl_secs);
    if ttl_secs == 0 || ttl_secs > settings.max_ttl_secs {
        return Err(WireError::from(Error::invalid(
            "ttl_secs",
            format!("must be 1 to {} seconds", settings.max_ttl_secs),
        )));
    }
    let expires = app.clock.now().as_secs() + ttl_secs;
    let link = app.media_links.sign(&identity.tenant_id, media_id, expires);
    let url = format!(
        "/v1/media/{media_id}/content?tenant={}&expires={}&key={}&signature={}",
        link.tenant_id, link.expires, link.key, link.signature
    );
    Ok((
        StatusCode::CREATED,
        Json(LinkBody {
            url,
            expires_at: expires * 1000,
        }),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkQuery {
    /// The tenant.
    tenant: String,
    /// When the link stops working, in Unix seconds.
    expires: u64,
    /// The signing key's id.
    key: String,
    /// The signature.
    signature: String,
    /// Serve this thumbnail (by its size, as `GET /v1/media/{media_id}/thumbnail?size=`)
    /// instead of the file: a link to media is a link to its thumbnails too.
    thumbnail: Option<u32>,
}

/// Download media through a signed link.
///
/// No token: the link's query is the permission. Answers as `GET /v1/media/{media_id}` does
/// (ranges, `ETag`, `If-None-Match`), or with `thumbnail=<size>` as
/// `GET /v1/media/{media_id}/thumbnail` does. A changed, expired or other tenant's link is
/// `forbidden`.
#[utoipa::path(get, path = "/v1/media/{media_id}/content", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID."), LinkQuery),
    responses(
        (status = 200, description = "The whole file.", content_type = "application/octet-stream"),
        (status = 206, description = "One range of it.", content_type = "application/octet-stream"),
        (status = 302, description = "With `media.redirect_links_to_object_store` and S3 objects: the file is at the presigned S3 URL in `Location`, which works until the link expires and answers ranges itself."),
        (status = 304, description = "Not modified."),
        (status = 400, description = "Bad id or a missing or malformed link parameter (`invalid`).", body = ErrorBody),
        (status = 403, description = "The link was changed, has expired, or its key is unknown (`forbidden`).", body = ErrorBody),
        (status = 404, description = "The media is gone (`not_found`).", body = ErrorBody),
        (status = 416, description = "The range cannot be served (`range_not_satisfiable`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn linked_media(
    State(app): State<Arc<App>>,
    Path(media_id_text): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let media_id = media_id(&media_id_text)?;
    let link = SignedLink {
        tenant_id: TenantId::parse(&query.tenant)?,
        expires: query.expires,
        key: query.key,
        signature: query.signature,
    };
    let now_secs = app.clock.now().as_secs();
    app.media_links
        .verify(&link, media_id, now_secs)
        .map_err(|refusal| {
            WireError::from(Error::Forbidden {
                reason: refusal.to_string().into(),
            })
        })?;
    let record = app.media.complete_record(&link.tenant_id, media_id).await?;
    if let Some(size) = query.thumbnail {
        return serve_thumbnail(&app, &link.tenant_id, &record, Some(size), &headers).await;
    }
    let valid_for = Duration::from_secs(link.expires.saturating_sub(now_secs).max(1));
    let direct = record.media_type.as_ref().and_then(|media_type| {
        app.media.direct_read_url(
            &link.tenant_id,
            &record,
            valid_for,
            disposition_of(media_type),
        )
    });
    match direct {
        Some(url) => Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, "private, no-store".to_owned()),
            ],
        )
            .into_response()),
        None => serve_media(&app, &link.tenant_id, &record, &headers).await,
    }
}
