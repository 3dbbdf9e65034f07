//! Keeps an adapter's background task running: restarted, with capped backoff, if it panics.
//!
//! The adapters' tasks (the Kafka persister and reply reader, the Redis bus's subscriber and
//! publisher, the presence heartbeat) loop forever and handle every error they expect; a panic
//! would be a bug, and without this it would silently stop, say, persisting a partition.
//! The storage crate has no actor system, so this is the smallest supervisor that does the
//! job: it logs the panic and starts the task again from its factory. Aborting the returned
//! handle stops the task too.

use std::future::Future;
use std::time::Duration;

use switchboard_engine::backoff::Backoff;
use tokio::task::JoinHandle;

/// How long a restarted task waits: 100 ms, doubling up to 10 s.
const RESTART_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    max: Duration::from_secs(10),
};

/// A random number between 0.0 and 1.0 for [`Backoff::delay`] (`RandomState` is seeded
/// randomly on each call).
pub(crate) fn jitter() -> f64 {
    let random =
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), 0u8);
    // 53 random bits make an f64 in [0, 1) exactly.
    (random >> 11) as f64 / (1u64 << 53) as f64
}

/// Aborts the task it holds when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make()` as a task, and again after each panic (waiting 100 ms, doubling up to 10 s,
/// with jitter).
#[cfg_attr(
    not(any(feature = "kafka", feature = "redis")),
    allow(
        dead_code,
        reason = "only the Kafka and Redis adapters have background tasks"
    )
)]
pub(crate) fn spawn_supervised<Make, Task>(name: &'static str, make: Make) -> JoinHandle<()>
where
    Make: Fn() -> Task + Send + 'static,
    Task: Future<Output = ()> + Send + 'static,
{
    #[allow(clippy::disallowed_methods)] // The supervisor and its child; the caller owns both.
    tokio::spawn(async move {
        let mut restarts = 0u32;
        loop {
            let mut child = AbortOnDrop(tokio::spawn(make()));
            match (&mut child.0).await {
                Err(error) if error.is_panic() => {
                    restarts = restarts.saturating_add(1);
                    tracing::error!(
                        task = name,
                        restarts,
                        "a background task panicked; restarting it"
                    );
                    tokio::time::sleep(RESTART_BACKOFF.delay(restarts - 1, jitter())).await;
                }
                Ok(()) | Err(_) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::spawn_supervised;

    #[tokio::test]
    async fn a_task_that_panics_is_started_again_and_one_that_ends_is_not() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let supervisor = spawn_supervised("test", move || {
            let counted = Arc::clone(&counted);
            async move {
                // Panics on its first two runs, then ends normally.
                if counted.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("a bug");
                }
            }
        });
        supervisor
            .await
            .expect("the supervisor ends when its task does");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
