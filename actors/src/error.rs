//! The actors crate's typed errors.
//!
//! Most failures a client sees are domain errors from the engine, carried unchanged in
//! [`Error::Domain`]. The other variants name what can go wrong between actors: a call that
//! timed out, an actor that is gone, a system that could not start.

/// What went wrong in the actor layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A domain rule refused the request.
    #[error(transparent)]
    Domain(#[from] switchboard_engine::Error),
    /// An actor did not answer within its timeout.
    #[error("{what} did not answer in time")]
    Timeout {
        /// The actor or operation that timed out.
        what: &'static str,
    },
    /// An actor stopped before answering.
    #[error("{what} stopped")]
    Stopped {
        /// The actor that stopped.
        what: &'static str,
    },
    /// The actor system could not be started.
    #[error("could not start {what}: {reason}")]
    Startup {
        /// The actor that failed to start.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The domain view of this error: actor-level failures become
    /// [`switchboard_engine::Error::Unavailable`].
    pub fn into_domain(self) -> switchboard_engine::Error {
        match self {
            Error::Domain(error) => error,
            Error::Timeout { what } => {
                switchboard_engine::Error::unavailable(format!("{what} did not answer in time"))
            }
            Error::Stopped { what } => {
                switchboard_engine::Error::unavailable(format!("{what} is restarting"))
            }
            Error::Startup { what, .. } => {
                switchboard_engine::Error::unavailable(format!("{what} could not start"))
            }
        }
    }
}

/// The actors crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
