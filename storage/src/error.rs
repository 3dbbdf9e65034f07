//! The storage crate's own errors: what can go wrong before a store exists.
//!
//! Once a store is open, every failure travels through the port as a
//! [`StoreError`](switchboard_engine::StoreError), because that is the type the engine
//! understands.
//! [`Error`] covers the step before that: opening the embedded database and checking that the
//! files on disk are in a format this build can read.

use std::path::PathBuf;

/// A failure to open a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database directory could not be opened (missing permissions, another process holds
    /// its lock, unreadable journal, ...).
    #[error("could not open the embedded store at {path}: {source}")]
    Open {
        /// The directory that was being opened.
        path: PathBuf,
        /// What the database engine reported.
        source: fjall::Error,
    },
    /// The database opened but one of its tables could not be opened or created.
    #[error("could not open the table {table}: {source}")]
    OpenTable {
        /// The table (fjall keyspace) name.
        table: &'static str,
        /// What the database engine reported.
        source: fjall::Error,
    },
    /// The directory holds data written in a format this build does not understand.
    #[error("unsupported storage format version {found}, this build reads version {supported}")]
    UnsupportedFormat {
        /// The version recorded in the directory.
        found: u8,
        /// The version this build writes and reads.
        supported: u8,
    },
    /// The directory's format marker is unreadable.
    #[error("storage corrupt: {reason}")]
    Corrupt {
        /// What is wrong, in lowercase words.
        reason: String,
    },
}

/// The storage crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
