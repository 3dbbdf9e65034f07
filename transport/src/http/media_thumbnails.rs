//! Thumbnails: `GET /v1/media/{id}/thumbnail?size=` serves one of an image's thumbnails to
//! whoever may read the image (signed links serve them too, with `&thumbnail=`). Thumbnails
//! are made after the upload completed, off the request path (the thumbnailer actor); one
//! asked for before it exists answers 404 and, if the image still awaits its thumbnails, asks
//! the thumbnailer again, so a request lost to a restart is made up for by the next reader.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use switchboard_engine::Error;
use switchboard_engine::ids::{MediaId, TenantId};
use switchboard_engine::media::MediaRecord;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireCode, WireError};

use super::documented_errors::TokenRefused;
use super::extract::{Authenticated, parse_query};
use super::object_download::matches_tag;

/// The thumbnail route.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(media_thumbnail))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThumbnailQuery {
    /// Which thumbnail, by its longest edge in pixels (a `size` the record lists); the
    /// smallest when left out.
    size: Option<u32>,
}

/// Download a thumbnail.
///
/// For anyone who may read the media (as `GET /v1/media/{media_id}`). Answers the whole
/// thumbnail with its `Content-Type` (`image/jpeg`, or `image/webp` for an image with
/// transparency), an `ETag`, and 304 for `If-None-Match` with that tag. A thumbnail not made
/// (yet) is 404: the record (`GET /v1/media/{media_id}/info`) lists the sizes made, or why
/// none were.
#[utoipa::path(get, path = "/v1/media/{media_id}/thumbnail", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID."), ThumbnailQuery),
    responses(
        (status = 200, description = "The thumbnail.", content_type = "image/jpeg"),
        (status = 304, description = "Not modified (`If-None-Match` names its tag)."),
        (status = 400, description = "Bad id or size (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such media the caller may read, or no thumbnail of that size (yet) (`not_found`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn media_thumbnail(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let media_id = MediaId::parse(&media_id_text)?;
    let record = app.media.record(&identity, media_id).await?;
    serve_thumbnail(&app, &identity.tenant_id, &record, query.size, &headers).await
}

/// Serves one thumbnail of `record` (the smallest when `size` is `None`) to a caller whose
/// permission was checked.
pub(super) async fn serve_thumbnail(
    app: &App,
    tenant_id: &TenantId,
    record: &MediaRecord,
    size: Option<u32>,
    headers: &HeaderMap,
) -> Result<Response, WireError> {
    let chosen = match size {
        Some(size) => record
            .thumbnails
            .iter()
            .find(|thumbnail| thumbnail.size == size),
        None => record
            .thumbnails
            .iter()
            .min_by_key(|thumbnail| thumbnail.size),
    };
    let Some(thumbnail) = chosen else {
        let message = if app.media.request_thumbnails(tenant_id, record) {
            "the thumbnails are being made; ask again shortly".to_owned()
        } else if record.thumbnails.is_empty() {
            "this media has no thumbnails".to_owned()
        } else {
            let sizes: Vec<String> = record
                .thumbnails
                .iter()
                .map(|thumbnail| thumbnail.size.to_string())
                .collect();
            format!("no thumbnail of that size; there are {}", sizes.join(", "))
        };
        return Err(WireError::new(WireCode::NotFound, message));
    };
    let etag = format!(
        "\"{}-{}\"",
        record.sha256.as_deref().unwrap_or_default(),
        thumbnail.size
    );
    if matches_tag(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let bytes = app
        .media
        .thumbnail_bytes(tenant_id, record, thumbnail)
        .await
        .map_err(WireError::from)?;
    let mut response = Response::new(axum::body::Body::from(bytes));
    let response_headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, thumbnail.mime.clone()),
        (header::ETAG, etag),
        (header::CONTENT_DISPOSITION, "inline".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (
            header::CACHE_CONTROL,
            "private, max-age=0, must-revalidate".to_owned(),
        ),
    ] {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| WireError::from(Error::unavailable("could not build a header")))?;
        response_headers.insert(name, value);
    }
    Ok(response)
}
