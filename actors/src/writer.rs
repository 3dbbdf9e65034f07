//! The persistence writer: one actor that group-commits appends for every conversation.
//!
//! Conversation actors hand it [`PendingAppend`]s and carry on. The writer collects whatever has
//! arrived, appends it to storage as one batch with one durable commit, and reports each
//! conversation's results back to it in one message. While a commit is running, new appends
//! wait in the mailbox; the next batch takes all of them. Batches therefore grow with load and
//! shrink to a single message when the system is quiet, without a timer: the commit itself is
//! the batching delay.
//!
//! Every pending append carries an [`AppendReceipt`]. If the writer fails or stops with appends
//! unreported, dropping their receipts reports them as failed, so a conversation never waits
//! forever on an append nobody will finish.

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::conversation::{AppendResult, AppendTicket};
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};

use crate::conversation::{ConversationMsg, report_persisted};
use crate::reply::call_within;
use crate::restart::SharedActorRef;

/// Reports one append's result to its conversation exactly once: explicitly, or as a failure
/// when dropped unreported.
pub struct AppendReceipt {
    ticket: AppendTicket,
    conversation: Option<ActorRef<ConversationMsg>>,
}

impl AppendReceipt {
    /// A receipt for `ticket` that reports to `conversation`.
    pub fn new(ticket: AppendTicket, conversation: ActorRef<ConversationMsg>) -> Self {
        AppendReceipt {
            ticket,
            conversation: Some(conversation),
        }
    }

    fn take(mut self) -> (AppendTicket, Option<ActorRef<ConversationMsg>>) {
        (self.ticket, self.conversation.take())
    }
}

impl Drop for AppendReceipt {
    fn drop(&mut self) {
        if let Some(conversation) = self.conversation.take() {
            report_persisted(&conversation, vec![(self.ticket, AppendResult::Failed)]);
        }
    }
}

/// One message to append, and where to report the result.
pub struct PendingAppend {
    /// What to store.
    pub entry: AppendEntry,
    /// Who to tell.
    pub receipt: AppendReceipt,
}

/// The writer's messages.
// `Flush` is small and rare; boxing `Append` would add an allocation to every message on the
// hot path to save bytes only while a flush is queued.
#[allow(clippy::large_enum_variant)]
pub enum WriterMsg {
    /// Queue an append for the next batch.
    Append(PendingAppend),
    /// Commit what is queued (sent by the writer to itself).
    Flush,
    /// Commit everything that arrived before this message, then reply.
    Fence(RpcReplyPort<()>),
}

/// The writer's configuration.
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// The most entries one commit takes.
    pub max_batch: usize,
    /// How long one storage append may take before it is reported failed.
    pub append_timeout: Duration,
}

/// What the writer starts with.
pub struct WriterArgs {
    /// The store to append to.
    pub store: Arc<dyn MessageStore>,
    /// Batch size and timeout.
    pub settings: WriterSettings,
}

/// The writer's state: what is queued for the next batch.
pub struct WriterState {
    store: Arc<dyn MessageStore>,
    settings: WriterSettings,
    queue: Vec<PendingAppend>,
    /// Whether a `Flush` is already in the mailbox.
    flush_scheduled: bool,
}

/// The group-commit writer actor.
pub struct WriterActor;

