//! What every download of a stored object shares, whoever owns the object (media, recordings):
//! answering `If-None-Match` and `Range` before the store is touched, and turning the store's
//! pulled [`ByteStream`] into a response body that holds one chunk at a time.
//!
//! The rules for ranges are the engine's ([`answer_range`]); here they become status codes and
//! headers. A body can carry something to keep alive until its last chunk is sent (a transfer
//! permit), so a limit on transfers counts the bytes still being sent, not only the handler.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use switchboard_engine::Error;
use switchboard_engine::blob::{ByteRange, ByteStream};
use switchboard_engine::media::{RangeAnswer, answer_range};

use crate::wire_error::{WireCode, WireError};

/// Which bytes of an object a download sends, once the request's conditions are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RequestedBytes {
    /// 200 for the whole object, 206 for one range.
    pub status: StatusCode,
    /// The bytes to read from the store.
    pub range: ByteRange,
    /// `Content-Range` for a 206.
    pub content_range: Option<String>,
}

/// Reads `If-None-Match`, `Range` and `If-Range` for an object of `size` bytes tagged `etag`
/// (quoted). `Err` is the whole answer when no bytes are sent: 304 when the client has the
/// object, 416 (`range_not_satisfiable`, with `Content-Range: bytes */<size>`) for a range that
/// cannot be served.
pub(super) fn requested_bytes(
    headers: &HeaderMap,
    etag: &str,
    size: u64,
) -> Result<RequestedBytes, Box<Response>> {
    if matches_tag(headers, etag) {
        return Err(Box::new(
            (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.to_owned())]).into_response(),
        ));
    }
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
    };
    match answer_range(
        header_text(header::RANGE),
        header_text(header::IF_RANGE),
        etag,
        size,
    ) {
        RangeAnswer::Whole => Ok(RequestedBytes {
            status: StatusCode::OK,
            range: ByteRange::ALL,
            content_range: None,
        }),
        RangeAnswer::Partial { first, last } => Ok(RequestedBytes {
            status: StatusCode::PARTIAL_CONTENT,
            range: ByteRange::new(first, last + 1),
            content_range: Some(format!("bytes {first}-{last}/{size}")),
        }),
        RangeAnswer::Unsatisfiable => {
            let mut response = WireError::new(
                WireCode::RangeNotSatisfiable,
                format!("the range cannot be served from a file of {size} bytes"),
            )
            .into_response();
            match HeaderValue::from_str(&format!("bytes */{size}")) {
                Ok(value) => {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                Err(_) => {
                    return Err(Box::new(
                        WireError::from(Error::unavailable("could not build Content-Range"))
                            .into_response(),
                    ));
                }
            }
            Err(Box::new(response))
        }
    }
}

/// Whether the request's `If-None-Match` names `etag` (or `*`): the client has it already.
pub(super) fn matches_tag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
}

/// A response body that pulls `stream` one chunk at a time as the client reads, and drops
/// `keep_alive` after the last chunk (or when the client goes away).
pub(super) fn streamed_body<KeepAlive: Send + 'static>(
    stream: Box<dyn ByteStream>,
    keep_alive: KeepAlive,
) -> Body {
    let chunks = futures_util::stream::unfold(Some((stream, keep_alive)), |state| async move {
        let (mut stream, keep_alive) = state?;
        match stream.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some((stream, keep_alive)))),
            Ok(None) => None,
            Err(error) => Some((Err(std::io::Error::other(error.to_string())), None)),
        }
    });
    Body::from_stream(chunks)
}
