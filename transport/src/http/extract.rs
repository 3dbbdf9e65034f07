//! Shared by every resource: the extractors (the caller's identity behind a bearer token, the
//! `admin` and `recorder` roles, parsed path segments), whose rejection is the token's
//! `token_*` error; the router's 404 and 405 answers; the helpers that turn bodies, queries,
//! page sizes and ids into typed values or the `invalid` errors clients see; and the event
//! reference and replay header every write answers with.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use serde::Serialize;
use switchboard_actors::session::Identity;
use switchboard_engine::Error;
use switchboard_engine::ids::{ConversationId, MessageId};
use utoipa::ToSchema;

use crate::auth::{AuthError, Roles};
use crate::codec::requests;
use crate::server::App;
use crate::wire_error::WireError;

/// 404 for unknown routes.
pub async fn route_not_found() -> WireError {
    WireError::route_not_found()
}

/// 405 for known routes with the wrong method.
pub async fn method_not_allowed() -> WireError {
    WireError::method_not_allowed()
}

/// The identity behind a request's bearer token.
pub struct Authenticated(pub Identity);

impl FromRequestParts<Arc<App>> for Authenticated {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let token = bearer_token(&parts.headers).ok_or(WireError::from(&AuthError::Missing))?;
        let identity = app
            .authenticator
            .verify(token, app.clock.now())
            .map_err(|error| WireError::from(&error))?;
        crate::security::CallerSlot::set(&parts.extensions, &identity);
        Ok(Authenticated(identity))
    }
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    app: &App,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, WireError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WireError::body_too_large(app.http.max_body_bytes)
        } else {
            WireError::from(Error::invalid("body", rejection.body_text()))
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|error| WireError::from(Error::invalid("body", error.to_string())))
}

pub(crate) fn conversation_id(text: &str) -> Result<ConversationId, WireError> {
    requests::conversation_id(text).map_err(WireError::from)
}

pub(crate) fn message_id(field: &'static str, text: &str) -> Result<MessageId, WireError> {
    requests::message_id(field, text).map_err(WireError::from)
}

/// The `{conversation_id}` and `{message_id}` of a message's path, parsed.
pub(crate) struct MessagePath {
    pub(crate) conversation_id: ConversationId,
    pub(crate) message_id: MessageId,
}

/// The named segments of a request's path.
pub(crate) async fn path_segments(
    parts: &mut Parts,
    app: &Arc<App>,
) -> Result<Vec<(String, String)>, WireError> {
    Path::<Vec<(String, String)>>::from_request_parts(parts, app)
        .await
        .map(|Path(segments)| segments)
        .map_err(|rejection| WireError::from(Error::invalid("path", rejection.body_text())))
}

pub(crate) fn segment<'a>(segments: &'a [(String, String)], name: &str) -> &'a str {
    segments
        .iter()
        .find(|(key, _)| key == name)
        .map_or("", |(_, value)| value.as_str())
}

impl FromRequestParts<Arc<App>> for MessagePath {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let segments = path_segments(parts, app).await?;
        Ok(MessagePath {
            conversation_id: conversation_id(segment(&segments, "conversation_id"))?,
            message_id: message_id("message_id", segment(&segments, "message_id"))?,
        })
    }
}

/// The `{emoji}` of a reaction's path (percent-decoded, not yet validated).
pub(crate) struct EmojiSegment(pub(crate) String);

impl FromRequestParts<Arc<App>> for EmojiSegment {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let segments = path_segments(parts, app).await?;
        Ok(EmojiSegment(segment(&segments, "emoji").to_owned()))
    }
}

pub(crate) fn optional_message_id(
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<MessageId>, WireError> {
    text.map(|text| message_id(field, text)).transpose()
}

pub(crate) fn parse_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, WireError> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| WireError::from(Error::invalid("query", rejection.body_text())))
}

/// A page size from a query: the default when absent, at least 1, clamped to the maximum.
pub(crate) fn page_limit(app: &App, limit: Option<usize>) -> Result<usize, WireError> {
    let limit = limit.unwrap_or(app.http.history_default_limit);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1").into());
    }
    Ok(limit.min(app.http.history_max_limit))
}

pub(crate) async fn caller_with_roles(
    parts: &Parts,
    app: &App,
) -> Result<(Identity, Roles), WireError> {
    let token = bearer_token(&parts.headers).ok_or(WireError::from(&AuthError::Missing))?;
    let (identity, roles) = app
        .authenticator
        .verify_with_roles(token, app.clock.now())
        .map_err(|error| WireError::from(&error))?;
    crate::security::CallerSlot::set(&parts.extensions, &identity);
    Ok((identity, roles))
}

/// Any authenticated caller, with the roles its token carries (for endpoints where a role
/// widens what the caller may do rather than gating the endpoint).
pub(crate) struct CallerWithRoles(pub(crate) Identity, pub(crate) Roles);

impl FromRequestParts<Arc<App>> for CallerWithRoles {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let (identity, roles) = caller_with_roles(parts, app).await?;
        Ok(CallerWithRoles(identity, roles))
    }
}

/// A caller whose token has the `admin` role.
pub(crate) struct Admin(pub(crate) Identity);

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let (identity, roles) = caller_with_roles(parts, app).await?;
        if !roles.admin {
            return Err(WireError::from(Error::Forbidden {
                reason: "this endpoint takes a token with the admin role".into(),
            }));
        }
        Ok(Admin(identity))
    }
}

/// A caller whose token has the `recorder` or the `admin` role.
pub(crate) struct Recorder(pub(crate) Identity);

impl FromRequestParts<Arc<App>> for Recorder {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WireError> {
        let (identity, roles) = caller_with_roles(parts, app).await?;
        if !(roles.recorder || roles.admin) {
            return Err(WireError::from(Error::Forbidden {
                reason: "this endpoint takes a token with the recorder or admin role".into(),
            }));
        }
        Ok(Recorder(identity))
    }
}

/// Marks a response as the replay of an earlier request with the same `client_id`.
pub(crate) fn mark_replayed(response: &mut Response, created: bool) {
    if !created {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct EventRefBody {
    /// The event's ULID.
    pub(crate) event_id: String,
    /// The event's seq in the conversation.
    pub(crate) seq: u64,
    /// When it was accepted, milliseconds since the epoch.
    pub(crate) ts: u64,
}
