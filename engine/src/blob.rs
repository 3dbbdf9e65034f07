//! The blob port: objects (recorded media, and later any media) stored by tenant and key,
//! streamed both ways.
//!
//! Bytes go in as a [`ByteSource`] the store pulls chunk by chunk ([`ObjectStore::put_stream`]),
//! with a size limit, so a put holds a bounded amount in memory whatever the object's size; they
//! come out as a [`ByteStream`] over a [`ByteRange`] of the object ([`ObjectStore::get_range`]),
//! so a reader (an HTTP range request, a media pipeline) takes what it needs without the store
//! reading the whole object first. The recording module re-exports these names, where they
//! lived before.

use std::collections::VecDeque;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;
use crate::{Error, PutError, Result, SourceError, StoreError};

/// The longest object key accepted, in bytes.
pub const MAX_OBJECT_KEY_BYTES: usize = 512;

/// The longest content type accepted, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 127;

/// The key of a stored object within its tenant: `/`-separated segments of ASCII letters,
/// digits, `.`, `_` and `-`, none of them empty, `.` or `..`. Adapters put the tenant in front
/// (each in their own way), so a key never names another tenant's object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(pub(crate) String);

impl ObjectKey {
    /// Validates a key.
    ///
    /// # Errors
    /// [`Error::Invalid`] if the key is empty, too long, or has a bad segment or character.
    pub fn parse(value: &str) -> Result<Self> {
        if value.is_empty() || value.len() > MAX_OBJECT_KEY_BYTES {
            return Err(Error::invalid(
                "object_key",
                format!("must be 1 to {MAX_OBJECT_KEY_BYTES} bytes"),
            ));
        }
        let segments_valid = value.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
        });
        if !segments_valid {
            return Err(Error::invalid(
                "object_key",
                "must be /-separated segments of letters, digits, . _ -, none empty, . or ..",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<ObjectKey> for String {
    fn from(key: ObjectKey) -> Self {
        key.0
    }
}

/// Checks a media type (`type/subtype`, optional parameters) as given by a client.
///
/// # Errors
/// [`Error::Invalid`] if it is empty, too long, has no `/`, or has control characters.
pub fn validate_content_type(value: &str) -> Result<()> {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let well_formed = !value.is_empty()
        && value.len() <= MAX_CONTENT_TYPE_BYTES
        && value.bytes().all(|byte| (0x20..0x7f).contains(&byte))
        && essence
            .split_once('/')
            .is_some_and(|(kind, subtype)| !kind.is_empty() && !subtype.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(Error::invalid(
            "content_type",
            format!(
                "must be a media type such as audio/ogg, at most {MAX_CONTENT_TYPE_BYTES} bytes"
            ),
        ))
    }
}

/// The headers a direct read URL makes the object store answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectReadHeaders<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// `Content-Disposition`.
    pub content_disposition: &'a str,
}

/// Which bytes of an object to read: from `start` up to `end` (exclusive), or to the object's
/// end when `end` is `None`. A range reaching past the object is cut at its end, and one that
/// starts at or past the end is empty ([`ByteRange::within`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte, counted from 0.
    pub start: u64,
    /// The byte after the last, or `None` for the rest of the object.
    pub end: Option<u64>,
}

impl ByteRange {
    /// The whole object.
    pub const ALL: ByteRange = ByteRange {
        start: 0,
        end: None,
    };

    /// From `start` to the end of the object.
    pub fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// From `start` up to `end`, exclusive.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// The bytes `(start, end)` this range covers of an object of `total_bytes`:
    /// `start <= end <= total_bytes`, equal (empty) when the range starts at or past the end
    /// or ends before it starts.
    pub fn within(self, total_bytes: u64) -> (u64, u64) {
        let end = self.end.unwrap_or(total_bytes).min(total_bytes);
        let start = self.start.min(end);
        (start, end)
    }
}

/// The bytes of an object on their way out, one chunk at a time. Like a [`ByteSource`] it is
/// pulled, so the reader decides how much is held at once.
#[async_trait]
pub trait ByteStream: Send {
    /// The next chunk, or `None` once every byte of the range was given.
    ///
    /// # Errors
    /// [`StoreError`] if the backend fails midway; the stream is not read again after an
    /// error.
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, StoreError>;
}

/// A range of a stored object, as [`ObjectStore::get_range`] reads it.
pub struct ObjectRange {
    /// The media type given when the object was stored.
    pub content_type: String,
    /// The whole object's size in bytes.
    pub total_bytes: u64,
    /// The first byte the stream gives ([`ByteRange::within`] the object).
    pub start: u64,
    /// The byte after the last one the stream gives.
    pub end: u64,
    /// The bytes from `start` up to `end`.
    pub bytes: Box<dyn ByteStream>,
}

impl fmt::Debug for ObjectRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ObjectRange")
            .field("content_type", &self.content_type)
            .field("total_bytes", &self.total_bytes)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// A stored object's bytes and media type, as [`ObjectStore::get_object`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectBody {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The media type given when it was stored.
    pub content_type: String,
}

/// What [`ObjectStore::put_stream`] stored: the object's size and checksum, computed as its
/// bytes went by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its size in bytes.
    pub bytes: u64,
    /// The lowercase hex SHA-256 of its bytes.
    pub sha256: String,
}

/// The bytes of an object on their way in, one chunk at a time: an upload's body as the client
/// sends it. A source is pulled, never pushed, so whoever reads it decides how much is held at
/// once; nothing is read until the first [`ByteSource::next_chunk`].
#[async_trait]
pub trait ByteSource: Send {
    /// The next chunk, or `None` once every byte was given. Chunks may be of any size,
    /// including empty; sources over a network hand over what arrived, a bounded amount.
    ///
    /// # Errors
    /// [`SourceError`] if the bytes cannot be read to their end (the client went away, or the
    /// body is malformed); the source is not read again after an error.
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, SourceError>;
}

