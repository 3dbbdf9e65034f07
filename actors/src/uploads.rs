//! What every upload and every object read shares, whatever it stores (recorded media, users'
//! media): how long a store or object operation may take, and a body source that gives up on a
//! client that stalls or trickles, so that no upload holds its permit and its claim for long.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use switchboard_engine::blob::ByteSource;
use switchboard_engine::{Error, SourceError, StoreError};

/// How long one object store operation (opening a download, a delete) may take.
pub const OBJECT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an upload may go without a byte from its client before it fails.
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest average an upload may keep once [`UPLOAD_RATE_GRACE`] has passed: a long
/// recording over a slow link takes what it takes, but a client that trickles a byte now and
/// then (under the idle timeout) cannot hold a transfer permit for hours.
pub const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 16 * 1024;

/// How long an upload runs before [`MIN_UPLOAD_BYTES_PER_SECOND`] applies (a slow start, a
/// retried TCP connection).
pub const UPLOAD_RATE_GRACE: Duration = Duration::from_secs(60);

/// Runs a store call, reporting it `unavailable` if it takes longer than `timeout`.
pub(crate) async fn bounded<Output>(
    timeout: Duration,
    what: &'static str,
    work: impl Future<Output = Result<Output, StoreError>>,
) -> Result<Output, Error> {
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(Error::from),
        Err(_) => Err(Error::unavailable(format!("{what} timed out"))),
    }
}

/// A source that fails when its client sends nothing for [`UPLOAD_IDLE_TIMEOUT`], or averages
/// less than [`MIN_UPLOAD_BYTES_PER_SECOND`] after [`UPLOAD_RATE_GRACE`], so a stalled or
/// trickling upload does not hold its transfer permit and its claim for long.
pub(crate) struct PacedSource<'source> {
    source: &'source mut dyn ByteSource,
    started_at: tokio::time::Instant,
    n_bytes: u64,
}

impl<'source> PacedSource<'source> {
    pub(crate) fn new(source: &'source mut dyn ByteSource) -> Self {
        PacedSource {
            source,
            started_at: tokio::time::Instant::now(),
            n_bytes: 0,
        }
    }
}

#[async_trait]
impl ByteSource for PacedSource<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        let chunk = match tokio::time::timeout(UPLOAD_IDLE_TIMEOUT, self.source.next_chunk()).await
        {
            Ok(chunk) => chunk?,
            Err(_) => {
                return Err(SourceError::new(format!(
                    "no bytes arrived for {} s",
                    UPLOAD_IDLE_TIMEOUT.as_secs()
                )));
            }
        };
        if let Some(bytes) = &chunk {
            self.n_bytes += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            let elapsed = self.started_at.elapsed();
            let least = u64::try_from(elapsed.as_millis())
                .unwrap_or(u64::MAX)
                .saturating_mul(MIN_UPLOAD_BYTES_PER_SECOND)
                / 1000;
            if elapsed > UPLOAD_RATE_GRACE && self.n_bytes < least {
                return Err(SourceError::new(format!(
                    "the body arrived at less than {} KiB/s on average",
                    MIN_UPLOAD_BYTES_PER_SECOND / 1024
                )));
            }
        }
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests;
