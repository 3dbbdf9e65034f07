//! The search indexer: the one actor that writes the search index. It follows the store's
//! event log from the index's own checkpoint, turns each entry into index changes
//! ([`switchboard_engine::search::indexing`]: a message as it is now, an edit read again, a
//! delete removed), and applies each batch together with the log position it reaches, in one
//! commit of the index. So after a crash or a restart it resumes exactly where the index
//! stands: no entry is missed, none applied twice.
//!
//! Batches are bounded by size ([`IndexerArgs::batch`] entries) and by time: the actor reads
//! the log every [`IndexerArgs::interval`], and on a tick drains at most [`BATCHES_PER_TICK`]
//! full batches before it lets its mailbox in again (then it ticks itself at once, so a backlog
//! drains at full speed without starving [`SearchIndexerHandle::catch_up`]). A failing store
//! or index is logged and retried on the next tick; nothing is skipped.
//!
//! A rebuild ([`SearchIndexerHandle::reindex`]) fills a new generation of the index from the
//! start of the log, [`REBUILD_BATCHES_PER_TICK`] batches per tick after the live index's own
//! work, while the live generation goes on answering searches and taking new entries. When the
//! new generation has read to the head of the log (which is at or past the live one, since the
//! live one was indexed first in the same tick), the indexer promotes it durably and makes it
//! live in one step: being the one writer, no entry can fall between the two generations.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::StoreError;
use switchboard_engine::ports::{Clock, LogCursor, MessageStore, TailScope};
use switchboard_engine::search::index::{
    IndexChange, IndexGeneration, SearchIndex, SearchIndexGenerations,
};
use switchboard_engine::search::indexing::{IndexAction, actions_of, change_of};
use switchboard_engine::time::Timestamp;

use super::live::LiveSearchIndex;
use crate::reply::call_within;

/// How many full batches one tick applies to a generation being rebuilt.
pub const REBUILD_BATCHES_PER_TICK: usize = 16;

/// How far a rebuild has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The generation being built.
    pub generation: u64,
    /// Where it is.
    pub state: RebuildState,
    /// Log entries read into it so far.
    pub entries: u64,
    /// The log position it reflects.
    pub checkpoint: LogCursor,
    /// The log position the live generation reflects.
    pub live_checkpoint: LogCursor,
    /// When it began.
    pub started_at: Timestamp,
    /// When it was promoted (or abandoned).
    pub finished_at: Option<Timestamp>,
    /// The last failure of a step (each is retried on the next tick).
    pub last_error: Option<String>,
}

/// Where a rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildState {
    /// Reading the log into the new generation; the old one serves searches.
    Running,
    /// The new generation is live.
    Done,
}

/// How many full batches one tick applies before the actor reads its mailbox again.
pub const BATCHES_PER_TICK: usize = 16;

/// What the indexer has done, for `/metrics`: counters only ever grow, the checkpoint is the
/// log position the index reflects.
#[derive(Debug, Default)]
pub struct IndexerStats {
    /// Changes applied (documents put or removed).
    pub changes: AtomicU64,
    /// Commits of the index.
    pub commits: AtomicU64,
    /// Time spent in commits, in microseconds.
    pub commit_micros: AtomicU64,
    /// Batches that failed (and were retried).
    pub failures: AtomicU64,
    /// The log position the index reflects.
    pub checkpoint: AtomicU64,
    /// The live generation's number.
    pub generation: AtomicU64,
    /// Log entries not yet indexed when the indexer last looked (0 when it had caught up;
    /// counted up to [`LAG_PEEK_ENTRIES`]).
    pub lag_entries: AtomicU64,
    /// How long, in milliseconds, the oldest entry not yet indexed had been stored when the
    /// indexer last looked (0 when it had caught up).
    pub lag_millis: AtomicU64,
}

/// The most entries the indexer reads to measure its lag when it is behind.
pub const LAG_PEEK_ENTRIES: usize = 10_000;

