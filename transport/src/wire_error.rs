//! The one mapping from typed errors to what clients see: wire codes, HTTP statuses, WebSocket
//! close codes and sanitized messages.
//!
//! [`WireCode`] is the one table of codes, HTTP statuses and meanings; the `From` impls below
//! pick each error's code. Tests keep the error table of `docs/PROTOCOL.md` and the error
//! responses of `docs/openapi.json` in step with the table.

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

/// Declares [`WireCode`], the one table of wire codes: each code's name on the wire, its HTTP
/// status and its meaning. Everything else (the error frames and bodies, [`ALL_CODES`], the
/// OpenAPI error responses built by `crate::http::documented_errors`, and the table in
/// `docs/PROTOCOL.md`, which a test compares with this one) follows from it.
macro_rules! wire_codes {
    ($($variant:ident = ($code:literal, $status:ident, $meaning:literal);)*) => {
        /// A stable machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum WireCode {
            $(
                #[doc = $meaning]
                $variant,
            )*
        }

        impl WireCode {
            /// Every code, in the order `docs/PROTOCOL.md` lists them.
            pub const ALL: &'static [WireCode] = &[$(WireCode::$variant),*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(WireCode::$variant => $code,)*
                }
            }

            /// The HTTP status of a response carrying this code.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(WireCode::$variant => StatusCode::$status,)*
                }
            }

            /// What the code means, as `docs/PROTOCOL.md` says it.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(WireCode::$variant => $meaning,)*
                }
            }
        }

        /// Every wire code the server can send, as on the wire.
        pub const ALL_CODES: &[&str] = &[$($code),*];
    };
}

wire_codes! {
    Invalid = ("invalid", BAD_REQUEST, "a field is missing or malformed (the message names it)");
    TooLarge = ("too_large", PAYLOAD_TOO_LARGE, "a field (the message text, the number of distinct reactions) is over its limit");
    NotFound = ("not_found", NOT_FOUND, "no such conversation in the user's tenant, or no such message in the conversation");
    NotMember = ("not_member", FORBIDDEN, "the user is not a member of the conversation");
    Forbidden = ("forbidden", FORBIDDEN, "the user's role does not allow the action");
    RateLimited = ("rate_limited", TOO_MANY_REQUESTS, "the user's rate limit is exhausted; `retry_after_ms` says when to retry");
    Conflict = ("conflict", CONFLICT, "the request conflicts with existing state (a deleted message, a reaction already there or not there)");
    QuotaExceeded = ("quota_exceeded", PAYLOAD_TOO_LARGE, "storing the media would pass the user's or the tenant's storage quota; `details` names the quota (`field`), its size (`limit`) and what is left (`remaining`)");
    UnsupportedMediaType = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "the media type read from the file's bytes is not accepted, or the file name's extension claims another type");
    ChecksumMismatch = ("checksum_mismatch", BAD_REQUEST, "the body does not match the checksum sent with it (`Upload-Checksum`); nothing of it was kept. The tus endpoints answer it with 460, as tus's checksum extension says");
    RangeNotSatisfiable = ("range_not_satisfiable", RANGE_NOT_SATISFIABLE, "HTTP only: the download's `Range` cannot be served from the file (`bytes=-0`, an end before its start, a start past the end); `Content-Range` gives the size");
    TooManyConnections = ("too_many_connections", TOO_MANY_REQUESTS, "the user has `limits.max_connections_per_user` connections open");
    Unavailable = ("unavailable", SERVICE_UNAVAILABLE, "a dependency failed or the conversation is restarting; retry");
    TokenMissing = ("token_missing", UNAUTHORIZED, "no token was presented");
    TokenMalformed = ("token_malformed", UNAUTHORIZED, "not a well-formed JWT");
    TokenAlgorithmNotAllowed = ("token_algorithm_not_allowed", UNAUTHORIZED, "`alg: none`, or not the tenant's algorithm");
    TokenBadSignature = ("token_bad_signature", UNAUTHORIZED, "the signature does not verify");
    TokenExpired = ("token_expired", UNAUTHORIZED, "`exp` has passed");
    TokenNotYetValid = ("token_not_yet_valid", UNAUTHORIZED, "`nbf` or `iat` is in the future");
    TokenUnknownTenant = ("token_unknown_tenant", UNAUTHORIZED, "tenants are configured and this one is not among them");
    TokenBadAudience = ("token_bad_audience", UNAUTHORIZED, "`aud` does not name the configured audience");
    TokenInvalidClaims = ("token_invalid_claims", UNAUTHORIZED, "`sub`, `tenant` or `exp` is missing or malformed");
    InvalidJson = ("invalid_json", BAD_REQUEST, "the frame is not a JSON object");
    UnknownType = ("unknown_type", BAD_REQUEST, "no `type`, or a type the server does not know");
    FrameTooLarge = ("frame_too_large", PAYLOAD_TOO_LARGE, "the frame is over `limits.max_frame_bytes` (default 65536 bytes)");
    UnsupportedFrame = ("unsupported_frame", BAD_REQUEST, "a binary frame; protocol v1 speaks JSON text frames only");
    MethodNotAllowed = ("method_not_allowed", METHOD_NOT_ALLOWED, "HTTP only: the endpoint does not accept the request's method");
}

