//! Adapters of the [`MessageStore`](switchboard_engine::ports::MessageStore) port: each
//! conversation's log (messages and events), the conversations and their members, and the
//! per-member rows (receipts, settings, hidden messages).
//!
//! One module per backend: `memory` (the test double), `embedded` (fjall, the durable
//! default), `mongo` (cargo feature `mongodb`, the shared store of scale-out deployments) and
//! `kafka` (cargo feature `kafka`, the persistence pipeline in front of the MongoDB store).
//! What they share sits beside them: `staging` (what appending an entry does to the entries it
//! touches, through the engine's pure rules), `delegate` (the one impl by delegation of the
//! adapters that stand in front of another store) and `breaker` (the circuit breaker in front
//! of a remote store). Each is also an [`EventLog`](switchboard_engine::ports::EventLog): the
//! store-wide tail of every stored entry in store order, which followers resume from a cursor.
//! All of them satisfy one contract, checked by `tests/conformance.rs`.

pub mod breaker;
mod delegate;
pub(crate) mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;
pub(crate) mod memory;
#[cfg(feature = "mongodb")]
pub(crate) mod mongo;
mod staging;