/// A [`ByteSource`] over chunks already in memory (tests, and callers that have the bytes).
#[derive(Debug, Clone, Default)]
pub struct ChunksSource {
    chunks: VecDeque<Bytes>,
}

impl ChunksSource {
    /// A source giving `chunks` in order.
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
        }
    }

    /// A source giving `bytes` in chunks of `chunk_bytes` (the last one shorter), or as one
    /// chunk when `chunk_bytes` is 0. Empty bytes give no chunk at all.
    pub fn split(bytes: impl Into<Bytes>, chunk_bytes: usize) -> Self {
        let mut bytes = bytes.into();
        let mut chunks = VecDeque::new();
        while !bytes.is_empty() {
            let n_bytes = if chunk_bytes == 0 {
                bytes.len()
            } else {
                chunk_bytes.min(bytes.len())
            };
            chunks.push_back(bytes.split_to(n_bytes));
        }
        Self { chunks }
    }
}

#[async_trait]
impl ByteSource for ChunksSource {
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, SourceError> {
        Ok(self.chunks.pop_front())
    }
}

/// A [`ByteStream`] over chunks already in memory (the in-memory store's reads, and empty
/// ranges).
#[derive(Debug, Clone, Default)]
pub struct ChunksStream {
    chunks: VecDeque<Bytes>,
}

impl ChunksStream {
    /// A stream giving `chunks` in order.
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        Self {
            chunks: chunks.into_iter().collect(),
        }
    }
}

#[async_trait]
impl ByteStream for ChunksStream {
    async fn next_chunk(&mut self) -> std::result::Result<Option<Bytes>, StoreError> {
        Ok(self.chunks.pop_front())
    }
}

/// Stores objects (recorded media) by tenant and key, streamed in and out.
///
/// # Contract (checked by the conformance suite in `storage/tests/object_store.rs`)
/// - Objects of one tenant are invisible to every other, whatever the key.
/// - [`ObjectStore::put_stream`] reads its source to the end and stores what it gave as one
///   object, durable when it returns `Ok`, with the size and SHA-256 of those bytes. It
///   replaces an object with the same key whole: a reader sees the old bytes or the new, never
///   a mix.
/// - It holds a bounded amount of the object in memory whatever its size (each adapter says
///   how much), except the in-memory test double, whose storage is memory.
/// - It refuses a stream longer than `max_bytes` ([`PutError::TooLarge`]) as soon as a chunk
///   crosses the limit, and stops at a failed source ([`PutError::Source`]) or backend
///   ([`PutError::Store`]). Whenever it returns an error, the key holds what it held before (no
///   object, or the old one) and nothing of the failed put is left behind in the backend: no
///   temporary file, no unfinished multipart upload. (The one exception is a backend failing
///   after the new object became visible, such as a directory fsync after the rename: the
///   object may then stay, and the caller treats it as not stored.)
/// - [`ObjectStore::get_range`] streams the bytes of a [`ByteRange`] of the object, cut at its
///   end (a range that starts at or past the end streams nothing), with the object's size and
///   media type; it holds a bounded amount in memory whatever the range's size (except the
///   in-memory test double). The stream is of the object as it was when the read began.
/// - [`ObjectStore::delete_object`] reports whether the object existed; deleting a missing
///   object is not an error. After it, reads find nothing.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// The store's kind, as recorded in [`StoredObject::backend`](crate::recording::StoredObject::backend) (`filesystem`, `s3`).
    fn backend(&self) -> &'static str;

    /// The full location of an object, as recorded in [`StoredObject::location`](crate::recording::StoredObject::location).
    fn location(&self, tenant_id: &TenantId, key: &ObjectKey) -> String;

    /// Stores an object whose bytes come from `source`, at most `max_bytes` of them, with the
    /// media type `content_type`; returns its size and checksum.
    ///
    /// # Errors
    /// [`PutError::TooLarge`] past `max_bytes`; [`PutError::Source`] if the source fails;
    /// [`PutError::Store`] ([`StoreError::Unavailable`]) if the backend does. Nothing is stored
    /// then.
    async fn put_stream(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        content_type: &str,
        source: &mut dyn ByteSource,
        max_bytes: u64,
    ) -> std::result::Result<WrittenObject, PutError>;

    /// Reads an object whole, `None` if there is none (small objects; a reader of media uses
    /// [`ObjectStore::get_range`]).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn get_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> std::result::Result<Option<ObjectBody>, StoreError>;

    /// Streams a range of an object, `None` if there is none.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed (also from the stream, midway).
    async fn get_range(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
        range: ByteRange,
    ) -> std::result::Result<Option<ObjectRange>, StoreError>;

    /// Deletes an object; `true` if it existed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn delete_object(
        &self,
        tenant_id: &TenantId,
        key: &ObjectKey,
    ) -> std::result::Result<bool, StoreError>;

    /// Whether the backend answers (for readiness probes).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if it does not.
    async fn ping(&self) -> std::result::Result<(), StoreError>;

    /// A URL from which a client may read the object directly, for `valid_for`, the answers
    /// carrying `content_type` and `content_disposition`; `None` when the backend hands out no
    /// such URLs (the default; the filesystem and memory stores). No I/O: a signature.
    fn direct_read_url(
        &self,
        _tenant_id: &TenantId,
        _key: &ObjectKey,
        _valid_for: std::time::Duration,
        _response_headers: DirectReadHeaders<'_>,
    ) -> Option<String> {
        None
    }
}