/// What the indexer runs with.
pub struct IndexerArgs {
    /// The store whose event log it follows (and reads edited messages from).
    pub store: Arc<dyn MessageStore>,
    /// The index it writes: the live generation.
    pub index: Arc<LiveSearchIndex>,
    /// Where new generations are made and promoted (rebuilds).
    pub generations: Arc<dyn SearchIndexGenerations>,
    /// Times rebuilds and measures lag.
    pub clock: Arc<dyn Clock>,
    /// The most log entries one commit of the index takes.
    pub batch: usize,
    /// How often it reads the log.
    pub interval: Duration,
    /// Where it counts what it does.
    pub stats: Arc<IndexerStats>,
}

/// The indexer's messages.
pub enum IndexerMsg {
    /// Read the log (the interval's tick).
    Tick,
    /// Index everything stored so far, then answer the checkpoint reached.
    CatchUp(RpcReplyPort<Result<LogCursor, String>>),
    /// Start rebuilding into a new generation (unless a rebuild is running); answer its
    /// progress.
    Reindex(RpcReplyPort<Result<RebuildProgress, String>>),
    /// Answer the progress of the running or last rebuild, if any.
    Progress(RpcReplyPort<Option<RebuildProgress>>),
}

/// Writes the search index from the event log.
pub struct SearchIndexerActor;

/// The indexer's state.
pub struct IndexerState {
    args: IndexerArgs,
    /// Where the live index stands in the log.
    checkpoint: LogCursor,
    /// The rebuild running, if any, with its generation.
    rebuild: Option<(IndexGeneration, RebuildProgress)>,
    /// The last rebuild that finished.
    last_rebuild: Option<RebuildProgress>,
}

/// A running indexer.
#[derive(Clone)]
pub struct SearchIndexerHandle {
    actor: ActorRef<IndexerMsg>,
    stats: Arc<IndexerStats>,
}

impl SearchIndexerHandle {
    /// Starts indexing from the index's checkpoint.
    ///
    /// # Errors
    /// If the actor cannot be spawned or the index's checkpoint cannot be read.
    pub async fn start(args: IndexerArgs) -> Result<Self, ractor::SpawnErr> {
        let stats = Arc::clone(&args.stats);
        let (actor, _) = Actor::spawn(None, SearchIndexerActor, args).await?;
        Ok(Self { actor, stats })
    }

    /// Indexes everything stored so far; the checkpoint reached.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the indexer does not answer
    /// within `timeout`; [`crate::Error::Domain`] (unavailable) if the store or the index
    /// failed.
    pub async fn catch_up(&self, timeout: Duration) -> crate::Result<LogCursor> {
        call_within(
            &self.actor,
            IndexerMsg::CatchUp,
            timeout,
            "the search indexer",
        )
        .await?
        .map_err(|reason| crate::Error::Domain(switchboard_engine::Error::unavailable(reason)))
    }

    /// Starts rebuilding the index into a new generation, from the start of the log (or
    /// answers the progress of the rebuild already running).
    ///
    /// # Errors
    /// As [`SearchIndexerHandle::catch_up`]; unavailable if the new generation cannot be made.
    pub async fn reindex(&self, timeout: Duration) -> crate::Result<RebuildProgress> {
        call_within(
            &self.actor,
            IndexerMsg::Reindex,
            timeout,
            "the search indexer",
        )
        .await?
        .map_err(|reason| crate::Error::Domain(switchboard_engine::Error::unavailable(reason)))
    }

    /// The progress of the running rebuild, or of the last one; `None` if there was none.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the indexer does not answer
    /// within `timeout`.
    pub async fn rebuild_progress(
        &self,
        timeout: Duration,
    ) -> crate::Result<Option<RebuildProgress>> {
        call_within(
            &self.actor,
            IndexerMsg::Progress,
            timeout,
            "the search indexer",
        )
        .await
    }

    /// What the indexer has done so far.
    pub fn stats(&self) -> &IndexerStats {
        &self.stats
    }

