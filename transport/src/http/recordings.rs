//! The recordings API over HTTP: administrators list, read, download and erase a tenant's call
//! recordings (the audit log the erases write is read in `admin`); recorders store a
//! recording's media and report its quality.
//!
//! Access is by the token's `roles` claim (the `Admin` and `Recorder` extractors): `admin` for
//! everything here, `recorder` for the two recorder endpoints. Everything is scoped by the token's tenant. The media upload
//! is the one body in the API that can be large: it has its own limit
//! (`limits.max_recording_bytes`, checked against `Content-Length` before anything is read and
//! again while the body streams), and the global body limit does not apply to it. Its body is
//! never read whole: every check that can refuse the upload runs first, and then the object
//! store pulls the body chunk by chunk as it writes (`BodySource`). A node serves at most
//! `limits.max_concurrent_recording_transfers` uploads and downloads at once. Uploads hold a few
//! MiB each whatever their size; a download streams from the object store one chunk at a time,
//! with ranges and conditional requests as media downloads have them (`object_download`).
//! The rules (what an erase removes and in which order, what a second upload gets) live in
//! [`switchboard_actors::system`]; this module only parses, checks roles and renders.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, RecordingId};
use switchboard_engine::recording::{
    RecordingFilter, RecordingQuality, RecordingRecord, StoredObject, validate_content_type,
};
use switchboard_engine::time::Timestamp;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::App;
use crate::wire_error::{ErrorBody, WireError};

use super::admin::AuditBody;
use super::body_source::BodySource;
use super::documented_errors::{AdminRoleRequired, RecorderRoleRequired, TokenRefused};
use super::extract::{Admin, Recorder, page_limit, parse_body, parse_query};
use super::object_download::{requested_bytes, streamed_body};

/// The recordings routes: the media upload has its own limit, enforced while the body streams,
/// so the global body limit is lifted for that path.
pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    let (schemas, paths, media) = routes!(download_media, upload_media);
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(get_recording, erase_recording))
        .routes((schemas, paths, media.layer(DefaultBodyLimit::disable())))
        .routes(routes!(report_quality))
}

fn recording_id(text: &str) -> Result<RecordingId, WireError> {
    RecordingId::parse(text).map_err(WireError::from)
}

/// One consent to a recording.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConsentBody<'a> {
    /// Who consented.
    user_id: &'a str,
    /// When, in Unix milliseconds.
    at: u64,
}

/// Where a recording's media is stored.
#[derive(Serialize, ToSchema)]
pub(crate) struct StoredObjectBody<'a> {
    /// The object store's kind: `filesystem`, `s3` or `memory`.
    backend: &'a str,
    /// The object's full location (`s3://bucket/key`, `file:path`).
    location: &'a str,
    /// Its size in bytes.
    bytes: u64,
    /// Its media type.
    content_type: &'a str,
    /// The lowercase hex SHA-256 of its bytes.
    sha256: &'a str,
    /// When it was stored, in Unix milliseconds.
    stored_at: u64,
}

impl<'a> StoredObjectBody<'a> {
    fn new(object: &'a StoredObject) -> Self {
        Self {
            backend: &object.backend,
            location: &object.location,
            bytes: object.bytes,
            content_type: &object.content_type,
            sha256: &object.sha256,
            stored_at: object.stored_at.as_millis(),
        }
    }
}

/// What the recorder measured of a recording (each figure optional).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QualityBody {
    /// Length of the recorded media, in milliseconds.
    media_duration_ms: Option<u64>,
    /// Average bitrate, in kilobits per second.
    average_bitrate_kbps: Option<u32>,
    /// Fraction of packets lost, from 0 to 1.
    packet_loss_ratio: Option<f64>,
    /// Mean interarrival jitter, in milliseconds.
    jitter_ms: Option<u32>,
    /// Video frames dropped.
    frames_dropped: Option<u64>,
    /// Video resolution as `WIDTHxHEIGHT`.
    resolution: Option<String>,
    /// When the server received the report, in Unix milliseconds (set by the server; ignored
    /// in a request).
    #[serde(default, skip_deserializing)]
    reported_at: u64,
}

