//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' annotations.
//!
//! Each handler in [`crate::http`] (and the WebSocket upgrade in [`crate::ws`]) carries a
//! `#[utoipa::path]` attribute next to its code, and every body type derives its schema, so the
//! document cannot drift from what is served: it is built here, served at `/v1/openapi.json`,
//! and copied to `docs/openapi.json`, which a test keeps identical to this output.

use std::sync::OnceLock;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http;
use crate::wire_error::ALL_CODES;
use crate::ws;

/// Adds the bearer-token security scheme every `/v1` endpoint uses.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description = Some(
            "Claims: sub (user), tenant, exp; nbf, iat and aud honoured when present; roles \
             (an array: admin, recorder) for the recordings API. See docs/PROTOCOL.md, Tokens."
                .to_owned(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Lists every wire code in the error body's `code` property, so clients can generate an enum.
struct ErrorCodes;

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(error_body))) = components.schemas.get_mut("ErrorBody")
        else {
            return;
        };
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "The stable machine-readable code (see docs/PROTOCOL.md, Error codes).",
            ))
            .enum_values(Some(ALL_CODES.iter().copied()))
            .build();
        error_body
            .properties
            .insert("code".to_owned(), RefOr::T(Schema::Object(code)));
    }
}

/// The API, as annotated on its handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard HTTP API",
        version = "1",
        description = "The HTTP API of Switchboard, a multi-tenant realtime chat engine. It \
            reaches the same actors and enforces the same rules as the WebSocket protocol \
            (docs/PROTOCOL.md). Every error is a JSON object {\"code\", \"message\", \
            \"details\"?} with the status listed; `invalid` and `too_large` carry `details` \
            naming the field; `rate_limited` responses also carry `retry_after_ms` and a \
            `Retry-After` header. Every response carries an `x-request-id` header. Request \
            bodies and query strings with unknown fields are refused (`invalid`). Operations \
            on messages (edit, delete, reactions) answer like sends: once durable, idempotent \
            by `client_id`."
    ),
    servers((url = "http://127.0.0.1:8080")),
    security(("bearer" = [])),
    modifiers(&BearerScheme, &ErrorCodes),
    paths(
        http::health,
        http::ready,
        crate::metrics::metrics,
        http::openapi_document,
        http::get_presence,
        http::turn_credentials,
        ws::upgrade,
        http::list_conversations,
        http::create_conversation,
        http::update_settings,
        http::get_conversation,
        http::post_receipts,
        http::update_conversation,
        http::archive_conversation,
        http::add_members,
        http::remove_member,
        http::change_role,
        http::leave_conversation,
        http::transfer_ownership,
        http::moderate,
        http::moderation_log,
        http::list_messages,
        http::post_message,
        http::forward_messages,
        http::get_message,
        http::edit_message,
        http::delete_message,
        http::list_edits,
        http::list_thread,
        http::add_reaction,
        http::remove_reaction,
        crate::recordings::list_recordings,
        crate::recordings::get_recording,
        crate::recordings::erase_recording,
        crate::recordings::download_media,
        crate::recordings::upload_media,
        crate::recordings::report_quality,
        crate::recordings::audit_log,
    )
)]
pub struct ApiDoc;

/// The document, pretty-printed, built once.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    })
}

#[cfg(test)]
mod tests;
