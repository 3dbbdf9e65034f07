//! Media: upload a file, read its record, download it (ranges, conditional requests) and
//! delete it. The rules are the media service's (`switchboard_actors::media`) and the engine's
//! (`switchboard_engine::media`); this module turns HTTP into them and back.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use switchboard_actors::media::NewUpload;
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, MediaId, TenantId};
use switchboard_engine::media::{Disposition, MediaFamily, MediaRecord, MediaState, MediaType};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::codec::DimensionsBody;
use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::body_source::BodySource;
use super::documented_errors::TokenRefused;
use super::extract::{Authenticated, CallerWithRoles, parse_query};
use super::form_source::read_form;
use super::object_download::{requested_bytes, streamed_body};
use crate::codec::requests::required;

/// The media routes; the upload has its own limit (`media.max_file_bytes`), enforced while the
/// body streams, so the global body limit is lifted for it.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    let (schemas, paths, upload) = routes!(upload_media);
    OpenApiRouter::new()
        .routes((schemas, paths, upload.layer(DefaultBodyLimit::disable())))
        .routes(routes!(download_media, delete_media))
        .routes(routes!(media_info))
}

fn media_id(text: &str) -> Result<MediaId, WireError> {
    MediaId::parse(text).map_err(WireError::from)
}

/// A media record as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct MediaBody<'a> {
    /// Its id.
    media_id: String,
    /// Who uploaded it.
    uploader_id: &'a str,
    /// Its file name.
    file_name: &'a str,
    /// The conversation it was uploaded for.
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<String>,
    /// Its length in bytes.
    size_bytes: u64,
    /// The bytes stored so far.
    received_bytes: u64,
    /// Its MIME type, read from its bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    /// `image`, `audio`, `video`, `document`, `text`, `archive` or `other`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    family: Option<MediaFamily>,
    /// The SHA-256 of its bytes, lowercase hex (also its `ETag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    /// `uploading` or `complete`.
    state: &'static str,
    /// When the upload began, in Unix milliseconds.
    created_at: u64,
    /// When the last byte arrived, in Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<u64>,
    /// Width and height, for an image once the thumbnailer measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<DimensionsBody>,
    /// Its thumbnails (`GET /v1/media/{media_id}/thumbnail?size=`), smallest first, once made:
    /// JPEG and PNG, GIF and WebP images get one per `media.thumbnail_sizes` entry smaller than
    /// the image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    thumbnails: Vec<ThumbnailBody<'a>>,
    /// Why the image got no thumbnails (corrupt, or over `media.thumbnail_max_pixels`).
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail_failure: Option<&'a str>,
}

/// One thumbnail of a media item.
#[derive(Serialize, ToSchema)]
pub(crate) struct ThumbnailBody<'a> {
    /// The longest edge it was made for, in pixels: its `size` in the thumbnail URL.
    size: u32,
    /// Its width and height.
    dimensions: DimensionsBody,
    /// `image/jpeg`, or `image/webp` for an image with transparency.
    content_type: &'a str,
    /// Its length in bytes.
    size_bytes: u64,
}

impl<'a> MediaBody<'a> {
    pub(crate) fn new(record: &'a MediaRecord) -> Self {
        let (state, completed_at) = match record.state {
            MediaState::Uploading { .. } => ("uploading", None),
            MediaState::Complete { completed_at } | MediaState::Assembled { completed_at, .. } => {
                ("complete", Some(completed_at.as_millis()))
            }
            MediaState::Deleted { .. } => ("deleted", None),
        };
        Self {
            media_id: record.media_id.to_string(),
            uploader_id: record.uploader.as_str(),
            file_name: record.file_name.as_str(),
            conversation_id: record.conversation_id.map(|id| id.to_string()),
            size_bytes: record.size_bytes,
            received_bytes: record.received_bytes(),
            content_type: record
                .media_type
                .as_ref()
                .map(|media_type| media_type.mime.as_str()),
            family: record
                .media_type
                .as_ref()
                .map(|media_type| media_type.family),
            sha256: record.sha256.as_deref(),
            state,
            created_at: record.created_at.as_millis(),
            completed_at,
            dimensions: record.dimensions.map(DimensionsBody::new),
            thumbnails: record
                .thumbnails
                .iter()
                .map(|thumbnail| ThumbnailBody {
                    size: thumbnail.size,
                    dimensions: DimensionsBody::new(thumbnail.dimensions),
                    content_type: &thumbnail.mime,
                    size_bytes: thumbnail.bytes,
                })
                .collect(),
            thumbnail_failure: record.thumbnail_failure.as_deref(),
        }
    }
}

