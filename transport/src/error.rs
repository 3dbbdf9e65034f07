//! The transport crate's own failures: what can go wrong setting up the edges (as opposed to
//! handling a request, which ends in a [`crate::wire_error::WireError`]).

/// A transport setup failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configured key could not be parsed.
    #[error("invalid key for tenant {tenant}: {reason}")]
    InvalidKey {
        /// The tenant whose key is bad.
        tenant: String,
        /// Why.
        reason: String,
    },
    /// The configuration is inconsistent.
    #[error("invalid auth configuration: {0}")]
    InvalidConfig(String),
    /// The listener failed.
    #[error("server i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The transport crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