    /// Stops indexing.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

/// Reads the log after `from` (at most `batch` entries) into `index`; how many entries were
/// read, where they reach, and how many changes they made.
async fn index_next(
    store: &Arc<dyn MessageStore>,
    index: &Arc<dyn SearchIndex>,
    from: LogCursor,
    batch: usize,
) -> Result<(usize, LogCursor, u64), StoreError> {
    let entries = store.tail(&TailScope::AllTenants, from, batch).await?;
    let Some(last) = entries.last() else {
        return Ok((0, from, 0));
    };
    let reached = last.cursor;
    let mut changes: Vec<IndexChange> = Vec::with_capacity(entries.len());
    for entry in &entries {
        for action in actions_of(&entry.tenant_id, &entry.entry) {
            match action {
                IndexAction::Change(change) => changes.push(change),
                IndexAction::Refresh {
                    tenant_id,
                    conversation_id,
                    message_id,
                } => {
                    let message = store
                        .message_by_id(&tenant_id, conversation_id, message_id)
                        .await?;
                    changes.push(match message {
                        Some(message) => change_of(&tenant_id, &message),
                        None => IndexChange::Remove {
                            tenant_id,
                            conversation_id,
                            message_id,
                        },
                    });
                }
            }
        }
    }
    let n_changes = changes.len() as u64;
    index.apply(changes, reached).await?;
    Ok((entries.len(), reached, n_changes))
}

impl IndexerState {
    /// Applies the next batch of the log to the live index; how many entries it held.
    async fn index_batch(&mut self) -> Result<usize, StoreError> {
        let started = tokio::time::Instant::now();
        let index = self.args.index.current().index;
        let (n_entries, reached, n_changes) =
            index_next(&self.args.store, &index, self.checkpoint, self.args.batch).await?;
        if n_entries == 0 {
            return Ok(0);
        }
        let stats = &self.args.stats;
        stats.commit_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.changes.fetch_add(n_changes, Ordering::Relaxed);
        stats.checkpoint.store(reached.0, Ordering::Relaxed);
        self.checkpoint = reached;
        Ok(n_entries)
    }

    /// Applies up to `max_batches` batches; whether the log may hold more.
    async fn index_batches(&mut self, max_batches: usize) -> Result<bool, StoreError> {
        for _ in 0..max_batches {
            if self.index_batch().await? < self.args.batch {
                self.measure_lag(false).await;
                return Ok(false);
            }
        }
        self.measure_lag(true).await;
        Ok(true)
    }

    /// Records how far behind the log the live index is: nothing if it has just read to the
    /// head, else what a bounded peek at the entries after its checkpoint finds.
    async fn measure_lag(&self, behind: bool) {
        let stats = &self.args.stats;
        let (entries, millis) = if behind {
            match self
                .args
                .store
                .tail(&TailScope::AllTenants, self.checkpoint, LAG_PEEK_ENTRIES)
                .await
            {
                Ok(waiting) => {
                    let oldest = waiting
                        .first()
                        .map_or(self.args.clock.now(), |entry| entry.entry.timestamp());
                    (
                        waiting.len() as u64,
                        self.args.clock.now().0.saturating_sub(oldest.0),
                    )
                }
                Err(_) => return,
            }
        } else {
            (0, 0)
        };
        stats.lag_entries.store(entries, Ordering::Relaxed);
        stats.lag_millis.store(millis, Ordering::Relaxed);
    }

    /// Starts a rebuild unless one is running; its progress.
    async fn start_rebuild(&mut self) -> Result<RebuildProgress, StoreError> {
        if let Some((_, progress)) = &self.rebuild {
            return Ok(progress.clone());
        }
        let generation = self.args.generations.create().await?;
        let progress = RebuildProgress {
            generation: generation.number,
            state: RebuildState::Running,
            entries: 0,
            checkpoint: LogCursor::START,
            live_checkpoint: self.checkpoint,
            started_at: self.args.clock.now(),
            finished_at: None,
            last_error: None,
        };
        tracing::info!(
            generation = generation.number,
            "rebuilding the search index"
        );
        self.rebuild = Some((generation, progress.clone()));
        Ok(progress)
    }

