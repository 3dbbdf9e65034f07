//! The HTTP API, one module per resource: conversations, members, messages, moderation,
//! presence, TURN, recordings, administration and the health probes.
//!
//! Handlers authenticate with the same verifier as WebSockets (`Authorization: Bearer`), reach
//! the same actors through [`System`](switchboard_actors::system::System), and answer errors as
//! `{"code","message"}` JSON through [`WireError`](crate::wire_error::WireError). Each resource
//! module registers its handlers in its own `routes()` with utoipa-axum's `routes!`, which adds
//! the route and its OpenAPI entry in one call; [`router`] merges the resources, one line each.
//! The contract is `docs/openapi.json`.

mod admin;
mod body_source;
mod conversations;
mod documented_errors;
mod extract;
mod form_source;
mod health;
mod media;
mod media_links;
mod media_thumbnails;
mod media_uploads;
mod members;
mod messages;
mod moderation;
mod object_download;
mod presence;
mod recordings;
pub mod router;
mod search;
mod search_admin;
mod search_directory;
mod search_recent;
mod turn;

pub use extract::{Authenticated, bearer_token, method_not_allowed, route_not_found};
pub use router::routes;
