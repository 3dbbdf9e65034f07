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
//! A rebuild ([`SearchIndexerHandle::reindex`]) fills a new generation of the index,
//! [`REBUILD_BATCHES_PER_TICK`] batches per tick after the live index's own work, while the
//! live generation goes on answering searches and taking new entries. A rebuild of every
//! tenant starts empty and reads the log from its start. A rebuild of one tenant starts from a
//! copy of the live generation without that tenant's documents (at the live checkpoint `C`),
//! reads that tenant's entries up to `C` again, then goes on as the other kind does from `C`:
//! every other tenant's documents are kept as they were, not read again. When the new
//! generation has read to the head of the log (which is at or past the live one, since the
//! live one was indexed first in the same tick), the indexer promotes it durably and makes it
//! live in one step: being the one writer, no entry can fall between the two generations.
//! One rebuild runs at a time on a node.

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
use super::niced::NicedWorker;
use crate::reply::call_within;

/// How many full batches one tick applies to a generation being rebuilt.
pub const REBUILD_BATCHES_PER_TICK: usize = 16;

/// How far a rebuild has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Whose documents it reads again from the log (the others are copied as they are).
    pub scope: TailScope,
    /// The generation being built.
    pub generation: u64,
    /// Where it is.
    pub state: RebuildState,
    /// Log entries read into it so far.
    pub entries: u64,
    /// The log position it has read to (for one tenant's rebuild: first that tenant's
    /// entries, up to where the copy it started from stood, then everyone's).
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

/// Why a rebuild was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildRefused {
    /// A rebuild of another scope is running on this node.
    Busy,
    /// The new generation could not be made (the reason).
    Failed(String),
}

/// How many finished rebuilds the indexer remembers (the last of each scope, for progress).
pub const FINISHED_REBUILDS_KEPT: usize = 64;

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
    /// Time spent in commits (reading a batch of the log and committing it), in
    /// microseconds.
    pub commit_micros: AtomicU64,
    /// Commits by how long each took: `commit_buckets[i]` counts those that took at most
    /// [`COMMIT_SECONDS_BOUNDS`]`[i]` and longer than the bound before; the last, longer than
    /// every bound.
    pub commit_buckets: [AtomicU64; COMMIT_SECONDS_BOUNDS.len() + 1],
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

/// The upper bounds, in seconds, of the buckets commits are counted in by duration.
pub const COMMIT_SECONDS_BOUNDS: [f64; 13] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

impl IndexerStats {
    /// Counts a commit that took `elapsed`.
    fn count_commit(&self, elapsed: Duration) {
        self.commit_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let seconds = elapsed.as_secs_f64();
        let bucket = COMMIT_SECONDS_BOUNDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(COMMIT_SECONDS_BOUNDS.len());
        self.commit_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
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
    /// The niceness its work runs at (0 to 19; `search.indexer_nice`): every batch runs on a
    /// thread of its own at it ([`super::niced`]).
    pub nice: i32,
}

/// The indexer's messages.
pub enum IndexerMsg {
    /// Read the log (the interval's tick).
    Tick,
    /// Index everything stored so far, then answer the checkpoint reached.
    CatchUp(RpcReplyPort<Result<LogCursor, String>>),
    /// Start rebuilding the scope's documents into a new generation (unless that rebuild is
    /// running: then answer its progress; refused while another scope's runs).
    Reindex(
        TailScope,
        RpcReplyPort<Result<RebuildProgress, RebuildRefused>>,
    ),
    /// Answer the progress of the scope's running or last rebuild, if any.
    Progress(TailScope, RpcReplyPort<Option<RebuildProgress>>),
}

/// Writes the search index from the event log.
pub struct SearchIndexerActor;

/// The indexer's state.
pub struct IndexerState {
    args: IndexerArgs,
    /// The thread its batches run on.
    worker: NicedWorker,
    /// Where the live index stands in the log.
    checkpoint: LogCursor,
    /// The rebuild running, if any.
    rebuild: Option<Rebuild>,
    /// The rebuilds that finished, oldest first, at most [`FINISHED_REBUILDS_KEPT`].
    finished: std::collections::VecDeque<RebuildProgress>,
}

/// A running rebuild.
struct Rebuild {
    /// The generation it fills.
    generation: IndexGeneration,
    progress: RebuildProgress,
    /// For one tenant's rebuild, while it reads that tenant's entries again: the live
    /// checkpoint its copy was made at, which they are read up to.
    tenant_until: Option<LogCursor>,
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