/// A form upload, as a browser sends it.
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the form; the fields are read from the stream.
pub(crate) struct UploadForm {
    /// The file's name (else the file part's own file name).
    file_name: Option<String>,
    /// The conversation it is for.
    conversation_id: Option<String>,
    /// The file, after the other fields.
    #[schema(content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadQuery {
    /// The file's name: 1 to 255 bytes, no path, no control characters. Required with a raw
    /// body; a form may give it in a `file_name` field or as its file part's file name.
    file_name: Option<String>,
    /// The conversation it is for (the uploader must be a member).
    conversation_id: Option<String>,
}

/// Upload a file.
///
/// The body is the file itself, with its `Content-Length` (required, also with chunked
/// transfer, for the quota check; none at all is an empty file), or a `multipart/form-data`
/// form (a browser's `<form>` or `FormData`): optional `file_name` and `conversation_id` text
/// fields, then the file part (the first part with a file name, or the part named `file`);
/// parts after it are not read. A form's `Content-Length` is what the size limit and the
/// quotas are checked against, and the media's size is its file's. Checked before a byte
/// is read: the token, the file name, the length against `media.max_file_bytes`, the
/// conversation (when named), and the user's and the tenant's quotas. Then the first 64 KiB
/// are read and the type is sniffed from them (the `Content-Type` header is ignored); a type
/// the tenant does not accept, or a file name whose extension claims another type, is refused
/// before the rest is read. The rest streams to the object store, hashed on the way. Nothing is
/// kept of a refused or broken upload.
#[utoipa::path(post, path = "/v1/media", tag = "media",
    params(UploadQuery),
    request_body(description = "The file, raw or in a form.", content(
        (Vec<u8> = "application/octet-stream"),
        (UploadForm = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Stored; the media record.", body = MediaBody<'_>),
        (status = 400, description = "A bad or missing file name or conversation id, no Content-Length, a body that ended before its Content-Length, broke off or stalled, or a malformed form or one without a file part (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 403, description = "The uploader is not a member of the named conversation (`not_member`).", body = ErrorBody),
        (status = 404, description = "No such conversation (`not_found`).", body = ErrorBody),
        (status = 413, description = "Over `media.max_file_bytes`, or longer than its Content-Length (`too_large`), or over a storage quota (`quota_exceeded`, naming the quota and what is left).", body = ErrorBody),
        (status = 415, description = "A media type the tenant does not accept, or a file name claiming another type (`unsupported_media_type`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`); retry.", body = ErrorBody),
    ))]
pub(crate) async fn upload_media(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    // A request with neither a Content-Length nor a Transfer-Encoding has an empty body
    // (RFC 9112 §6.3); a chunked one must say its length anyway, for the quota check.
    let declared_bytes = match headers.get(header::CONTENT_LENGTH) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|value| value.parse::<u64>().ok()),
        None if headers.contains_key(header::TRANSFER_ENCODING) => None,
        None => Some(0),
    }
    .ok_or_else(|| {
        WireError::from(Error::invalid(
            "content_length",
            "a Content-Length header with the file's length is required",
        ))
    })?;
    let form_boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.trim_start().starts_with("multipart/form-data"))
        .map(|value| {
            multer::parse_boundary(value)
                .map_err(|_| Error::invalid("content_type", "multipart/form-data needs a boundary"))
        })
        .transpose()?;
    let record = match form_boundary {
        None => {
            let mut source = BodySource::new(body, Some(declared_bytes));
            let upload = NewUpload {
                file_name: required(query.file_name, "file_name")?,
                conversation_id: conversation_id(query.conversation_id.as_deref())?,
                declared_bytes,
                length_is_upper_bound: false,
            };
            app.media.upload(&identity, upload, &mut source).await?
        }
        Some(boundary) => {
            let mut form = read_form(body, boundary).await?;
            let upload = NewUpload {
                file_name: required(query.file_name.or(form.file_name), "file_name")?,
                conversation_id: conversation_id(
                    query.conversation_id.or(form.conversation_id).as_deref(),
                )?,
                declared_bytes,
                length_is_upper_bound: true,
            };
            app.media.upload(&identity, upload, &mut form.file).await?
        }
    };
    Ok((StatusCode::CREATED, Json(MediaBody::new(&record))).into_response())
}

