//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers' annotations.
//!
//! Each handler in [`crate::http`] (and the WebSocket upgrade in [`crate::ws`]) carries a
//! `#[utoipa::path]` attribute next to its code, and every body type derives its schema. The
//! document is what [`crate::http::router::api`] registered, route by route, on top of
//! [`ApiDoc`] (info, servers, security), so it cannot drift from what is served: it is built
//! here, served at `/v1/openapi.json`, and copied to `docs/openapi.json`, which a test keeps
//! identical to this output.

use std::sync::OnceLock;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::wire_error::ALL_CODES;

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

/// The document's frame: info, servers and security; the routes add the paths.
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
    modifiers(&BearerScheme),
)]
pub struct ApiDoc;

/// The document, pretty-printed, built once.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut document = crate::http::router::api().into_openapi();
        // After the routes: they bring the `ErrorBody` schema this fills in.
        ErrorCodes.modify(&mut document);
        document
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    })
}

#[cfg(test)]
mod tests;
