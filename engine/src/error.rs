//! The engine's typed errors.
//!
//! [`Error`] names the domain outcomes a request can end in (not a member, rate limited, too large,
//! ...). Each variant maps to exactly one wire code in the `transport` crate, which is the only
//! place that knows about wire codes and HTTP statuses.
//! [`StoreError`] is what a storage port reports when the backend itself fails; it is converted
//! into [`Error::Unavailable`] (or [`Error::Conflict`]) at the edge of the domain.
//! [`PutError`] is why a streamed object was not stored: its bytes went past their limit, their
//! source ([`SourceError`], an uploading client) failed, or the backend did.

use std::borrow::Cow;

/// A domain failure: why a request was refused.
///
/// It is serializable (serde) so that a refusal can cross a process boundary as it is: the
/// Kafka pipeline sends the persister's refusals back to the appending node in its replies.
/// Its texts are [`Cow`]s, borrowed from the engine's own literals when it builds them and
/// owned when they were read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Error {
    /// A field of the request is malformed.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The request field that failed validation.
        field: Cow<'static, str>,
        /// What is wrong with it, in lowercase words.
        reason: String,
    },
    /// A field of the request is over its configured size limit.
    #[error("{what} is too large: {actual}, the limit is {limit}")]
    TooLarge {
        /// The thing that is too large.
        what: Cow<'static, str>,
        /// The configured limit.
        limit: usize,
        /// The size that was offered.
        actual: usize,
    },
    /// The object does not exist or is not visible to the caller (other tenants' objects are
    /// always reported this way, so their existence never leaks).
    #[error("not found")]
    NotFound,
    /// The caller is not a member of the conversation.
    #[error("not a member of this conversation")]
    NotMember,
    /// The caller is a member but its role does not allow the action.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why the role is insufficient.
        reason: Cow<'static, str>,
    },
    /// The caller's token bucket is empty.
    #[error("rate limited, retry after {retry_after_ms} ms")]
    RateLimited {
        /// Milliseconds until the next request would be admitted.
        retry_after_ms: u64,
    },
    /// The request conflicts with existing state (for example an id that is already taken).
    #[error("conflict: {reason}")]
    Conflict {
        /// What conflicts.
        reason: String,
    },
    /// The caller has too many concurrent connections.
    #[error("too many connections: the limit is {limit}")]
    TooManyConnections {
        /// The configured per-user connection limit.
        limit: usize,
    },
    /// Storing the media would take a storage quota past its limit.
    #[error("the {} quota of {limit_bytes} bytes is exceeded: {remaining_bytes} bytes are left", scope.as_str())]
    QuotaExceeded {
        /// Whose quota.
        scope: crate::media::QuotaScope,
        /// The quota in bytes.
        limit_bytes: u64,
        /// What is left of it.
        remaining_bytes: u64,
    },
    /// The media type read from the bytes is not accepted, or the file name claims another.
    #[error("unsupported media type {media_type}: {reason}")]
    UnsupportedMediaType {
        /// The type read from the bytes.
        media_type: String,
        /// Why it is refused.
        reason: String,
    },
    /// The bytes do not match the checksum the client sent for them; none of them was kept.
    #[error("the body does not match its {algorithm} checksum")]
    ChecksumMismatch {
        /// The checksum's algorithm.
        algorithm: String,
    },
    /// A dependency (storage, an actor) failed or timed out; the outcome of a send is unknown and
    /// the client should retry with the same `client_id`.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// A short, sanitized description of what was unavailable.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Error::Unavailable {
            reason: reason.into(),
        }
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A storage backend failure, as reported through a port trait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or the operation failed; nothing can be assumed about
    /// partially applied writes except what the port documents.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes could not be decoded.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// A create operation found the key already present.
    #[error("already exists")]
    AlreadyExists,
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists => Error::Conflict {
                reason: "already exists".to_owned(),
            },
            StoreError::Unavailable(_) | StoreError::Corrupt(_) => {
                Error::unavailable("storage is unavailable")
            }
        }
    }
}

/// A [`crate::recording::ByteSource`] could not give its next chunk: the uploading client went
/// away, sent a malformed body, or sent nothing for too long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bytes could not be read: {reason}")]
pub struct SourceError {
    /// What went wrong, in lowercase words, safe to show to the client.
    pub reason: String,
}

impl SourceError {
    /// A source failure with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Why [`crate::recording::ObjectStore::put_stream`] stored nothing. Whichever it is, the key
/// holds what it held before, and nothing partial is left behind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PutError {
    /// The bytes went past the limit the caller set; reading stopped at the chunk that crossed
    /// it.
    #[error("the object is over its limit of {limit} bytes ({received} bytes received)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
        /// The bytes received when reading stopped: more than `limit`, at most one chunk more.
        received: u64,
    },
    /// The source of the bytes failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a media upload that stored nothing reads to the caller: over the limit is
/// [`Error::TooLarge`] (field `media`, `actual` the bytes received when reading stopped), a
/// failed source [`Error::Invalid`] (field `media`), a failed backend [`Error::Unavailable`].
impl From<PutError> for Error {
    fn from(error: PutError) -> Self {
        match error {
            PutError::TooLarge { limit, received } => Error::TooLarge {
                what: Cow::Borrowed("media"),
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
                actual: usize::try_from(received).unwrap_or(usize::MAX),
            },
            PutError::Source(source) => Error::invalid("media", source.reason),
            PutError::Store(store) => Error::from(store),
        }
    }
}