    /// Advances the rebuild by up to `max_batches` batches, and makes its generation live once
    /// it has read to the head of the log; whether it has more to do.
    async fn advance_rebuild(&mut self, max_batches: usize) -> bool {
        let Some((generation, progress)) = &mut self.rebuild else {
            return false;
        };
        progress.live_checkpoint = self.checkpoint;
        for _ in 0..max_batches {
            let read = index_next(
                &self.args.store,
                &generation.index,
                progress.checkpoint,
                self.args.batch,
            )
            .await;
            match read {
                Ok((n_entries, reached, _)) => {
                    progress.entries += n_entries as u64;
                    progress.checkpoint = reached;
                    if n_entries < self.args.batch && progress.checkpoint >= self.checkpoint {
                        return self.finish_rebuild().await;
                    }
                }
                Err(error) => {
                    self.args.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "rebuilding the search index failed; the next tick retries");
                    progress.last_error = Some(error.to_string());
                    return false;
                }
            }
        }
        true
    }

    /// Promotes the rebuilt generation and makes it live; whether there is more to do (only if
    /// the promotion failed and is to be retried).
    async fn finish_rebuild(&mut self) -> bool {
        let Some((generation, mut progress)) = self.rebuild.take() else {
            return false;
        };
        if let Err(error) = self.args.generations.promote(generation.number).await {
            tracing::warn!(%error, "promoting the rebuilt search index failed; the next tick retries");
            progress.last_error = Some(error.to_string());
            self.rebuild = Some((generation, progress));
            return false;
        }
        self.args
            .stats
            .generation
            .store(generation.number, Ordering::Relaxed);
        self.args.index.replace(generation);
        self.checkpoint = progress.checkpoint;
        self.args
            .stats
            .checkpoint
            .store(progress.checkpoint.0, Ordering::Relaxed);
        progress.state = RebuildState::Done;
        progress.live_checkpoint = progress.checkpoint;
        progress.finished_at = Some(self.args.clock.now());
        tracing::info!(
            generation = progress.generation,
            entries = progress.entries,
            "the rebuilt search index is live"
        );
        self.last_rebuild = Some(progress);
        false
    }
}

impl Actor for SearchIndexerActor {
    type Msg = IndexerMsg;
    type State = IndexerState;
    type Arguments = IndexerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<IndexerMsg>,
        args: IndexerArgs,
    ) -> Result<IndexerState, ActorProcessingErr> {
        let live = args.index.current();
        let checkpoint = live.index.checkpoint().await?;
        args.stats.checkpoint.store(checkpoint.0, Ordering::Relaxed);
        args.stats.generation.store(live.number, Ordering::Relaxed);
        myself.send_interval(args.interval, || IndexerMsg::Tick);
        Ok(IndexerState {
            args,
            checkpoint,
            rebuild: None,
            last_rebuild: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<IndexerMsg>,
        message: IndexerMsg,
        state: &mut IndexerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            IndexerMsg::Tick => {
                let live_more = match state.index_batches(BATCHES_PER_TICK).await {
                    Ok(more) => more,
                    Err(error) => {
                        state.args.stats.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, checkpoint = state.checkpoint.0, "indexing failed; the next tick retries");
                        false
                    }
                };
                let rebuild_more = state.advance_rebuild(REBUILD_BATCHES_PER_TICK).await;
                if live_more || rebuild_more {
                    let _ = myself.send_message(IndexerMsg::Tick);
                }
            }
            IndexerMsg::Reindex(reply) => {
                let started = state
                    .start_rebuild()
                    .await
                    .map_err(|error| error.to_string());
                if started.is_ok() {
                    let _ = myself.send_message(IndexerMsg::Tick);
                }
                let _ = reply.send(started);
            }
            IndexerMsg::Progress(reply) => {
                let progress = match &state.rebuild {
                    Some((_, progress)) => Some(RebuildProgress {
                        live_checkpoint: state.checkpoint,
                        ..progress.clone()
                    }),
                    None => state.last_rebuild.clone(),
                };
                let _ = reply.send(progress);
            }
            IndexerMsg::CatchUp(reply) => {
                let result = loop {
                    match state.index_batches(BATCHES_PER_TICK).await {
                        Ok(true) => continue,
                        Ok(false) => break Ok(state.checkpoint),
                        Err(error) => break Err(error.to_string()),
                    }
                };
                let _ = reply.send(result);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
