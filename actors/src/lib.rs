//! Switchboard's supervised actors.
//!
//! Each connection is a [`session::SessionActor`], each active conversation a
//! [`conversation::ConversationActor`] that owns its [`switchboard_engine::conversation::ConversationCore`],
//! and one [`writer::WriterActor`] group-commits appends to storage. A root supervisor
//! ([`root::RootActor`]) holds the tree together and restarts what fails, with backoff.
//! [`system::System`] is the handle the transport layer uses; it never builds actor messages
//! itself.
//!
//! Bounds live at the edges: every session has an [`outbound::Outbound`] queue capped in bytes
//! (overflow disconnects the client as a slow consumer), fan-out never awaits a socket, and every
//! call to another actor has a timeout. Per-user state shared by all sessions (rate limits,
//! connection counts, [`presence`]) lives in small mutex-guarded registries.

#![warn(missing_docs)]

pub mod clock;
pub mod conversation;
pub mod conversations;
mod error;
pub mod limits;
pub mod media;
pub mod outbound;
pub mod presence;
pub mod reply;
pub mod restart;
pub mod root;
pub mod search;
pub mod security;
pub mod session;
pub mod sessions;
pub mod system;
pub mod uploads;
pub mod writer;

pub use error::{Error, Result};