impl Actor for WriterActor {
    type Msg = WriterMsg;
    type State = WriterState;
    type Arguments = WriterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WriterMsg>,
        args: WriterArgs,
    ) -> Result<WriterState, ActorProcessingErr> {
        Ok(WriterState {
            store: args.store,
            settings: args.settings,
            queue: Vec::new(),
            flush_scheduled: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WriterMsg>,
        message: WriterMsg,
        state: &mut WriterState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WriterMsg::Append(pending) => {
                state.queue.push(pending);
                if !state.flush_scheduled {
                    state.flush_scheduled = true;
                    myself.cast(WriterMsg::Flush)?;
                }
            }
            WriterMsg::Flush => {
                state.flush_scheduled = false;
                let n_take = state.queue.len().min(state.settings.max_batch.max(1));
                let batch: Vec<PendingAppend> = state.queue.drain(..n_take).collect();
                if !state.queue.is_empty() {
                    state.flush_scheduled = true;
                    myself.cast(WriterMsg::Flush)?;
                }
                commit(state, batch).await;
            }
            WriterMsg::Fence(reply) => {
                // Every append sent before the fence is in the queue or already committed.
                while !state.queue.is_empty() {
                    let n_take = state.queue.len().min(state.settings.max_batch.max(1));
                    let batch: Vec<PendingAppend> = state.queue.drain(..n_take).collect();
                    commit(state, batch).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<WriterMsg>,
        state: &mut WriterState,
    ) -> Result<(), ActorProcessingErr> {
        // A graceful stop (drain) commits whatever is still queued.
        while !state.queue.is_empty() {
            let n_take = state.queue.len().min(state.settings.max_batch.max(1));
            let batch: Vec<PendingAppend> = state.queue.drain(..n_take).collect();
            commit(state, batch).await;
        }
        Ok(())
    }
}

/// Commits slower than this are logged as warnings: every message in them waited that long.
const SLOW_COMMIT: Duration = Duration::from_millis(50);

/// One conversation's results from a batch, and where to send them.
type ConversationReport = (ActorRef<ConversationMsg>, Vec<(AppendTicket, AppendResult)>);

async fn commit(state: &WriterState, batch: Vec<PendingAppend>) {
    if batch.is_empty() {
        return;
    }
    let n_entries = batch.len();
    let mut entries = Vec::with_capacity(n_entries);
    let mut receipts = Vec::with_capacity(n_entries);
    for pending in batch {
        entries.push(pending.entry);
        receipts.push(pending.receipt);
    }
    let commit_started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(state.settings.append_timeout, state.store.append(entries))
        .await
        .unwrap_or_else(|_| {
            Err(switchboard_engine::StoreError::Unavailable(
                "append timed out".to_owned(),
            ))
        });
    let results: Vec<AppendResult> = match outcome {
        Ok(outcomes) if outcomes.len() == n_entries => outcomes
            .into_iter()
            .map(|outcome| match outcome {
                AppendOutcome::Stored {
                    seq,
                    completed,
                    rewritten,
                } => AppendResult::Stored(seq, completed, rewritten),
                AppendOutcome::DuplicateClientId { existing } => AppendResult::Duplicate(existing),
                AppendOutcome::Refused { error } => AppendResult::Refused(error),
            })
            .collect(),
        Ok(outcomes) => {
            tracing::error!(
                n_entries,
                n_outcomes = outcomes.len(),
                "storage returned the wrong number of append outcomes"
            );
            vec![AppendResult::Failed; n_entries]
        }
        Err(error) => {
            tracing::warn!(%error, n_entries, "append batch failed");
            vec![AppendResult::Failed; n_entries]
        }
    };
    let commit_time = commit_started.elapsed();
    if commit_time >= SLOW_COMMIT {
        tracing::warn!(n_entries, ?commit_time, "slow commit");
    } else {
        tracing::trace!(n_entries, ?commit_time, "committed append batch");
    }
    // One report per conversation, results in append order.
    let mut reports: HashMap<ActorId, ConversationReport> = HashMap::default();
    for (receipt, result) in receipts.into_iter().zip(results) {
        let (ticket, conversation) = receipt.take();
        let Some(conversation) = conversation else {
            continue;
        };
        reports
            .entry(conversation.get_id())
            .or_insert_with(|| (conversation, Vec::new()))
            .1
            .push((ticket, result));
    }
    for (conversation, results) in reports.into_values() {
        report_persisted(&conversation, results);
    }
}

/// A handle to the current writer. The root supervisor swaps the actor behind it when it
/// restarts the writer, so holders never keep a reference to a dead one.
#[derive(Clone)]
pub struct WriterHandle {
    current: SharedActorRef<WriterMsg>,
}

impl WriterHandle {
    /// A handle to `writer`.
    pub fn new(writer: ActorRef<WriterMsg>) -> Self {
        WriterHandle {
            current: SharedActorRef::new(writer),
        }
    }

    /// Points the handle at a restarted writer.
    pub fn replace(&self, writer: ActorRef<WriterMsg>) {
        self.current.replace(writer);
    }

    /// The current writer actor.
    pub fn actor(&self) -> ActorRef<WriterMsg> {
        self.current.get()
    }

    /// Waits until everything queued before this call is committed.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the writer does not confirm.
    pub async fn fence(&self, timeout: Duration) -> crate::Result<()> {
        call_within(&self.actor(), WriterMsg::Fence, timeout, "the writer").await
    }

    /// Queues an append. If the writer is gone, the receipt reports the append as failed.
    pub fn append(&self, pending: PendingAppend) {
        // On failure the message (and its receipt) is dropped here, which reports the failure.
        let _ = self.actor().cast(WriterMsg::Append(pending));
    }
}
