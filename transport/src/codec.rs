//! The JSON codec of protocol v1, by direction: client frames in, server events out, and the
//! bodies both directions (and the HTTP API) share.
//!
//! - `inbound` parses a client frame in one borrowed pass, then hands it to
//!   the parser of its `type` (one function per kind of frame).
//! - `outbound` implements the engine's [`EventEncoder`] port: each server
//!   event is serialized once into an [`EncodedFrame`] that fan-out shares between recipients.
//! - `bodies` holds the wire bodies (messages, presence, ICE servers, ...) that
//!   WebSocket events and HTTP responses both send.
//! - [`requests`] builds ids, conversation changes and message operations from wire text, for
//!   WebSocket frames and HTTP bodies alike.
//!
//! [`EventEncoder`]: switchboard_engine::event::EventEncoder
//! [`EncodedFrame`]: switchboard_engine::event::EncodedFrame

mod bodies;
mod inbound;
mod outbound;
pub mod requests;

pub use bodies::{
    AttachedThumbnailBody, AttachmentBody, DeletionBody, DimensionsBody, EventEnvelope,
    ForwardedFromBody, IceServerEntry, IceServersBody, MemberEventBody, MessageBody,
    ModerationEventBody, PresenceBody, ReactionBody,
};
pub use inbound::{FrameError, ProtocolError, parse_client_frame};
pub use outbound::{
    CallMemberBody, JsonEventEncoder, PROTOCOL_VERSION, encode_frame_error, encode_wire_error,
};
pub use requests::{parse_delete_mode, parse_moderation_action, parse_role};

#[cfg(test)]
mod tests;
