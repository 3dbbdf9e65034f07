//! What every [`ObjectStore`](switchboard_engine::blob::ObjectStore) adapter does the
//! same way while it streams an object in: count the bytes against the caller's limit as each
//! chunk arrives ([`Intake`]), and hash them as they go by ([`Checksum`]), so that the size and
//! SHA-256 an adapter reports are those of the bytes it was given, and no adapter reads more
//! than one chunk past the limit. The hash is ring's, whose assembly runs at about a GB/s per
//! core even in debug builds (RustCrypto's `sha2` manages 20 MB/s there, which would make every
//! test upload slow).

use bytes::Bytes;
use ring::digest::{Context, SHA256};
use switchboard_engine::PutError;
use switchboard_engine::recording::{ByteSource, WrittenObject};

/// Pulls chunks from a source and refuses the one that takes the total past the limit.
pub(crate) struct Intake<'source> {
    source: &'source mut dyn ByteSource,
    max_bytes: u64,
    n_received: u64,
}

impl<'source> Intake<'source> {
    pub(crate) fn new(source: &'source mut dyn ByteSource, max_bytes: u64) -> Self {
        Self {
            source,
            max_bytes,
            n_received: 0,
        }
    }

    /// The next chunk, `None` at the end of the source.
    ///
    /// # Errors
    /// [`PutError::TooLarge`] once the bytes received pass the limit (the source is not read
    /// again); [`PutError::Source`] if the source fails.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Bytes>, PutError> {
        let Some(chunk) = self.source.next_chunk().await? else {
            return Ok(None);
        };
        self.n_received = self
            .n_received
            .saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        if self.n_received > self.max_bytes {
            return Err(PutError::TooLarge {
                limit: self.max_bytes,
                received: self.n_received,
            });
        }
        Ok(Some(chunk))
    }
}

/// The size and SHA-256 of the bytes fed to it.
pub(crate) struct Checksum {
    digest: Context,
    n_bytes: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self {
            digest: Context::new(&SHA256),
            n_bytes: 0,
        }
    }
}

impl Checksum {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.n_bytes += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    }

    pub(crate) fn finish(self) -> WrittenObject {
        WrittenObject {
            bytes: self.n_bytes,
            sha256: hex::encode(self.digest.finish()),
        }
    }
}
