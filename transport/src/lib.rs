//! Switchboard's edges: everything that knows about JSON, WebSocket frames and HTTP statuses.
//!
//! - [`auth`] verifies JWTs (HS256 development secret, per-tenant RS256 / ES256 / EdDSA keys).
//! - [`codec`] parses client frames into requests and encodes server events (the engine's
//!   [`EventEncoder`](switchboard_engine::event::EventEncoder) port).
//! - [`wire_error`] is the single mapping from typed errors to wire codes and HTTP statuses.
//! - [`ws`] runs one WebSocket connection: authentication, the reader, the batching writer,
//!   heartbeats, limits and close codes.
//! - [`http`] is the HTTP API, [`openapi`] its generated OpenAPI document; [`server`] binds
//!   both to one listener; [`metrics`] serves Prometheus metrics at `GET /metrics`.

#![warn(missing_docs)]

pub mod auth;
pub mod codec;
mod error;
pub mod http;
pub mod link_signing;
pub mod metrics;
pub mod openapi;
mod security;
pub mod server;
pub mod settings;
pub mod wire_error;
pub mod ws;

pub use error::{Error, Result};
