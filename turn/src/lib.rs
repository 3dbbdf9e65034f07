//! Reserved for the TURN credential service (issue 6: WebRTC), and empty until then.
//!
//! The crate exists so that the workspace layout in `ARCHITECTURE.md` is the one the project is
//! growing into; it exports nothing and nothing depends on it. When issue 6 lands it will hold
//! the pure `credentials(secret, user, now, ttl)` function (coturn REST-API compatible) and the
//! embedded relay, depending only on `engine`.
