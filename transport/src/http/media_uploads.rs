//! Resumable uploads: the tus 1.0 protocol (core, creation, creation-with-upload, termination,
//! expiration, checksum with `sha256`) under `/v1/media/uploads`, so existing tus clients
//! (tus-js-client, Uppy, TUSKit, tuspy) upload media unchanged. The rules are the media
//! service's (`switchboard_actors::media`); this module speaks tus's headers.
//!
//! Every answer carries `Tus-Resumable: 1.0.0`; a request (other than `OPTIONS`) without it, or
//! with another version, gets 412 and `Tus-Version`. Errors keep the API's JSON body and code,
//! with tus's statuses: 409 for a wrong `Upload-Offset` (or another request writing), 460 for a
//! checksum mismatch, 415 for a `PATCH` that is not `application/offset+octet-stream`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use switchboard_actors::media::NewUpload;
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, MediaId};
use switchboard_engine::media::{MediaRecord, MediaState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::body_source::BodySource;
use super::documented_errors::TokenRefused;
use super::extract::Authenticated;
use super::media::MediaBody;

const TUS_VERSION: &str = "1.0.0";
const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

static TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
static TUS_VERSION_HEADER: HeaderName = HeaderName::from_static("tus-version");
static TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
static TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
static TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
static UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
static UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
static UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
static UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
static UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
static UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");

/// The tus routes; uploads have their own limit, so the global body limit is lifted for them.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    let (schemas, paths, create) = routes!(tus_options, create_upload);
    let (item_schemas, item_paths, item) = routes!(
        upload_offset,
        append_to_upload,
        terminate_upload,
        upload_progress
    );
    OpenApiRouter::new()
        .routes((schemas, paths, create.layer(DefaultBodyLimit::disable())))
        .routes((
            item_schemas,
            item_paths,
            item.layer(DefaultBodyLimit::disable()),
        ))
}

/// A tus answer: the status, tus's headers, and the API's JSON error body when it failed
/// (boxed: answers travel in `Result`s, which should stay small).
pub(crate) struct TusAnswer {
    status: StatusCode,
    headers: Box<HeaderMap>,
    error: Option<Box<WireError>>,
}

impl TusAnswer {
    fn new(status: StatusCode) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(TUS_RESUMABLE.clone(), HeaderValue::from_static(TUS_VERSION));
        Self {
            status,
            headers: Box::new(headers),
            error: None,
        }
    }

    fn refused(error: WireError) -> Self {
        let status = match error.code {
            "checksum_mismatch" => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            _ => error.status,
        };
        let mut answer = Self::new(status);
        answer.error = Some(Box::new(error));
        answer
    }

    fn header(mut self, name: &HeaderName, value: impl ToString) -> Self {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            self.headers.insert(name.clone(), value);
        }
        self
    }

    /// The offset, length and expiry of an upload.
    fn progress(self, record: &MediaRecord) -> Self {
        let answer = self
            .header(&UPLOAD_OFFSET, record.received_bytes())
            .header(&UPLOAD_LENGTH, record.size_bytes);
        match record.state {
            MediaState::Uploading { expires_at, .. } => answer.header(
                &UPLOAD_EXPIRES,
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(expires_at.as_millis())),
            ),
            MediaState::Complete { .. }
            | MediaState::Assembled { .. }
            | MediaState::Deleted { .. } => answer,
        }
    }
}

impl IntoResponse for TusAnswer {
    fn into_response(self) -> Response {
        let mut response = match self.error {
            Some(error) => error.into_response(),
            None => Response::new(Body::empty()),
        };
        *response.status_mut() = self.status;
        response.headers_mut().extend(*self.headers);
        response
    }
}

impl From<WireError> for TusAnswer {
    fn from(error: WireError) -> Self {
        Self::refused(error)
    }
}

impl From<Error> for TusAnswer {
    fn from(error: Error) -> Self {
        Self::refused(WireError::from(error))
    }
}

/// 412 unless the request speaks tus 1.0.0.
fn check_tus_resumable(headers: &HeaderMap) -> Result<(), TusAnswer> {
    if headers
        .get(&TUS_RESUMABLE)
        .and_then(|value| value.to_str().ok())
        == Some(TUS_VERSION)
    {
        return Ok(());
    }
    let mut answer = TusAnswer::refused(WireError::from(Error::invalid(
        "tus_resumable",
        "this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0",
    )));
    answer.status = StatusCode::PRECONDITION_FAILED;
    Err(answer.header(&TUS_VERSION_HEADER, TUS_VERSION))
}

/// A header's value as a decimal number of bytes.
fn byte_count(
    headers: &HeaderMap,
    name: &HeaderName,
    field: &'static str,
) -> Result<Option<u64>, Error> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "must be a non-negative whole number of bytes"))
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone has an empty value).
fn metadata(headers: &HeaderMap) -> Result<Vec<(String, String)>, Error> {
    let Some(value) = headers.get(&UPLOAD_METADATA) else {
        return Ok(Vec::new());
    };
    let text = value
        .to_str()
        .map_err(|_| Error::invalid("upload_metadata", "must be ASCII"))?;
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "upload_metadata",
                        format!("the value of {key} is not base64 UTF-8"),
                    )
                })?;
            Ok((key.to_owned(), decoded))
        })
        .collect()
}