    /// Starts rebuilding the documents of `scope` into a new generation (or answers the
    /// progress of that rebuild if it is already running).
    ///
    /// # Errors
    /// As [`SearchIndexerHandle::catch_up`]; [`crate::Error::Domain`] with a conflict while a
    /// rebuild of another scope runs, unavailable if the new generation cannot be made.
    pub async fn reindex(
        &self,
        scope: TailScope,
        timeout: Duration,
    ) -> crate::Result<RebuildProgress> {
        call_within(
            &self.actor,
            |reply| IndexerMsg::Reindex(scope, reply),
            timeout,
            "the search indexer",
        )
        .await?
        .map_err(|refused| {
            crate::Error::Domain(match refused {
                RebuildRefused::Busy => switchboard_engine::Error::Conflict {
                    reason: "another rebuild of the search index is running on this node; \
                             try again when it is done"
                        .to_owned(),
                },
                RebuildRefused::Failed(reason) => switchboard_engine::Error::unavailable(reason),
            })
        })
    }

    /// The progress of the running rebuild of `scope`, or of its last one; `None` if there was
    /// none.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the indexer does not answer
    /// within `timeout`.
    pub async fn rebuild_progress(
        &self,
        scope: TailScope,
        timeout: Duration,
    ) -> crate::Result<Option<RebuildProgress>> {
        call_within(
            &self.actor,
            |reply| IndexerMsg::Progress(scope, reply),
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

/// What one batch read from the log into an index.
struct BatchRead {
    /// Log entries read.
    entries: usize,
    /// The log position they reach.
    reached: LogCursor,
    /// Changes they made (documents put or removed).
    changes: u64,
    /// Whether the log held no more (or nothing more up to the bound) when read.
    at_end: bool,
}

/// Reads the entries of `scope` after `from` (at most `batch`; with `until`, none past it)
/// into `index`, recording the position they reach as its checkpoint (or `until`, which the
/// index stands at already for the other tenants, when it is given).
async fn index_next(
    store: &Arc<dyn MessageStore>,
    index: &Arc<dyn SearchIndex>,
    scope: &TailScope,
    from: LogCursor,
    until: Option<LogCursor>,
    batch: usize,
) -> Result<BatchRead, StoreError> {
    let mut entries = store.tail(scope, from, batch).await?;
    let mut at_end = entries.len() < batch;
    if let Some(until) = until {
        let before = entries.len();
        entries.retain(|entry| entry.cursor <= until);
        at_end |= entries.len() < before;
    }
    let Some(last) = entries.last() else {
        return Ok(BatchRead {
            entries: 0,
            reached: from,
            changes: 0,
            at_end: true,
        });
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
    index.apply(changes, until.unwrap_or(reached)).await?;
    Ok(BatchRead {
        entries: entries.len(),
        reached,
        changes: n_changes,
        at_end,
    })
}

impl IndexerState {
    /// Applies the next batch of the log to the live index; how many entries it held.
    async fn index_batch(&mut self) -> Result<usize, StoreError> {
        let started = tokio::time::Instant::now();
        let (store, index) = (
            Arc::clone(&self.args.store),
            self.args.index.current().index,
        );
        let (from, batch) = (self.checkpoint, self.args.batch);
        let BatchRead {
            entries: n_entries,
            reached,
            changes: n_changes,
            ..
        } = self
            .worker
            .run(async move {
                index_next(&store, &index, &TailScope::AllTenants, from, None, batch).await
            })
            .await??;
        if n_entries == 0 {
            return Ok(0);
        }
        let stats = &self.args.stats;
        stats.count_commit(started.elapsed());
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
            let (store, from) = (Arc::clone(&self.args.store), self.checkpoint);
            let peeked = self
                .worker
                .run(async move {
                    store
                        .tail(&TailScope::AllTenants, from, LAG_PEEK_ENTRIES)
                        .await
                })
                .await
                .and_then(|peeked| peeked);
            match peeked {
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

    /// Starts a rebuild of `scope` unless it is running (then its progress); refused while
    /// another scope's runs.
    async fn start_rebuild(&mut self, scope: TailScope) -> Result<RebuildProgress, RebuildRefused> {
        if let Some(rebuild) = &self.rebuild {
            return if rebuild.progress.scope == scope {
                Ok(rebuild.progress.clone())
            } else {
                Err(RebuildRefused::Busy)
            };
        }
        let failed = |error: StoreError| RebuildRefused::Failed(error.to_string());
        let (generation, tenant_until) = match &scope {
            TailScope::AllTenants => (self.args.generations.create().await.map_err(failed)?, None),
            TailScope::Tenant(tenant_id) => {
                let live = self.args.index.current().number;
                let copy = self
                    .args
                    .generations
                    .create_without_tenant(live, tenant_id)
                    .await
                    .map_err(failed)?;
                let copied_at = match copy.index.checkpoint().await {
                    Ok(checkpoint) => checkpoint,
                    Err(error) => {
                        let _ = self.args.generations.discard(copy.number).await;
                        return Err(failed(error));
                    }
                };
                (copy, Some(copied_at))
            }
        };
        let progress = RebuildProgress {
            scope,
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
            scope = ?progress.scope,
            "rebuilding the search index"
        );
        self.rebuild = Some(Rebuild {
            generation,
            progress: progress.clone(),
            tenant_until,
        });
        Ok(progress)
    }

    /// Advances the rebuild by up to `max_batches` batches, and makes its generation live once
    /// it has read to the head of the log; whether it has more to do.
    async fn advance_rebuild(&mut self, max_batches: usize) -> bool {
        let Some(rebuild) = &mut self.rebuild else {
            return false;
        };
        rebuild.progress.live_checkpoint = self.checkpoint;
        for _ in 0..max_batches {
            let (scope, from) = match (&rebuild.progress.scope, rebuild.tenant_until) {
                (TailScope::Tenant(tenant_id), Some(_)) => (
                    TailScope::Tenant(tenant_id.clone()),
                    rebuild.progress.checkpoint,
                ),
                _ => (TailScope::AllTenants, rebuild.progress.checkpoint),
            };
            let until = rebuild.tenant_until;
            let (store, index, batch) = (
                Arc::clone(&self.args.store),
                Arc::clone(&rebuild.generation.index),
                self.args.batch,
            );
            let read = self
                .worker
                .run(async move { index_next(&store, &index, &scope, from, until, batch).await })
                .await
                .and_then(|read| read);
            match read {
                Ok(read) => {
                    rebuild.progress.entries += read.entries as u64;
                    rebuild.progress.checkpoint = read.reached;
                    match until {
                        // The tenant's entries are read up to the copy's checkpoint: from
                        // there on, everyone's.
                        Some(until) if read.at_end => {
                            rebuild.progress.checkpoint = until;
                            rebuild.tenant_until = None;
                        }
                        Some(_) => {}
                        None if read.at_end && rebuild.progress.checkpoint >= self.checkpoint => {
                            return self.finish_rebuild().await;
                        }
                        None => {}
                    }
                }
                Err(error) => {
                    self.args.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "rebuilding the search index failed; the next tick retries");
                    rebuild.progress.last_error = Some(error.to_string());
                    return false;
                }
            }
        }
        true
    }

    /// Promotes the rebuilt generation and makes it live; whether there is more to do (only if
    /// the promotion failed and is to be retried).
    async fn finish_rebuild(&mut self) -> bool {
        let Some(mut rebuild) = self.rebuild.take() else {
            return false;
        };
        let number = rebuild.generation.number;
        if let Err(error) = self.args.generations.promote(number).await {
            tracing::warn!(%error, "promoting the rebuilt search index failed; the next tick retries");
            rebuild.progress.last_error = Some(error.to_string());
            self.rebuild = Some(rebuild);
            return false;
        }
        let Rebuild {
            generation,
            mut progress,
            ..
        } = rebuild;
        self.args.stats.generation.store(number, Ordering::Relaxed);
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
            scope = ?progress.scope,
            entries = progress.entries,
            "the rebuilt search index is live"
        );
        self.finished
            .retain(|earlier| earlier.scope != progress.scope);
        if self.finished.len() == FINISHED_REBUILDS_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(progress);
        false
    }

    /// The progress of the running rebuild of `scope`, or of its last one.
    fn progress_of(&self, scope: &TailScope) -> Option<RebuildProgress> {
        match &self.rebuild {
            Some(rebuild) if &rebuild.progress.scope == scope => Some(RebuildProgress {
                live_checkpoint: self.checkpoint,
                ..rebuild.progress.clone()
            }),
            _ => self
                .finished
                .iter()
                .rev()
                .find(|finished| &finished.scope == scope)
                .cloned(),
        }
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
        let worker = NicedWorker::start(args.nice)?;
        myself.send_interval(args.interval, || IndexerMsg::Tick);
        Ok(IndexerState {
            args,
            worker,
            checkpoint,
            rebuild: None,
            finished: std::collections::VecDeque::new(),
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
            IndexerMsg::Reindex(scope, reply) => {
                let started = state.start_rebuild(scope).await;
                if started.is_ok() {
                    let _ = myself.send_message(IndexerMsg::Tick);
                }
                let _ = reply.send(started);
            }
            IndexerMsg::Progress(scope, reply) => {
                let _ = reply.send(state.progress_of(&scope));
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
