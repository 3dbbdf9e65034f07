//! The HTTP API: conversations, messages and history, plus the health probes.
//!
//! Handlers authenticate with the same verifier as WebSockets (`Authorization: Bearer`), reach
//! the same actors through [`System`](switchboard_actors::system::System), and answer errors as
//! `{"code","message"}` JSON through [`WireError`]. The contract is `docs/openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use switchboard_actors::session::Identity;
use switchboard_engine::Error;
use switchboard_engine::cursor::{Direction, HistoryCursor};
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, UserId};
use switchboard_engine::model::{ConversationKind, ConversationSnapshot, Message, NewMessage};

use crate::auth::AuthError;
use crate::codec::MessageBody;
use crate::server::App;
use crate::wire_error::WireError;

/// The API routes (without the WebSocket endpoint).
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/v1/conversations",
            axum::routing::post(create_conversation),
        )
        .route("/v1/conversations/{conversation_id}", get(get_conversation))
        .route(
            "/v1/conversations/{conversation_id}/messages",
            get(list_messages).post(post_message),
        )
}

/// Every `(method, path)` the API serves, for the OpenAPI consistency test.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/ready"),
    ("get", "/v1/ws"),
    ("post", "/v1/conversations"),
    ("get", "/v1/conversations/{conversation_id}"),
    ("get", "/v1/conversations/{conversation_id}/messages"),
    ("post", "/v1/conversations/{conversation_id}/messages"),
];

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
        app.authenticator
            .verify(token, app.clock.now())
            .map(Authenticated)
            .map_err(|error| WireError::from(&error))
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

fn parse_body<T: serde::de::DeserializeOwned>(
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

fn conversation_id(text: &str) -> Result<ConversationId, WireError> {
    ConversationId::parse(text).map_err(WireError::from)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn ready(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, WireError> {
    app.system.ready().await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

#[derive(Deserialize)]
struct CreateConversationBody {
    kind: String,
    title: Option<String>,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Serialize)]
struct MemberBody<'a> {
    user_id: &'a str,
    role: &'static str,
    joined_at: u64,
}

#[derive(Serialize)]
struct ConversationBody<'a> {
    conversation_id: String,
    kind: &'static str,
    title: Option<&'a str>,
    created_by: &'a str,
    created_at: u64,
    members: Vec<MemberBody<'a>>,
}

fn conversation_body(snapshot: &ConversationSnapshot) -> ConversationBody<'_> {
    let conversation = &snapshot.conversation;
    ConversationBody {
        conversation_id: conversation.conversation_id.to_string(),
        kind: conversation.kind.as_str(),
        title: conversation.title.as_deref(),
        created_by: conversation.created_by.as_str(),
        created_at: conversation.created_at.as_millis(),
        members: snapshot
            .members
            .iter()
            .map(|member| MemberBody {
                user_id: member.user_id.as_str(),
                role: member.role.as_str(),
                joined_at: member.joined_at.as_millis(),
            })
            .collect(),
    }
}

async fn create_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let body: CreateConversationBody = parse_body(&app, body)?;
    let kind = ConversationKind::parse(&body.kind).ok_or_else(|| {
        WireError::from(Error::invalid(
            "kind",
            "must be one of direct, group, channel",
        ))
    })?;
    let members = body
        .members
        .iter()
        .map(|member| UserId::parse(member).map_err(WireError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let snapshot = app
        .system
        .create_conversation(&identity, kind, body.title, members)
        .await?;
    Ok((StatusCode::CREATED, Json(conversation_body(&snapshot))).into_response())
}

async fn get_conversation(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let snapshot = app.system.conversation(&identity, conversation_id).await?;
    Ok(Json(conversation_body(&snapshot)).into_response())
}

#[derive(Deserialize)]
struct PostMessageBody {
    client_id: String,
    text: String,
    reply_to: Option<String>,
}

async fn post_message(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let body: PostMessageBody = parse_body(&app, body)?;
    let new_message = NewMessage {
        client_id: ClientId::parse(&body.client_id)?,
        text: body.text,
        reply_to: body
            .reply_to
            .as_deref()
            .map(|reply_to| {
                MessageId::parse(reply_to)
                    .map_err(|_| Error::invalid("reply_to", "must be a message id"))
            })
            .transpose()?,
    };
    let sent = app
        .system
        .send(&identity, conversation_id, new_message)
        .await?;
    let mut response = (StatusCode::CREATED, Json(MessageBody::new(&sent.message))).into_response();
    if !sent.created {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    after_seq: Option<u64>,
}

#[derive(Serialize)]
struct HistoryPage<'a> {
    items: Vec<MessageBody<'a>>,
    next_cursor: Option<String>,
}

async fn list_messages(
    State(app): State<Arc<App>>,
    Authenticated(identity): Authenticated,
    Path(conversation_id_text): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, WireError> {
    let conversation_id = conversation_id(&conversation_id_text)?;
    let Query(query) = query
        .map_err(|rejection| WireError::from(Error::invalid("query", rejection.body_text())))?;
    let limit = query.limit.unwrap_or(app.http.history_default_limit);
    if limit == 0 {
        return Err(Error::invalid("limit", "must be at least 1").into());
    }
    let limit = limit.min(app.http.history_max_limit);
    let (direction, position) = match (query.cursor, query.after_seq) {
        (Some(_), Some(_)) => {
            return Err(
                Error::invalid("cursor", "use either cursor or after_seq, not both").into(),
            );
        }
        (None, Some(after_seq)) => (Direction::Forward, Some(Seq(after_seq))),
        (Some(cursor), None) => {
            let cursor = HistoryCursor::decode(&cursor, conversation_id)?;
            (cursor.direction, Some(cursor.seq))
        }
        (None, None) => (Direction::Backward, None),
    };
    let messages: Vec<Message> = match direction {
        Direction::Forward => {
            app.system
                .history_after(
                    &identity,
                    conversation_id,
                    position.unwrap_or(Seq::ZERO),
                    limit,
                )
                .await?
        }
        Direction::Backward => {
            app.system
                .history_before(&identity, conversation_id, position, limit)
                .await?
        }
    };
    let next_cursor = match (direction, messages.last()) {
        (Direction::Forward, Some(last)) if messages.len() == limit => Some(last.seq),
        (Direction::Backward, Some(last)) if messages.len() == limit && last.seq > Seq(1) => {
            Some(last.seq)
        }
        _ => None,
    }
    .map(|seq| {
        HistoryCursor {
            conversation_id,
            direction,
            seq,
        }
        .encode()
    });
    let page = HistoryPage {
        items: messages.iter().map(MessageBody::new).collect(),
        next_cursor,
    };
    Ok(Json(page).into_response())
}