/// `Upload-Checksum: sha256 <base64 digest>`.
fn checksum(headers: &HeaderMap) -> Result<Option<[u8; 32]>, Error> {
    let Some(value) = headers.get(&UPLOAD_CHECKSUM) else {
        return Ok(None);
    };
    let refuse = || Error::invalid("upload_checksum", "must be `sha256 <base64 digest>`");
    let text = value.to_str().map_err(|_| refuse())?;
    let (algorithm, digest) = text.split_once(' ').ok_or_else(refuse)?;
    if algorithm != "sha256" {
        return Err(Error::invalid(
            "upload_checksum",
            "the only checksum algorithm is sha256",
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(refuse)
}

fn media_id(text: &str) -> Result<MediaId, Error> {
    MediaId::parse(text)
}

/// What the server supports (tus discovery).
///
/// No token needed. Answers `Tus-Version`, `Tus-Extension`
/// (`creation,creation-with-upload,termination,expiration,checksum`), `Tus-Max-Size`
/// (`media.max_file_bytes`) and `Tus-Checksum-Algorithm: sha256`.
#[utoipa::path(options, path = "/v1/media/uploads", tag = "media",
    responses((status = 204, description = "What the server supports, in headers.")))]
pub(crate) async fn tus_options(State(app): State<Arc<App>>) -> TusAnswer {
    TusAnswer::new(StatusCode::NO_CONTENT)
        .header(&TUS_VERSION_HEADER, TUS_VERSION)
        .header(&TUS_EXTENSION, TUS_EXTENSIONS)
        .header(&TUS_MAX_SIZE, app.media.settings().max_file_bytes)
        .header(&TUS_CHECKSUM_ALGORITHM, "sha256")
}

/// Create a resumable upload (tus `POST`).
///
/// Headers: `Tus-Resumable: 1.0.0`, `Upload-Length` (required; deferred lengths are not
/// supported), `Upload-Metadata` with `filename` (or `name`) and optionally `conversation_id`.
/// Checked at once: the file name, the length against `media.max_file_bytes`, the
/// conversation, and the quotas. Answers 201 with `Location`, `Upload-Offset` and
/// `Upload-Expires`. With a body (`Content-Type: application/offset+octet-stream`,
/// creation-with-upload), its bytes are the first append.
#[utoipa::path(post, path = "/v1/media/uploads", tag = "media",
    responses(
        (status = 201, description = "Created; `Location` names the upload."),
        (status = 400, description = "No or a bad `Upload-Length`, a deferred length, bad metadata or file name (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 403, description = "Not a member of the named conversation (`not_member`).", body = ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`invalid`; `Tus-Version` says what is spoken).", body = ErrorBody),
        (status = 413, description = "Over `media.max_file_bytes` (`too_large`) or a quota (`quota_exceeded`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn create_upload(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Result<TusAnswer, TusAnswer> {
    check_tus_resumable(&headers)?;
    if headers.contains_key(&UPLOAD_DEFER_LENGTH) {
        return Err(Error::invalid(
            "upload_defer_length",
            "give Upload-Length: deferred lengths are not supported",
        )
        .into());
    }
    let declared_bytes = byte_count(&headers, &UPLOAD_LENGTH, "upload_length")?
        .ok_or_else(|| Error::invalid("upload_length", "Upload-Length is required"))?;
    let metadata = metadata(&headers)?;
    let value = |keys: &[&str]| {
        metadata
            .iter()
            .find(|(key, _)| keys.contains(&key.as_str()))
            .map(|(_, value)| value.clone())
    };
    let conversation_id = value(&["conversation_id"])
        .as_deref()
        .map(ConversationId::parse)
        .transpose()?;
    let upload = NewUpload {
        file_name: value(&["filename", "name"]).unwrap_or_else(|| "upload".to_owned()),
        conversation_id,
        declared_bytes,
        length_is_upper_bound: false,
    };
    let mut record = app.media.declare(&identity, upload).await?;
    let with_upload = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        == Some(OFFSET_OCTET_STREAM);
    let declared = byte_count(&headers, &header::CONTENT_LENGTH, "content_length")?;
    if with_upload && declared != Some(0) {
        let mut source = BodySource::new(body, declared);
        record = app
            .media
            .append(
                &identity,
                record.media_id,
                0,
                &mut source,
                checksum(&headers)?,
            )
            .await?;
    }
    Ok(TusAnswer::new(StatusCode::CREATED)
        .header(
            &header::LOCATION,
            format!("/v1/media/uploads/{}", record.media_id),
        )
        .progress(&record))
}

/// Where an upload stands (tus `HEAD`).
///
/// Answers `Upload-Offset` (the bytes stored, from which a client resumes), `Upload-Length`
/// and, while it is unfinished, `Upload-Expires`; never cached.
#[utoipa::path(head, path = "/v1/media/uploads/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The upload's (and media's) ULID.")),
    responses(
        (status = 200, description = "Where it stands, in headers."),
        TokenRefused,
        (status = 404, description = "No such upload of the caller's, or it expired (`not_found`; a HEAD answer has no body)."),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`invalid`; a HEAD answer has no body)."),
    ))]
