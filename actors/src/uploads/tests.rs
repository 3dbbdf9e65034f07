//! An upload's body must keep coming: nothing for a minute, or a trickle below the minimum
//! average after the grace period, fails it; a slow but steady body passes.

use switchboard_engine::recording::ByteSource;

use super::*;

/// Gives `n_chunks` chunks of `chunk_bytes`, one every `every` (on tokio's paused clock).
struct Drip {
    n_chunks: usize,
    chunk_bytes: usize,
    every: Duration,
}

#[async_trait]
impl ByteSource for Drip {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, SourceError> {
        if self.n_chunks == 0 {
            return Ok(None);
        }
        self.n_chunks -= 1;
        tokio::time::sleep(self.every).await;
        Ok(Some(Bytes::from(vec![0_u8; self.chunk_bytes])))
    }
}

/// Reads `source` through the upload's pacing to its end; the bytes read, or the error.
async fn drain(source: &mut dyn ByteSource) -> Result<usize, String> {
    let mut paced = PacedSource::new(source);
    let mut n_bytes = 0;
    while let Some(chunk) = paced
        .next_chunk()
        .await
        .map_err(|error| error.to_string())?
    {
        n_bytes += chunk.len();
    }
    Ok(n_bytes)
}

#[tokio::test(start_paused = true)]
async fn a_trickle_under_the_idle_timeout_fails_after_the_grace_period() {
    let mut trickle = Drip {
        n_chunks: 100,
        chunk_bytes: 1,
        every: Duration::from_secs(59),
    };
    let outcome = drain(&mut trickle).await;
    assert!(
        outcome
            .as_ref()
            .is_err_and(|error| error.contains("KiB/s on average")),
        "{outcome:?}"
    );
    assert_eq!(
        trickle.n_chunks,
        100 - 2,
        "it fails at the first chunk past the grace period"
    );
}

#[tokio::test(start_paused = true)]
async fn silence_fails_at_the_idle_timeout() {
    let mut silent = Drip {
        n_chunks: 1,
        chunk_bytes: 1,
        every: UPLOAD_IDLE_TIMEOUT + Duration::from_secs(1),
    };
    let outcome = drain(&mut silent).await;
    assert!(
        outcome
            .as_ref()
            .is_err_and(|error| error.contains("no bytes arrived")),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_steady_body_passes() {
    // 32 KiB/s for ten minutes.
    let mut steady = Drip {
        n_chunks: 600,
        chunk_bytes: 32 * 1024,
        every: Duration::from_secs(1),
    };
    assert_eq!(drain(&mut steady).await, Ok(600 * 32 * 1024));
}
