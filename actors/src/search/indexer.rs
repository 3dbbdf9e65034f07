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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::StoreError;
use switchboard_engine::ports::{LogCursor, MessageStore, TailScope};
use switchboard_engine::search::index::{IndexChange, SearchIndex};
use switchboard_engine::search::indexing::{IndexAction, actions_of, change_of};

use crate::reply::call_within;

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
}

/// What the indexer runs with.
pub struct IndexerArgs {
    /// The store whose event log it follows (and reads edited messages from).
    pub store: Arc<dyn MessageStore>,
    /// The index it writes.
    pub index: Arc<dyn SearchIndex>,
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
}

/// Writes the search index from the event log.
pub struct SearchIndexerActor;

/// The indexer's state.
pub struct IndexerState {
    args: IndexerArgs,
    /// Where the index stands in the log.
    checkpoint: LogCursor,
}

/// A running indexer.
#[derive(Clone)]
pub struct SearchIndexerHandle {
    actor: ActorRef<IndexerMsg>,
}

impl SearchIndexerHandle {
    /// Starts indexing from the index's checkpoint.
    ///
    /// # Errors
    /// If the actor cannot be spawned or the index's checkpoint cannot be read.
    pub async fn start(args: IndexerArgs) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, SearchIndexerActor, args).await?;
        Ok(Self { actor })
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

    /// Stops indexing.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

impl IndexerState {
    /// Applies the next batch of the log; how many entries it held.
    async fn index_batch(&mut self) -> Result<usize, StoreError> {
        let entries = self
            .args
            .store
            .tail(&TailScope::AllTenants, self.checkpoint, self.args.batch)
            .await?;
        let Some(last) = entries.last() else {
            return Ok(0);
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
                        let message = self
                            .args
                            .store
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
        let started = tokio::time::Instant::now();
        self.args.index.apply(changes, reached).await?;
        let stats = &self.args.stats;
        stats.commit_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.changes.fetch_add(n_changes, Ordering::Relaxed);
        stats.checkpoint.store(reached.0, Ordering::Relaxed);
        self.checkpoint = reached;
        Ok(entries.len())
    }

    /// Applies up to `max_batches` batches; whether the log may hold more.
    async fn index_batches(&mut self, max_batches: usize) -> Result<bool, StoreError> {
        for _ in 0..max_batches {
            if self.index_batch().await? < self.args.batch {
                return Ok(false);
            }
        }
        Ok(true)
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
        let checkpoint = args.index.checkpoint().await?;
        args.stats.checkpoint.store(checkpoint.0, Ordering::Relaxed);
        myself.send_interval(args.interval, || IndexerMsg::Tick);
        Ok(IndexerState { args, checkpoint })
    }

    async fn handle(
        &self,
        myself: ActorRef<IndexerMsg>,
        message: IndexerMsg,
        state: &mut IndexerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            IndexerMsg::Tick => match state.index_batches(BATCHES_PER_TICK).await {
                Ok(true) => {
                    let _ = myself.send_message(IndexerMsg::Tick);
                }
                Ok(false) => {}
                Err(error) => {
                    state.args.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, checkpoint = state.checkpoint.0, "indexing failed; the next tick retries");
                }
            },
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