pub(crate) async fn upload_offset(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    headers: HeaderMap,
) -> Result<TusAnswer, TusAnswer> {
    check_tus_resumable(&headers)?;
    let record = app
        .media
        .progress(&identity, media_id(&media_id_text)?)
        .await?;
    Ok(TusAnswer::new(StatusCode::OK)
        .header(&header::CACHE_CONTROL, "no-store")
        .progress(&record))
}

/// Append to an upload (tus `PATCH`).
///
/// Headers: `Tus-Resumable: 1.0.0`, `Content-Type: application/offset+octet-stream`,
/// `Upload-Offset` (must be the stored offset), optionally `Upload-Checksum: sha256 <base64>`
/// for the body. When the connection breaks, the bytes that arrived are kept (a body with a
/// checksum is kept whole or not at all). The last byte completes the upload: its type is
/// read from its bytes and checked, and the media is then downloadable.
#[utoipa::path(patch, path = "/v1/media/uploads/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The upload's ULID.")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "The next bytes."),
    responses(
        (status = 204, description = "Stored; `Upload-Offset` is the new offset."),
        (status = 400, description = "No or a bad `Upload-Offset` or `Upload-Checksum` (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such upload of the caller's, or it expired (`not_found`).", body = ErrorBody),
        (status = 409, description = "`Upload-Offset` is not the stored offset, another request is writing, or the upload is complete (`conflict`).", body = ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`invalid`).", body = ErrorBody),
        (status = 413, description = "The body goes past `Upload-Length` (`too_large`).", body = ErrorBody),
        (status = 415, description = "Not `application/offset+octet-stream` (`invalid`), or the file's type is not accepted (`unsupported_media_type`; the upload is deleted).", body = ErrorBody),
        (status = 460, description = "The body does not match `Upload-Checksum` (`checksum_mismatch`); nothing of it is kept.", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn append_to_upload(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<TusAnswer, TusAnswer> {
    check_tus_resumable(&headers)?;
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        != Some(OFFSET_OCTET_STREAM)
    {
        let mut answer = TusAnswer::from(Error::invalid(
            "content_type",
            "a PATCH carries Content-Type: application/offset+octet-stream",
        ));
        answer.status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(answer);
    }
    let offset = byte_count(&headers, &UPLOAD_OFFSET, "upload_offset")?
        .ok_or_else(|| Error::invalid("upload_offset", "Upload-Offset is required"))?;
    let sha256 = checksum(&headers)?;
    let declared = byte_count(&headers, &header::CONTENT_LENGTH, "content_length")?;
    let mut source = BodySource::new(body, declared);
    let record = app
        .media
        .append(
            &identity,
            media_id(&media_id_text)?,
            offset,
            &mut source,
            sha256,
        )
        .await?;
    Ok(TusAnswer::new(StatusCode::NO_CONTENT).progress(&record))
}

/// Give up an upload (tus termination).
///
/// Deletes what was stored and the record.
#[utoipa::path(delete, path = "/v1/media/uploads/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The upload's ULID.")),
    responses(
        (status = 204, description = "Deleted."),
        TokenRefused,
        (status = 404, description = "No such upload of the caller's (`not_found`).", body = ErrorBody),
        (status = 412, description = "No `Tus-Resumable: 1.0.0` (`invalid`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn terminate_upload(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
    headers: HeaderMap,
) -> Result<TusAnswer, TusAnswer> {
    check_tus_resumable(&headers)?;
    app.media
        .delete(&identity, media_id(&media_id_text)?, false)
        .await?;
    Ok(TusAnswer::new(StatusCode::NO_CONTENT))
}

/// An upload's progress as JSON.
///
/// The media record: `received_bytes` of `size_bytes`, and its state. Works on any node, and
/// without tus headers.
#[utoipa::path(get, path = "/v1/media/uploads/{media_id}", tag = "media",
    params(("media_id" = String, Path, description = "The upload's ULID.")),
    responses(
        (status = 200, description = "The record.", body = MediaBody<'_>),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        (status = 404, description = "No such upload of the caller's (`not_found`).", body = ErrorBody),
        (status = 503, description = "The media store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn upload_progress(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(media_id_text): Path<String>,
) -> Result<Response, WireError> {
    let record = app
        .media
        .progress(&identity, media_id(&media_id_text)?)
        .await?;
    Ok(axum::Json(MediaBody::new(&record)).into_response())
}
