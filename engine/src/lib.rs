//! Switchboard's pure domain core.
//!
//! Everything a chat engine decides lives here: newtype identifiers, the message and conversation
//! model, validation rules, rate-limit arithmetic, history cursors, the per-conversation state
//! machine ([`conversation::ConversationCore`]) and the port traits that storage adapters
//! implement ([`ports`]), and the operations on messages with the pure functions that apply
//! them ([`operations`]), the rules of calls ([`call`]), of forwarding ([`forwarding`]) and of direct pairs ([`direct`]), and the metadata kept about each recording with the
//! object and audit ports it needs ([`recording`]), and the rules of media: file names, types
//! read from the bytes, quotas, ranges and the life of an upload ([`media`]), and the rules of
//! search: the query language and the text analysis every index shares ([`search`]).
//! Nothing in this crate performs I/O, spawns tasks or reads a clock: time is always an argument.
//! That keeps every rule testable in microseconds and lets the `actors` crate wrap the state
//! machines with mailboxes, storage and sockets without the rules knowing about any of them.

#![warn(missing_docs)]

pub mod backoff;
pub mod blob;
pub mod call;
pub mod conversation;
pub mod cursor;
pub mod direct;
mod error;
pub mod event;
pub mod forwarding;
pub mod idempotency;
pub mod ids;
pub mod media;
pub mod membership;
pub mod model;
pub mod operations;
pub mod permissions;
pub mod ports;
pub mod rate_limit;
pub mod recording;
pub mod sampling;
pub mod search;
pub mod time;
pub mod unread;
pub mod validate;

#[cfg(test)]
mod test_fixtures;

pub use error::{Error, PutError, Result, SourceError, StoreError};