/// Get a media record.
///
/// The uploader reads the record of their media, complete or not; anyone who can read a
/// message that attaches it reads the record of the complete media (the newest attaching
/// messages first: up to 64 of them in the caller's own conversations are read, among up to
/// 1,024 conversations, so copies forwarded elsewhere never hide the caller's). The same rule
/// decides who may download it.
#[utoipa::path(get, path = "/v1/media/{media_id}/info", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID.")),
    responses(
        (status = 200, description = "The record.", body = MediaBody<'_>),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such media the caller may read (`not_found`).", body = ErrorBody),
        (status = 503, description = "The media store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn media_info(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
) -> Result<Response, WireError> {
    let record = app
        .media
        .record(&identity, media_id(&media_id_text)?)
        .await?;
    Ok(Json(MediaBody::new(&record)).into_response())
}

/// Download media.
///
/// Streams the bytes with their sniffed `Content-Type`, a `Content-Disposition` carrying the
/// file name (`inline` for images, audio and video, `attachment` otherwise), `ETag` (the
/// SHA-256 in quotes) and `Accept-Ranges: bytes`. `If-None-Match` with the tag answers 304. A
/// single `Range` (`bytes=a-b`, `bytes=a-`, `bytes=-n`) answers 206 with `Content-Range`; a
/// range that cannot be served (`bytes=-0`, `bytes=5-1`, a start past the end) answers 416
/// with `Content-Range: bytes */<size>`; several ranges, another unit or an `If-Range` that is
/// not the tag get the whole file (200).
#[utoipa::path(get, path = "/v1/media/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID.")),
    responses(
        (status = 200, description = "The whole file.", content_type = "application/octet-stream"),
        (status = 206, description = "One range of it.", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (`If-None-Match` names its tag)."),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such complete media the caller may read (`not_found`).", body = ErrorBody),
        (status = 416, description = "The range cannot be served (`range_not_satisfiable`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn download_media(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WireError> {
    let record = app
        .media
        .record(&identity, media_id(&media_id_text)?)
        .await?;
    serve_media(&app, &identity.tenant_id, &record, &headers).await
}

/// Serves a media item's bytes as `GET /v1/media/{media_id}` documents (also through a signed
/// link): conditional requests, one range, and the headers that make it safe to show.
pub(super) async fn serve_media(
    app: &App,
    tenant_id: &TenantId,
    record: &MediaRecord,
    headers: &HeaderMap,
) -> Result<Response, WireError> {
    let (Some(sha256), Some(media_type)) = (record.sha256.as_deref(), record.media_type.as_ref())
    else {
        return Err(WireError::from(Error::NotFound));
    };
    let etag = format!("\"{sha256}\"");
    let requested = match requested_bytes(headers, &etag, record.size_bytes) {
        Ok(requested) => requested,
        Err(answered) => return Ok(*answered),
    };
    let opened = app
        .media
        .open_object(tenant_id, record, requested.range)
        .await?;
    let (first, end) = (opened.start, opened.end);
    let disposition = disposition_of(media_type);
    let mut response = Response::new(streamed_body(opened.bytes, ()));
    *response.status_mut() = requested.status;
    let response_headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, media_type.mime.clone());
    set(header::CONTENT_LENGTH, (end - first).to_string());
    set(header::ETAG, etag);
    set(header::ACCEPT_RANGES, "bytes".to_owned());
    set(
        header::CONTENT_DISPOSITION,
        record.file_name.content_disposition(disposition),
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned());
    set(
        header::CACHE_CONTROL,
        "private, max-age=0, must-revalidate".to_owned(),
    );
    if let Some(content_range) = requested.content_range {
        set(header::CONTENT_RANGE, content_range);
    }
    Ok(response)
}

/// How a download of this type is shown: in place for images, audio and video, else saved.
pub(super) fn disposition_of(media_type: &MediaType) -> Disposition {
    match media_type.family {
        MediaFamily::Image | MediaFamily::Audio | MediaFamily::Video => Disposition::Inline,
        _ => Disposition::Attachment,
    }
}

/// An optional conversation id.
fn conversation_id(text: Option<&str>) -> Result<Option<ConversationId>, Error> {
    text.map(ConversationId::parse).transpose()
}

/// Delete media.
///
/// Its uploader, or an administrator of the tenant, deletes it: its bytes, thumbnails and
/// record.
#[utoipa::path(delete, path = "/v1/media/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The media's ULID.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such media the caller may delete (`not_found`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`); what was begun is finished by the garbage collector.", body = ErrorBody),
    ))]
pub(crate) async fn delete_media(
    State(app): State<Arc<App>>,
    CallerWithRoles(identity, roles): CallerWithRoles,
    Path(media_id_text): Path<String>,
) -> Result<Response, WireError> {
    app.media
        .delete(&identity, media_id(&media_id_text)?, roles.admin)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
