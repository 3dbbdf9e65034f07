//! The thread the search indexer does its work on: a thread of its own at the indexer's
//! niceness (`search.indexer_nice`), running a current-thread tokio runtime, to which the
//! indexer actor hands each batch (reading the event log, reading edited messages again,
//! building the changes, and for an index in memory analysing the text) and awaits its result.
//!
//! Only the index's writer ran at that niceness before; a profile of a saturated node showed
//! the indexer's reads of the log, run on the server's runtime at normal priority, taking a
//! tenth of the core that serving needed. Linux keeps a niceness per thread and a new thread
//! inherits its creator's, so the blocking threads this runtime starts for the store's reads
//! run at it too.

use std::future::Future;
use std::pin::Pin;

use switchboard_engine::StoreError;
use tokio::sync::{mpsc, oneshot};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A thread at a given niceness that runs futures one after another.
pub(crate) struct NicedWorker {
    jobs: mpsc::UnboundedSender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the search indexer's worker thread has stopped".to_owned())
}

impl NicedWorker {
    /// Starts the thread at niceness `nice` (0 to 19; 0 leaves it as it is). It ends when the
    /// worker is dropped.
    ///
    /// # Errors
    /// If the thread or its runtime cannot be started.
    pub(crate) fn start(nice: i32) -> std::io::Result<Self> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("search-indexer-io")
            .build()?;
        std::thread::Builder::new()
            .name("search-indexer".to_owned())
            .spawn(move || {
                if nice != 0
                    && let Err(error) = rustix::process::setpriority_process(None, nice)
                {
                    tracing::warn!(%error, nice, "the search indexer keeps the default niceness");
                }
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        job.await;
                    }
                });
            })?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the thread and answers its output.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the thread has stopped.
    pub(crate) async fn run<Output: Send + 'static>(
        &self,
        work: impl Future<Output = Output> + Send + 'static,
    ) -> Result<Output, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::pin(async move {
                let _ = answer.send(work.await);
            }))
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())
    }
}

#[cfg(test)]
mod tests {
    //! The worker runs futures on its own thread, at its niceness.

    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_thread_of_its_own_at_its_niceness() {
        let worker = NicedWorker::start(7).expect("started");
        let (thread, nice) = worker
            .run(async {
                (
                    std::thread::current().name().map(str::to_owned),
                    rustix::process::getpriority_process(None).expect("read"),
                )
            })
            .await
            .expect("ran");
        assert_eq!(thread.as_deref(), Some("search-indexer"));
        assert_eq!(nice, 7);
        let blocking_nice = worker
            .run(async {
                tokio::task::spawn_blocking(|| {
                    rustix::process::getpriority_process(None).expect("read")
                })
                .await
                .expect("joined")
            })
            .await
            .expect("ran");
        assert_eq!(blocking_nice, 7, "the store's blocking reads inherit it");
    }
}
