//! Switchboard's TURN side of WebRTC: coturn REST-API compatible credentials for WebRTC
//! callers, server health, and the embedded relay.
//!
//! - [`credentials`] is pure: the credential formula (HMAC-SHA1 with `ring`), expiry, and the
//!   [`credentials::SecretRing`] that rotates secrets. Time and secrets are arguments.
//! - [`service`] implements the engine's
//!   [`IceServerProvider`](switchboard_engine::ports::IceServerProvider) port with per-tenant
//!   secrets and server lists.
//!
//! - [`health`] probes every TURN and STUN server with STUN binding requests (an actor) so that
//!   the lists handed to clients put reachable servers first and leave unreachable ones out.
//!
//! - [`relay`] is the embedded TURN relay (webrtc-rs `turn`), which accepts the same
//!   credentials, rotation included, answers refused ones 401 with a fresh nonce, and counts
//!   them by reason for `GET /metrics`.

#![warn(missing_docs)]

pub mod credentials;
pub mod health;
pub mod relay;
pub mod service;