/// Everything kept about a recording.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecordingBody<'a> {
    /// The recording's ULID.
    recording_id: String,
    /// The call's ULID.
    call_id: String,
    /// The conversation's ULID.
    conversation_id: String,
    /// Who asked for the recording.
    requested_by: &'a str,
    /// Everyone recorded (each consented).
    participants: Vec<&'a str>,
    /// Each consent with its time, late joiners last.
    consents: Vec<ConsentBody<'a>>,
    /// When it started (everyone had consented), in Unix milliseconds.
    started_at: u64,
    /// When it stopped, once it has.
    stopped_at: Option<u64>,
    /// Why it stopped: `stopped`, `call_ended`, `consent_timeout` (a late joiner did not
    /// consent), `refused` (a late joiner refused).
    end_reason: Option<&'static str>,
    /// Who stopped it, when a participant did.
    stopped_by: Option<&'a str>,
    /// Where the recorder stored the media, once it has.
    object: Option<StoredObjectBody<'a>>,
    /// What the recorder measured, once it reported.
    quality: Option<QualityBody>,
}

impl<'a> RecordingBody<'a> {
    fn new(record: &'a RecordingRecord) -> Self {
        Self {
            recording_id: record.recording_id.to_string(),
            call_id: record.call_id.to_string(),
            conversation_id: record.conversation_id.to_string(),
            requested_by: record.requested_by.as_str(),
            participants: record
                .participants
                .iter()
                .map(|user| user.as_str())
                .collect(),
            consents: record
                .consents
                .iter()
                .map(|consent| ConsentBody {
                    user_id: consent.user_id.as_str(),
                    at: consent.at.as_millis(),
                })
                .collect(),
            started_at: record.started_at.as_millis(),
            stopped_at: record.stopped_at.map(Timestamp::as_millis),
            end_reason: record.end_reason.map(|reason| reason.as_str()),
            stopped_by: record.stopped_by.as_ref().map(|user| user.as_str()),
            object: record.object.as_ref().map(StoredObjectBody::new),
            quality: record.quality.as_ref().map(|quality| QualityBody {
                media_duration_ms: quality.media_duration_ms,
                average_bitrate_kbps: quality.average_bitrate_kbps,
                packet_loss_ratio: quality.packet_loss_ratio,
                jitter_ms: quality.jitter_ms,
                frames_dropped: quality.frames_dropped,
                resolution: quality.resolution.clone(),
                reported_at: quality.reported_at.as_millis(),
            }),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordingsQuery {
    /// Only this conversation's recordings (its ULID).
    conversation_id: Option<String>,
    /// Recordings older than this one (a previous page's `next_before`).
    before: Option<String>,
    /// Page size, as for history.
    limit: Option<usize>,
}

/// A page of recordings, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct RecordingsPageBody<'a> {
    /// The recordings.
    items: Vec<RecordingBody<'a>>,
    /// Pass as `before` for the next page; absent on the last page.
    next_before: Option<String>,
}

/// List the tenant's recordings.
///
/// Admin role. Newest first; filter by conversation.
#[utoipa::path(get, path = "/v1/recordings", tag = "recordings",
    params(RecordingsQuery),
    responses(
        (status = 200, description = "A page of recordings.", body = RecordingsPageBody<'_>),
        (status = 400, description = "Bad id, limit or unknown parameter (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 503, description = "The recording store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn list_recordings(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    query: Result<Query<RecordingsQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let query = parse_query(query)?;
    let limit = page_limit(&app, query.limit)?;
    let filter = RecordingFilter {
        conversation_id: query
            .conversation_id
            .as_deref()
            .map(ConversationId::parse)
            .transpose()?,
    };
    let before = query.before.as_deref().map(recording_id).transpose()?;
    let page = app
        .system
        .recordings(&identity, filter, before, limit)
        .await?;
    Ok(Json(RecordingsPageBody {
        items: page.recordings.iter().map(RecordingBody::new).collect(),
        next_before: page.next.map(|id| id.to_string()),
    })
    .into_response())
}

/// Get a recording.
///
/// Admin role. Its participants, every consent with its time, start and stop, where the media
/// is stored and what the recorder measured.
#[utoipa::path(get, path = "/v1/recordings/{recording_id}", tag = "recordings",
    params(("recording_id" = String, Path, description = "The recording's ULID.")),
    responses(
        (status = 200, description = "The recording.", body = RecordingBody<'_>),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 404, description = "No such recording in the caller's tenant, or erased (`not_found`).", body = ErrorBody),
        (status = 503, description = "The recording store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn get_recording(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    Path(recording_id_text): Path<String>,
) -> Result<Response, WireError> {
    let record = app
        .system
        .recording(&identity, recording_id(&recording_id_text)?)
        .await?;
    Ok(Json(RecordingBody::new(&record)).into_response())
}

/// Erase a recording (GDPR).
///
/// Admin role. Deletes the media object, then the metadata (consents, participants, quality)
/// together with an audit record that names only ids: the administrator, the recording, its
/// call and conversation. The conversation's joined sessions get `recording.erased`. A failed
/// erase (`unavailable`) can be repeated; what it already erased stays erased.
#[utoipa::path(delete, path = "/v1/recordings/{recording_id}", tag = "recordings",
    params(("recording_id" = String, Path, description = "The recording's ULID.")),
    responses(
        (status = 200, description = "Erased; the audit record.", body = AuditBody<'_>),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 404, description = "No such recording in the caller's tenant, or already erased (`not_found`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable (`unavailable`); repeat the erase.", body = ErrorBody),
    ))]
pub(crate) async fn erase_recording(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    Path(recording_id_text): Path<String>,
) -> Result<Response, WireError> {
    let audit = app
        .system
        .erase_recording(&identity, recording_id(&recording_id_text)?)
        .await?;
    Ok(Json(AuditBody::new(&audit)).into_response())
}

/// A permit to transfer one recording's media (an upload streams through the node, a download
/// is held in memory while it is sent), or `unavailable` when every permit is taken
/// (`limits.max_concurrent_recording_transfers`).
fn transfer_permit(app: &App) -> Result<tokio::sync::OwnedSemaphorePermit, WireError> {
    Arc::clone(&app.recording_transfers)
        .try_acquire_owned()
        .map_err(|_| {
            WireError::from(Error::unavailable(
                "too many recording uploads and downloads are in progress on this node; retry",
            ))
        })
}

/// Download a recording's media.
///
/// Admin role. The bytes as the recorder stored them, with their media type, streamed from the
/// object store as the client reads them; the `ETag` is their SHA-256 (`If-None-Match` → 304).
/// One byte range (`Range: bytes=…`) is answered with 206, one that cannot be served with 416;
/// several ranges get the whole media. A node serves
/// `limits.max_concurrent_recording_transfers` uploads and downloads at once (a download holds
/// its permit until its last byte is sent); one more is `unavailable` (retry).
#[utoipa::path(get, path = "/v1/recordings/{recording_id}/media", tag = "recordings",
    params(("recording_id" = String, Path, description = "The recording's ULID.")),
    responses(
        (status = 200, description = "The media.", content_type = "application/octet-stream"),
        (status = 206, description = "One range of it.", content_type = "application/octet-stream"),
        (status = 304, description = "Not modified (`If-None-Match` names its tag)."),
        (status = 400, description = "Bad id (`invalid`).", body = ErrorBody),
        TokenRefused,
        AdminRoleRequired,
        (status = 404, description = "No such recording, or no media stored yet (`not_found`).", body = ErrorBody),
        (status = 416, description = "The range cannot be served (`range_not_satisfiable`).", body = ErrorBody),
        (status = 503, description = "A store is unavailable, or too many uploads and downloads are in progress on this node (`unavailable`); retry.", body = ErrorBody),
    ))]
pub(crate) async fn download_media(
    State(app): State<Arc<App>>,
    Admin(identity): Admin,
    Path(recording_id_text): Path<String>,
    headers: http::HeaderMap,
) -> Result<Response, WireError> {
    let id = recording_id(&recording_id_text)?;
    let permit = transfer_permit(&app)?;
    let object = app
        .system
        .recording(&identity, id)
        .await?
        .object
        .ok_or(Error::NotFound)?;
    let etag = format!("\"{}\"", object.sha256);
    let requested = match requested_bytes(&headers, &etag, object.bytes) {
        Ok(requested) => requested,
        Err(answered) => return Ok(*answered),
    };
    let (object, opened) = app
        .system
        .recording_media(&identity, id, requested.range)
        .await?;
    let mut response = Response::new(streamed_body(opened.bytes, permit));
    *response.status_mut() = requested.status;
    let response_headers = response.headers_mut();
    let mut set = |name, value: String| {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            response_headers.insert(name, value);
        }
    };
    set(http::header::CONTENT_TYPE, opened.content_type);
    set(
        http::header::CONTENT_LENGTH,
        (opened.end - opened.start).to_string(),
    );
    set(http::header::ETAG, format!("\"{}\"", object.sha256));
    set(http::header::ACCEPT_RANGES, "bytes".to_owned());
    if let Some(content_range) = requested.content_range {
        set(http::header::CONTENT_RANGE, content_range);
    }
    Ok(response)
}

/// Store a recording's media.
///
/// Recorder or admin role. The body is the media itself, with its `Content-Type`; at most
/// `limits.max_recording_bytes`. Everything that can refuse the upload is checked before a
/// byte of the body is read: the token and its role, the id, the `Content-Type`, a declared
/// `Content-Length` against the limit, a free transfer permit, that no other upload of the
/// recording is in progress on this node, that the recording exists and that it has no media
/// yet. A refused upload is answered at once without reading the body (a client that sends
/// `Expect: 100-continue` never sends it). An accepted body streams to the object store as it
/// arrives, so a node holds a few MiB per upload whatever its size; a body that goes past the
/// limit (or past its own `Content-Length`) is refused as soon as it does, and nothing of it is
/// kept. A recording has one media object: a second upload is `conflict`. A node serves
/// `limits.max_concurrent_recording_transfers` uploads and downloads at once; one more is
/// `unavailable` (retry). The conversation's joined sessions get `recording.media_stored`.
#[utoipa::path(put, path = "/v1/recordings/{recording_id}/media", tag = "recordings",
    params(("recording_id" = String, Path, description = "The recording's ULID.")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The media (any media type, named by Content-Type)."),
    responses(
        (status = 201, description = "Stored; the recording with its object.", body = RecordingBody<'_>),
        (status = 400, description = "Bad id, a missing or malformed Content-Type, or a body that ended before its Content-Length, broke off, sent nothing for 60 s, or averaged under 16 KiB/s after its first minute (`invalid`).", body = ErrorBody),
        TokenRefused,
        RecorderRoleRequired,
        (status = 404, description = "No such recording, or erased during the upload (`not_found`).", body = ErrorBody),
        (status = 409, description = "The media is already stored or being uploaded (`conflict`).", body = ErrorBody),
        (status = 413, description = "The declared Content-Length or the body is over `limits.max_recording_bytes`, or the body is longer than its Content-Length (`too_large`; `details.actual` is the declared length, or the bytes received when the body was cut off).", body = ErrorBody),
        (status = 503, description = "A store is unavailable, or too many uploads and downloads are in progress on this node (`unavailable`); retry.", body = ErrorBody),
    ))]
pub(crate) async fn upload_media(
    State(app): State<Arc<App>>,
    Recorder(identity): Recorder,
    Path(recording_id_text): Path<String>,
    headers: http::HeaderMap,
    body: Body,
) -> Result<Response, WireError> {
    let id = recording_id(&recording_id_text)?;
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            WireError::from(Error::invalid(
                "content_type",
                "a Content-Type header naming the media type is required",
            ))
        })?
        .to_owned();
    validate_content_type(&content_type)?;
    let limit = app.http.max_recording_bytes;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limit_bytes = u64::try_from(limit).unwrap_or(u64::MAX);
    if let Some(declared) = declared
        && declared > limit_bytes
    {
        return Err(WireError::from(Error::TooLarge {
            what: "media".into(),
            limit,
            actual: usize::try_from(declared).unwrap_or(usize::MAX),
        }));
    }
    // The permits bound how many bodies stream through this node at once.
    let _permit = transfer_permit(&app)?;
    let mut media = BodySource::new(body, declared);
    // The system checks the recording and the claim before it pulls the first chunk; a body
    // longer than it said is cut off at its declared length.
    let record = app
        .system
        .store_recording_media(
            &identity,
            id,
            content_type,
            &mut media,
            declared.unwrap_or(limit_bytes),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(RecordingBody::new(&record))).into_response())
}

/// Report a recording's quality.
///
/// Recorder or admin role. The latest report replaces earlier ones.
#[utoipa::path(put, path = "/v1/recordings/{recording_id}/quality", tag = "recordings",
    params(("recording_id" = String, Path, description = "The recording's ULID.")),
    request_body = QualityBody,
    responses(
        (status = 200, description = "Recorded; the recording.", body = RecordingBody<'_>),
        (status = 400, description = "Bad id, unknown field or a figure out of range (`invalid`).", body = ErrorBody),
        TokenRefused,
        RecorderRoleRequired,
        (status = 404, description = "No such recording (`not_found`).", body = ErrorBody),
        (status = 413, description = "The body is over `limits.max_body_bytes` (`too_large`).", body = ErrorBody),
        (status = 503, description = "The recording store is unavailable (`unavailable`).", body = ErrorBody),
    ))]
pub(crate) async fn report_quality(
    State(app): State<Arc<App>>,
    Recorder(identity): Recorder,
    Path(recording_id_text): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let id = recording_id(&recording_id_text)?;
    let body: QualityBody = parse_body(&app, body)?;
    let quality = RecordingQuality {
        media_duration_ms: body.media_duration_ms,
        average_bitrate_kbps: body.average_bitrate_kbps,
        packet_loss_ratio: body.packet_loss_ratio,
        jitter_ms: body.jitter_ms,
        frames_dropped: body.frames_dropped,
        resolution: body.resolution,
        reported_at: Timestamp::default(),
    };
    let record = app
        .system
        .report_recording_quality(&identity, id, quality)
        .await?;
    Ok(Json(RecordingBody::new(&record)).into_response())
}