impl WireError {
    /// An error with this code, its status from the table, and a message.
    pub fn new(code: WireCode, message: impl Into<String>) -> Self {
        WireError {
            status: code.status(),
            code: code.as_str(),
            message: message.into(),
            retry_after_ms: None,
            details: None,
        }
    }

    /// A 404 for an unknown route.
    pub fn route_not_found() -> Self {
        WireError::new(WireCode::NotFound, "no such endpoint")
    }

    /// A 413 for a request body over the limit.
    pub fn body_too_large(limit: usize) -> Self {
        WireError::new(
            WireCode::TooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// A 405 for a known route with the wrong method.
    pub fn method_not_allowed() -> Self {
        WireError::new(
            WireCode::MethodNotAllowed,
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
                    remaining: None,
                })),
                ..WireError::new(WireCode::Invalid, message)
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
                    remaining: None,
                })),
                ..WireError::new(WireCode::TooLarge, message)
            },
            Error::NotFound => WireError::new(WireCode::NotFound, message),
            Error::NotMember => WireError::new(WireCode::NotMember, message),
            Error::Forbidden { .. } => WireError::new(WireCode::Forbidden, message),
            Error::RateLimited { retry_after_ms } => WireError {
                retry_after_ms: Some(*retry_after_ms),
                ..WireError::new(WireCode::RateLimited, message)
            },
            Error::Conflict { .. } => WireError::new(WireCode::Conflict, message),
            Error::QuotaExceeded {
                scope,
                limit_bytes,
                remaining_bytes,
            } => WireError {
                details: Some(Box::new(ErrorDetails {
                    field: scope.as_str().into(),
                    reason: None,
                    limit: Some(usize::try_from(*limit_bytes).unwrap_or(usize::MAX)),
                    actual: None,
                    remaining: Some(*remaining_bytes),
                })),
                ..WireError::new(WireCode::QuotaExceeded, message)
            },
            Error::ChecksumMismatch { .. } => WireError::new(WireCode::ChecksumMismatch, message),
            Error::UnsupportedMediaType { .. } => {
                WireError::new(WireCode::UnsupportedMediaType, message)
            }
            Error::TooManyConnections { .. } => {
                WireError::new(WireCode::TooManyConnections, message)
            }
            Error::Unavailable { .. } => WireError::new(WireCode::Unavailable, message),
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
            AuthError::Missing => WireCode::TokenMissing,
            AuthError::Malformed => WireCode::TokenMalformed,
            AuthError::AlgorithmNotAllowed => WireCode::TokenAlgorithmNotAllowed,
            AuthError::BadSignature => WireCode::TokenBadSignature,
            AuthError::Expired => WireCode::TokenExpired,
            AuthError::NotYetValid => WireCode::TokenNotYetValid,
            AuthError::UnknownTenant => WireCode::TokenUnknownTenant,
            AuthError::BadAudience => WireCode::TokenBadAudience,
            AuthError::InvalidClaims(_) => WireCode::TokenInvalidClaims,
        };
        WireError::new(code, error.to_string())
    }
}

impl From<&ProtocolError> for WireError {
    fn from(error: &ProtocolError) -> Self {
        match error {
            ProtocolError::InvalidJson(_) => {
                WireError::new(WireCode::InvalidJson, error.to_string())
            }
            ProtocolError::UnknownType(_) | ProtocolError::MissingType => {
                WireError::new(WireCode::UnknownType, error.to_string())
            }
            ProtocolError::FrameTooLarge { .. } => {
                WireError::new(WireCode::FrameTooLarge, error.to_string())
            }
            ProtocolError::BinaryFrame => {
                WireError::new(WireCode::UnsupportedFrame, error.to_string())
            }
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
    /// For `quota_exceeded`: the bytes left of the quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
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

#[cfg(test)]
mod tests;
