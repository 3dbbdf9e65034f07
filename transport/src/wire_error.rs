//! The one mapping from typed errors to what clients see: wire codes, HTTP statuses, WebSocket
//! close codes and sanitized messages.
//!
//! Every code listed here is documented in `docs/PROTOCOL.md` (WebSocket) and
//! `docs/openapi.json` (HTTP); a test keeps the two in step with [`ALL_CODES`].

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use switchboard_actors::outbound::CloseReason;
use switchboard_engine::Error;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::codec::ProtocolError;

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The HTTP status (for HTTP responses).
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// A human-readable, sanitized explanation.
    pub message: String,
    /// For `rate_limited`: when to retry.
    pub retry_after_ms: Option<u64>,
    /// For `invalid` and `too_large`: the field and the reason (boxed: errors travel in
    /// `Result`s, which should stay small).
    pub details: Option<Box<ErrorDetails>>,
}

/// Every wire code the server can send, for the documentation test.
pub const ALL_CODES: &[&str] = &[
    "invalid",
    "too_large",
    "not_found",
    "not_member",
    "forbidden",
    "rate_limited",
    "conflict",
    "too_many_connections",
    "unavailable",
    "token_missing",
    "token_malformed",
    "token_algorithm_not_allowed",
    "token_bad_signature",
    "token_expired",
    "token_not_yet_valid",
    "token_unknown_tenant",
    "token_bad_audience",
    "token_invalid_claims",
    "invalid_json",
    "unknown_type",
    "frame_too_large",
    "unsupported_frame",
    "method_not_allowed",
];

impl WireError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        WireError {
            status,
            code,
            message: message.into(),
            retry_after_ms: None,
            details: None,
        }
    }

    /// A 404 for an unknown route.
    pub fn route_not_found() -> Self {
        WireError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    /// A 413 for a request body over the limit.
    pub fn body_too_large(limit: usize) -> Self {
        WireError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// A 405 for a known route with the wrong method.
    pub fn method_not_allowed() -> Self {
        WireError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method",
        )
    }
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Invalid { field, reason } => WireError {
                details: Some(Box::new(ErrorDetails {
                    field: field.clone(),
                    reason: Some(reason.clone()),
                    limit: None,
                    actual: None,
                })),
                ..WireError::new(StatusCode::BAD_REQUEST, "invalid", message)
            },
            Error::TooLarge {
                what,
                limit,
                actual,
            } => WireError {
                details: Some(Box::new(ErrorDetails {
                    field: what.clone(),
                    reason: None,
                    limit: Some(*limit),
                    actual: Some(*actual),
                })),
                ..WireError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            },
            Error::NotFound => WireError::new(StatusCode::NOT_FOUND, "not_found", message),
            Error::NotMember => WireError::new(StatusCode::FORBIDDEN, "not_member", message),
            Error::Forbidden { .. } => WireError::new(StatusCode::FORBIDDEN, "forbidden", message),
            Error::RateLimited { retry_after_ms } => WireError {
                retry_after_ms: Some(*retry_after_ms),
                ..WireError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            },
            Error::Conflict { .. } => WireError::new(StatusCode::CONFLICT, "conflict", message),
            Error::TooManyConnections { .. } => WireError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                message,
            ),
            Error::Unavailable { .. } => {
                WireError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
        }
    }
}

impl From<Error> for WireError {
    fn from(error: Error) -> Self {
        WireError::from(&error)
    }
}

impl From<&AuthError> for WireError {
    fn from(error: &AuthError) -> Self {
        let code = match error {
            AuthError::Missing => "token_missing",
            AuthError::Malformed => "token_malformed",
            AuthError::AlgorithmNotAllowed => "token_algorithm_not_allowed",
            AuthError::BadSignature => "token_bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::UnknownTenant => "token_unknown_tenant",
            AuthError::BadAudience => "token_bad_audience",
            AuthError::InvalidClaims(_) => "token_invalid_claims",
        };
        WireError::new(StatusCode::UNAUTHORIZED, code, error.to_string())
    }
}

impl From<&ProtocolError> for WireError {
    fn from(error: &ProtocolError) -> Self {
        match error {
            ProtocolError::InvalidJson(_) => {
                WireError::new(StatusCode::BAD_REQUEST, "invalid_json", error.to_string())
            }
            ProtocolError::UnknownType(_) | ProtocolError::MissingType => {
                WireError::new(StatusCode::BAD_REQUEST, "unknown_type", error.to_string())
            }
            ProtocolError::FrameTooLarge { .. } => WireError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "frame_too_large",
                error.to_string(),
            ),
            ProtocolError::BinaryFrame => WireError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_frame",
                error.to_string(),
            ),
            ProtocolError::Invalid(domain) => WireError::from(domain),
        }
    }
}

/// The JSON body of every HTTP error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The stable machine-readable code (see `docs/PROTOCOL.md`, Error codes).
    pub code: &'static str,
    /// A human-readable explanation.
    pub message: String,
    /// For `rate_limited`: milliseconds until a retry can succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// For `invalid` and `too_large`: which field, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<ErrorDetails>>,
}

/// Which part of a request an error is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetails {
    /// The field (or `body`, `query`).
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `too_large`: the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// For `too_large`: the size offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<usize>,
}

impl WireError {
    /// The JSON body of this error.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message,
            retry_after_ms: self.retry_after_ms,
            details: self.details,
        }
    }
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after_ms = self.retry_after_ms;
        let code = self.code;
        let body = self.into_body();
        let mut response = (status, Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::security::ErrorCode(code));
        if let Some(retry_after_ms) = retry_after_ms {
            let seconds = retry_after_ms.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// WebSocket close codes (RFC 6455 §7.4 plus the application range 4000-4999).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The client kept sending invalid frames.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame exceeded the hard size limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The server failed.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Authentication failed (an `error` frame with the `token_*` code precedes the close).
    pub const UNAUTHORIZED: u16 = 4001;
    /// The client did not read fast enough.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// The user has too many open connections.
    pub const TOO_MANY_CONNECTIONS: u16 = 4009;
    /// Nothing was received for the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4010;
}

/// The close code and reason for a closed outbound queue.
pub fn close_for(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        CloseReason::SlowConsumer => (close_code::SLOW_CONSUMER, "slow consumer"),
        CloseReason::ServerShutdown => (close_code::GOING_AWAY, "going away"),
        CloseReason::SessionEnded => (close_code::INTERNAL_ERROR, "session ended"),
    }
}
