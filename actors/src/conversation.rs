//! The conversation actor: one per active conversation, owning its
//! [`ConversationCore`](switchboard_engine::conversation::ConversationCore).
//!
//! It is started on demand by the [`conversations`](crate::conversations) supervisor and loads
//! the conversation and its stored head as its first message, after fencing the writer so that
//! nothing an earlier incarnation queued is still on its way. It carries out what the core
//! decides: hands accepted entries (messages, and the events of edits, deletes and reactions,
//! once the operation is authorized against the target message read from storage) to the
//! [`writer`](crate::writer) (storage assigns their seqs, refuses repeated `client_id`s and
//! applies events to their message atomically), fans each entry out the moment storage reports
//! it durable (encoded once, the same bytes pushed to every subscriber's [`Outbound`]), and runs
//! catch-up reads for sessions that joined with `since`. When nothing is joined and nothing is in flight for a while, it asks its supervisor
//! to retire it.
//!
//! Restart safety: all durable state is in storage, so a restarted actor rebuilds itself by
//! loading. Everything volatile is guarded: an unanswered send is rejected as `unavailable` when
//! its [`AckGuard`] drops, and a subscription tells its session when its [`SubscriberLink`]
//! drops, so the session can re-join with `since` and miss nothing.

use std::collections::{BTreeSet, VecDeque};

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::conversation::{
    AppendResult, AppendTicket, CatchUp, CatchUpStep, ConversationCore, PersistReport, SendCheck,
};
use switchboard_engine::event::{AckOutcome, EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::idempotency::RequestShape;
use switchboard_engine::ids::{
    ClientId, ConversationId, MessageId, RequestId, Seq, SessionId, TenantId, UserId,
};
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::{
    ConversationSnapshot, Message, MessageRef, NewMessage, ReadCursors,
};
use switchboard_engine::operations::{
    ConversationEvent, ConversationEventBody, LogEntry, NewOperation,
};
use switchboard_engine::ports::{
    AppendEntry, Clock, ClusterBus, ClusterListener, ClusterNotice, ClusterSubscription,
    MessageStore,
};
use switchboard_engine::recording::{RecordingNotice, RecordingStore};
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::MessageLimits;
use switchboard_engine::{Error, StoreError};
use tokio::time::Instant;

mod calls;
mod handle;

use crate::conversations::{ConversationKey, ConversationsMsg};
use crate::outbound::Outbound;
use crate::session::SessionMsg;
use crate::writer::{AppendReceipt, PendingAppend, WriterHandle};
pub use calls::{CallMsg, CallRequest};
pub use handle::{ConversationHandle, Submission};
use switchboard_engine::call::CallBoard;

/// A member's typing starts are passed on at most once per this many milliseconds.
pub const TYPING_COALESCE_MS: u64 = 3_000;
/// How long after a typing start a client should consider the member stopped if no new start
/// arrives (starts are passed on at most every [`TYPING_COALESCE_MS`], so this is twice that).
pub const TYPING_EXPIRES_MS: u64 = 6_000;

/// How long a loading conversation waits for the writer to commit what earlier incarnations
/// queued.
const FENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Tunables of conversation actors.
#[derive(Debug, Clone, Copy)]
pub struct ConversationSettings {
    /// Limits on message content.
    pub message_limits: MessageLimits,
    /// How long a conversation stays loaded with nothing joined and nothing in flight.
    pub idle_stop_after: Duration,
    /// How many messages one catch-up read takes from storage.
    pub catch_up_page_size: usize,
    /// How many recent encoded messages are kept to serve short catch-ups without storage.
    pub recent_frames: usize,
    /// How long a call rings before it ends unanswered.
    pub call_ringing_timeout: Duration,
    /// How long a call participant whose sessions all went away stays in the call.
    pub call_disconnect_grace: Duration,
    /// How long participants have to consent to a recording.
    pub call_recording_consent_timeout: Duration,
}

/// What every conversation actor shares.
pub struct ConversationContext {
    /// Durable storage.
    pub store: Arc<dyn MessageStore>,
    /// Turns events into wire frames.
    pub encoder: Arc<dyn EventEncoder>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// The group-commit writer.
    pub writer: WriterHandle,
    /// The most members a conversation may have.
    pub max_members: usize,
    /// Tunables.
    pub settings: ConversationSettings,
    /// How this node tells the other nodes of a scale-out deployment what it stored, and hears
    /// what they stored (`None` on a single node).
    pub cluster: Option<Arc<dyn ClusterBus>>,
    /// Where each recording's metadata (its consent trail, start and stop) is kept.
    pub recordings: Arc<dyn RecordingStore>,
}

/// What a finished send reports to an HTTP caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    /// The stored message.
    pub message_ref: MessageRef,
    /// Whether this request created it (false for a repeated `client_id`).
    pub created: bool,
}

/// Where a send's final acknowledgement goes.
pub enum AckTarget {
    /// A WebSocket session: an `ack` frame into its outbound queue.
    Session {
        /// The session's queue.
        outbound: Outbound,
        /// The request id to echo.
        request_id: Option<RequestId>,
        /// The send's idempotency key.
        client_id: ClientId,
        /// How to encode the ack frame.
        encoder: Arc<dyn EventEncoder>,
        /// Records the session's access denials.
        security: Arc<crate::security::CallerSecurity>,
    },
    /// An RPC caller (the HTTP API).
    Reply(RpcReplyPort<Result<SendReceipt, Error>>),
    /// Nobody waits (a record the actor stores itself, such as a call's start or end); a
    /// failure is logged.
    Record(&'static str),
}

/// A send's pending acknowledgement. Finishing it delivers the final ack; dropping it
/// unfinished (the conversation stopped or crashed) rejects the send as `unavailable`, so every
/// send ends in exactly one final ack.
pub struct AckGuard {
    target: Option<AckTarget>,
    duplicate: bool,
}

impl AckGuard {
    /// A guard for `target`.
    pub fn new(target: AckTarget) -> Self {
        AckGuard {
            target: Some(target),
            duplicate: false,
        }
    }

    fn mark_duplicate(&mut self) {
        self.duplicate = true;
    }

    /// Delivers the final outcome.
    pub fn finish(mut self, outcome: AckOutcome) {
        if let Some(target) = self.target.take() {
            deliver_ack(target, outcome, !self.duplicate);
        }
    }
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            deliver_ack(
                target,
                AckOutcome::Rejected(Error::unavailable(
                    "the conversation restarted; retry with the same client_id",
                )),
                false,
            );
        }
    }
}

fn deliver_ack(target: AckTarget, outcome: AckOutcome, created: bool) {
    match target {
        AckTarget::Session {
            outbound,
            request_id,
            client_id,
            encoder,
            security,
        } => {
            if let AckOutcome::Rejected(error) = &outcome {
                security.refused(error);
            }
            let frame = encoder.encode(&ServerEvent::Ack {
                request_id: request_id.as_ref(),
                client_id: &client_id,
                outcome: &outcome,
            });
            // A closed queue means the client is gone; it will resend with the same client_id.
            let _ = outbound.push(frame);
        }
        AckTarget::Reply(reply) => {
            let result = match outcome {
                AckOutcome::Delivered(message_ref) => Ok(SendReceipt {
                    message_ref,
                    created,
                }),
                AckOutcome::Rejected(error) => Err(error),
                AckOutcome::Pending => return,
            };
            let _ = reply.send(result);
        }
        AckTarget::Record(what) => {
            if let AckOutcome::Rejected(error) = outcome {
                tracing::warn!(%error, what, "a record could not be stored");
            }
        }
    }
}

/// A request to subscribe a session.
pub struct JoinRequest {
    /// The joining session.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: UserId,
    /// Replay everything after this seq first.
    pub since: Option<Seq>,
    /// The request id to echo in `joined`.
    pub request_id: Option<RequestId>,
    /// Whether to send the `joined` frame (false for a silent re-join after a restart).
    pub announce: bool,
    /// The session's queue.
    pub outbound: Outbound,
    /// The session actor, told if the subscription is lost.
    pub session: Option<ActorRef<SessionMsg>>,
}

/// Where a join's answer goes: the head and this actor, or why the join was refused.
pub type JoinReply = RpcReplyPort<Result<(Seq, ActorRef<ConversationMsg>), Error>>;

/// A request to change the conversation itself.
pub struct ChangeRequest {
    /// Who asks.
    pub actor_id: UserId,
    /// The idempotency key.
    pub client_id: ClientId,
    /// What to change.
    pub change: ConversationChange,
    /// Where the final ack goes.
    pub ack: AckGuard,
}

/// A request to move a member's receipt cursors.
pub struct ReceiptRequest {
    /// The member.
    pub user_id: UserId,
    /// Read through this seq.
    pub read: Option<Seq>,
    /// Delivered through this seq.
    pub delivered: Option<Seq>,
    /// The session that asked: it answers its client itself, so the broadcast skips it.
    pub session_id: Option<SessionId>,
}

/// The conversation actor's messages.
pub enum ConversationMsg {
    /// Load from storage (the first message, sent to itself).
    Load,
    /// Subscribe a session.
    Join {
        /// Who joins.
        request: Box<JoinRequest>,
        /// Gets the head and this actor, or why the join was refused.
        reply: JoinReply,
    },
    /// Unsubscribe a session; with `reply_to`, push a `left` frame into that queue.
    Leave {
        /// The leaving session.
        session_id: SessionId,
        /// Where to confirm, and the request id to echo.
        reply_to: Option<(Outbound, Option<RequestId>)>,
    },
    /// Send a message.
    Send {
        /// The sender.
        sender_id: UserId,
        /// What to send.
        new_message: NewMessage,
        /// Where the final ack goes.
        ack: AckGuard,
    },
    /// Edit, delete or react to a message (same acknowledgement lifecycle as `Send`).
    Operate {
        /// Who asks.
        actor_id: UserId,
        /// What to do.
        new_operation: NewOperation,
        /// Where the final ack goes.
        ack: AckGuard,
    },
    /// Change the conversation itself: members, roles, profile, archive, moderation (same
    /// acknowledgement lifecycle as `Send`).
    Change(Box<ChangeRequest>),
    /// A member started or stopped typing: coalesced and passed on to the other members'
    /// sessions, never stored.
    Typing {
        /// Who.
        user_id: UserId,
        /// Started (true) or stopped.
        started: bool,
        /// The typing session's queue (for an error frame) and the request id.
        reply_to: (Outbound, Option<RequestId>),
    },
    /// Call signalling and its timers: a closed enum of its own, handled by [`calls`] in the
    /// actor's order with everything else (see [`CallMsg`]).
    Call(CallMsg),
    /// Something happened to a recording outside the seq stream (its media was stored, or it
    /// was erased): the joined sessions are told.
    Recording(Box<RecordingNotice>),
    /// Hide a message for one member (delete "for me").
    Hide {
        /// The member.
        user_id: UserId,
        /// The message.
        message_id: MessageId,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), Error>>,
    },
    /// Move a member's receipt cursors forward and tell the conversation.
    Receipt {
        /// Whose cursors, and how far.
        request: Box<ReceiptRequest>,
        /// Gets the cursors now, or why not.
        reply: RpcReplyPort<Result<ReadCursors, Error>>,
    },
    /// Return the conversation if `user_id` is a member.
    Inspect {
        /// The asking user.
        user_id: UserId,
        /// The snapshot, or why not.
        reply: RpcReplyPort<Result<ConversationSnapshot, Error>>,
    },
    /// Storage results from the writer, in append order.
    Persisted(Vec<(AppendTicket, AppendResult)>),
    /// A page read for a catch-up.
    CatchUpPage {
        /// The catch-up the page was read for.
        catch_up: CatchUp,
        /// The page, oldest first, or the read error.
        page: Result<Vec<LogEntry>, StoreError>,
        /// How many times this read has failed before.
        n_failures: u32,
    },
    /// Read the stored head again after a failed append, or when another node may have stored
    /// entries this actor did not hear of (the cluster bus reconnected).
    Resync,
    /// Another node of the deployment stored entries of this conversation, or passed on a
    /// member's typing.
    Cluster(ClusterNotice),
    /// Periodic idleness check.
    IdleTick,
}

/// A subscribed session's delivery path. Dropping it while armed (the actor stopped or
/// crashed) tells the session, which re-joins from `last_pushed`.
struct SubscriberLink {
    outbound: Outbound,
    /// The session's user (whose hidden messages it must not see).
    user_id: UserId,
    session: Option<ActorRef<SessionMsg>>,
    conversation_id: ConversationId,
    /// The last seq pushed into `outbound`.
    last_pushed: Seq,
    armed: bool,
}

impl Drop for SubscriberLink {
    fn drop(&mut self) {
        if self.armed
            && let Some(session) = &self.session
        {
            let _ = session.cast(SessionMsg::SubscriptionLost {
                conversation_id: self.conversation_id,
                last_seq: self.last_pushed,
            });
        }
    }
}

/// A loaded conversation.
pub struct Ready {
    core: ConversationCore<AckGuard>,
    links: HashMap<SessionId, SubscriberLink>,
    /// Receipt cursors of the members who reported any since this actor loaded.
    cursors: HashMap<UserId, ReadCursors>,
    /// When each member's last passed-on `typing` start was, for coalescing.
    typing: HashMap<UserId, Timestamp>,
    /// The conversation's call.
    calls: CallBoard,
    /// Call participants without a session here whose grace period is running.
    call_grace: BTreeSet<UserId>,
    /// Recording metadata to write before the next message is handled, in order.
    recording_writes: Vec<calls::RecordingWrite>,
    /// The messages each joined (or hiding) member deleted for themself, loaded on their first
    /// join. Entries about them reach that member as `skipped`.
    hidden: HashMap<UserId, BTreeSet<MessageId>>,
    /// The last few committed entries, encoded, with the message each is about, for catch-ups
    /// that need no storage read.
    recent_frames: VecDeque<(Seq, Option<MessageId>, EncodedFrame)>,
    last_activity: Instant,
    /// This actor's registration on the cluster bus; dropping it (with the actor) unsubscribes.
    _cluster_subscription: Option<ClusterSubscription>,
}

/// Hands the cluster bus's notices about one conversation to its actor's mailbox.
struct ClusterMailbox(ActorRef<ConversationMsg>);

impl ClusterListener for ClusterMailbox {
    fn notice(&self, notice: ClusterNotice) {
        let _ = self.0.cast(ConversationMsg::Cluster(notice));
    }

    fn reconnected(&self) {
        let _ = self.0.cast(ConversationMsg::Resync);
    }
}

/// The conversation actor's state.
pub enum ConversationState {
    /// Waiting for the `Load` message.
    Loading,
    /// Loaded and serving.
    Ready(Box<Ready>),
    /// Storage has no such conversation in this tenant (or could not be read); every request
    /// is refused with this error until the actor retires.
    Refusing(Error),
}

/// What a conversation actor starts with.
pub struct ConversationArgs {
    /// The conversation's tenant and id.
    pub key: ConversationKey,
    /// Shared services.
    pub context: Arc<ConversationContext>,
    /// The supervisor to ask for retirement.
    pub supervisor: ActorRef<ConversationsMsg>,
}

/// The conversation actor.
pub struct ConversationActor {
    key: ConversationKey,
    context: Arc<ConversationContext>,
    supervisor: ActorRef<ConversationsMsg>,
}

impl ConversationActor {
    /// The actor for one conversation; `args` are passed again to `spawn`.
    pub fn new(args: &ConversationArgs) -> Self {
        ConversationActor {
            key: args.key.clone(),
            context: Arc::clone(&args.context),
            supervisor: args.supervisor.clone(),
        }
    }

    fn tenant_id(&self) -> &TenantId {
        &self.key.tenant_id
    }

    fn conversation_id(&self) -> ConversationId {
        self.key.conversation_id
    }

    fn retire(&self, myself: &ActorRef<ConversationMsg>) {
        let _ = self.supervisor.cast(ConversationsMsg::Retire {
            key: self.key.clone(),
            actor_id: myself.get_id(),
        });
    }

    async fn load(&self, myself: &ActorRef<ConversationMsg>) -> Result<Ready, Error> {
        // Registered before anything is read, so an entry another node stores after the reads
        // below is always heard of.
        let cluster_subscription = self.context.cluster.as_ref().map(|cluster| {
            cluster.subscribe(
                self.tenant_id(),
                self.conversation_id(),
                Arc::new(ClusterMailbox(myself.clone())),
            )
        });
        let store = &self.context.store;
        let snapshot = store
            .load_conversation(self.tenant_id(), self.conversation_id())
            .await?
            .ok_or(Error::NotFound)?;
        // Appends an earlier incarnation of this conversation queued are committed before the
        // head is read, so this one starts from every message that will ever be stored for it.
        if self.context.writer.fence(FENCE_TIMEOUT).await.is_err() {
            tracing::warn!(conversation_id = %self.conversation_id(), "the writer did not confirm the fence; loading anyway");
        }
        let head = store.head(self.tenant_id(), self.conversation_id()).await?;
        Ok(Ready {
            core: ConversationCore::new(snapshot, head, self.context.settings.message_limits),
            links: HashMap::default(),
            cursors: HashMap::default(),
            hidden: HashMap::default(),
            typing: HashMap::default(),
            recent_frames: VecDeque::new(),
            calls: CallBoard::default(),
            call_grace: BTreeSet::new(),
            recording_writes: Vec::new(),
            last_activity: Instant::now(),
            _cluster_subscription: cluster_subscription,
        })
    }

    async fn handle_send(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        sender_id: UserId,
        new_message: NewMessage,
        ack: AckGuard,
    ) {
        let now = self.context.clock.now();
        let mut check = ready.core.check_send(&sender_id, &new_message, now);
        if matches!(check, Err(Error::NotMember)) && self.refresh_membership(myself, ready).await {
            check = ready.core.check_send(&sender_id, &new_message, now);
        }
        let shape = RequestShape::of_new_message(&new_message);
        let check = self
            .or_stored_repeat(check, &new_message.client_id, &sender_id, &shape)
            .await;
        let Some(ack) = settle_known(ready, check, &sender_id, &new_message.client_id, ack) else {
            return;
        };
        // No lookup of the client_id here: storage checks it atomically at append and reports a
        // duplicate, so a repeat that is no longer remembered still stores nothing new.
        if let Err(error) = self.check_references(&new_message).await {
            ack.finish(AckOutcome::Rejected(error));
            return;
        }
        let message_id = MessageId::from_parts(now.as_millis(), fastrand::u128(..));
        let accepted = ready
            .core
            .accept(sender_id, new_message, message_id, now, ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }

    async fn handle_change(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        client_id: ClientId,
        change: ConversationChange,
        ack: AckGuard,
    ) {
        let check = ready.core.check_change(&actor_id, &client_id);
        let check = self
            .or_stored_repeat(check, &client_id, &actor_id, &RequestShape::Unchecked)
            .await;
        let Some(ack) = settle_known(ready, check, &actor_id, &client_id, ack) else {
            return;
        };
        let now = self.context.clock.now();
        let body =
            match ready
                .core
                .authorize_change(&actor_id, change, now, self.context.max_members)
            {
                Ok(body) => body,
                Err(error) => {
                    ack.finish(AckOutcome::Rejected(error));
                    return;
                }
            };
        self.append_event(myself, ready, actor_id, client_id, body, ack);
    }

    /// Accepts a new event made at this moment and hands it to the writer.
    fn append_event(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        client_id: ClientId,
        body: ConversationEventBody,
        ack: AckGuard,
    ) {
        let now = self.context.clock.now();
        let event = ConversationEvent::new(
            self.conversation_id(),
            MessageId::from_parts(now.as_millis(), fastrand::u128(..)),
            actor_id,
            client_id,
            now,
            body,
        );
        let accepted = ready.core.accept_entry(LogEntry::Event(event), ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }

    /// A refused request that repeats one of the same user's requests storage already holds
    /// (stored before this actor started, so not remembered) is answered with the original:
    /// a retry must learn that its first attempt worked, even if it could not be made now (the
    /// user left, was removed or muted since). A key the user used for a different request is
    /// refused as such. Only refusals pay for the storage read.
    async fn or_stored_repeat(
        &self,
        check: Result<SendCheck, Error>,
        client_id: &ClientId,
        author: &UserId,
        shape: &RequestShape<'_>,
    ) -> Result<SendCheck, Error> {
        let Err(error) = check else {
            return check;
        };
        let Ok(Some(stored)) = self
            .context
            .store
            .entry_by_client_id(self.tenant_id(), self.conversation_id(), author, client_id)
            .await
        else {
            return Err(error);
        };
        shape.check_repeat(&RequestShape::of_entry(&stored))?;
        Ok(SendCheck::Known(stored.reference()))
    }

    /// Hands an accepted entry to the writer; its result comes back as `Persisted`.
    fn append(&self, myself: &ActorRef<ConversationMsg>, ticket: AppendTicket, entry: LogEntry) {
        self.context.writer.append(PendingAppend {
            entry: AppendEntry {
                tenant_id: self.tenant_id().clone(),
                entry,
            },
            receipt: AppendReceipt::new(ticket, myself.clone()),
        });
    }

    /// Reads a message this conversation's request refers to.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `field` if there is no such message here; storage errors.
    async fn referenced_message(
        &self,
        field: &'static str,
        message_id: MessageId,
    ) -> Result<Message, Error> {
        self.context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), message_id)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "does not name a delivered message of this conversation",
                )
            })
    }

    /// Checks that a new message's `reply_to` and `thread_root` name messages of this
    /// conversation, and that the thread root is not itself a thread reply. Storage checks the
    /// same again atomically at append; checking here gives the clearer error first.
    async fn check_references(&self, new_message: &NewMessage) -> Result<(), Error> {
        if let Some(reply_to) = new_message.reply_to {
            self.referenced_message("reply_to", reply_to).await?;
        }
        if let Some(thread_root) = new_message.thread_root {
            let root = self.referenced_message("thread_root", thread_root).await?;
            if root.thread_root.is_some() {
                return Err(Error::invalid(
                    "thread_root",
                    "is a reply in a thread; threads do not nest",
                ));
            }
        }
        Ok(())
    }

    async fn handle_operate(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        new_operation: NewOperation,
        ack: AckGuard,
    ) {
        let check = ready.core.check_operation(&actor_id, &new_operation);
        let shape = RequestShape::of_operation(&new_operation.operation);
        let check = self
            .or_stored_repeat(check, &new_operation.client_id, &actor_id, &shape)
            .await;
        let Some(ack) = settle_known(ready, check, &actor_id, &new_operation.client_id, ack) else {
            return;
        };
        let target_id = new_operation.operation.message_id();
        let target = match self
            .context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), target_id)
            .await
        {
            Ok(Some(target)) => target,
            Ok(None) => {
                ack.finish(AckOutcome::Rejected(Error::NotFound));
                return;
            }
            Err(error) => {
                ack.finish(AckOutcome::Rejected(error.into()));
                return;
            }
        };
        let now = self.context.clock.now();
        if let Err(error) = ready
            .core
            .authorize(&actor_id, &new_operation.operation, &target, now)
        {
            ack.finish(AckOutcome::Rejected(error));
            return;
        }
        let event_id = MessageId::from_parts(now.as_millis(), fastrand::u128(..));
        let event = ConversationEvent::from_operation(
            self.conversation_id(),
            event_id,
            actor_id,
            new_operation,
            now,
        );
        let accepted = ready.core.accept_entry(LogEntry::Event(event), ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }

    async fn apply_report(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        report: PersistReport<AckGuard>,
    ) {
        for final_ack in report.acks {
            let mut ack = final_ack.waiter;
            if final_ack.replayed {
                ack.mark_duplicate();
            }
            ack.finish(final_ack.outcome);
        }
        // Every seq this node stored is published, also one a resync had already read: the
        // other nodes learn of it from nobody else.
        if let (Some(head), Some(cluster)) = (report.stored, &self.context.cluster) {
            cluster.publish(
                self.tenant_id(),
                self.conversation_id(),
                ClusterNotice::Stored { head },
            );
        }
        refresh_recent_frames(ready, self.context.encoder.as_ref(), &report.rewritten);
        if let Some(entry) = report.committed {
            let seq = entry.seq();
            let subject = subject_of(&entry);
            let frame = self.context.encoder.encode(&ServerEvent::Entry(&entry));
            let mut overflowed = Vec::new();
            for session_id in &report.live_sessions {
                if let Some(link) = ready.links.get_mut(session_id) {
                    let frame = self.frame_for(&ready.hidden, &link.user_id, seq, subject, &frame);
                    if link.outbound.push(frame).is_ok() {
                        link.last_pushed = seq;
                    } else {
                        overflowed.push(*session_id);
                    }
                }
            }
            for session_id in overflowed.into_iter().chain(report.ended_sessions) {
                drop_subscriber(ready, session_id);
            }
            // The frames stay contiguous: after a seq this actor did not see (stored by another
            // node, or before a resync), the older ones cannot serve a catch-up across the hole.
            if ready
                .recent_frames
                .back()
                .is_some_and(|(newest, _, _)| newest.next() != seq)
            {
                ready.recent_frames.clear();
            }
            ready.recent_frames.push_back((seq, subject, frame));
            while ready.recent_frames.len() > self.context.settings.recent_frames {
                ready.recent_frames.pop_front();
            }
        }
        for catch_up in report.catch_ups {
            self.start_catch_up(myself, ready, catch_up);
        }
        if report.needs_resync {
            // An append whose outcome was unknown may have been stored after all. If the head
            // moved, the other nodes hear of it now: the node that stored it never published.
            let known = ready.core.durable_head();
            self.resync(myself, ready).await;
            let head = ready.core.durable_head();
            if head > known
                && let Some(cluster) = &self.context.cluster
            {
                cluster.publish(
                    self.tenant_id(),
                    self.conversation_id(),
                    ClusterNotice::Stored { head },
                );
            }
        }
    }

    async fn resync(&self, myself: &ActorRef<ConversationMsg>, ready: &mut Ready) {
        // Recent frames may describe seqs that never became durable; forget them.
        ready.recent_frames.clear();
        match self
            .context
            .store
            .head(self.tenant_id(), self.conversation_id())
            .await
        {
            Ok(stored_head) => {
                // A failed append may have changed the conversation itself after all.
                match self
                    .context
                    .store
                    .load_conversation(self.tenant_id(), self.conversation_id())
                    .await
                {
                    Ok(Some(snapshot)) => ready.core.replace_snapshot(snapshot),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, conversation_id = %self.conversation_id(), "resync could not reload the conversation; retrying");
                        myself.send_after(Duration::from_millis(100), || ConversationMsg::Resync);
                        return;
                    }
                }
                for catch_up in ready.core.resync(stored_head) {
                    self.start_catch_up(myself, ready, catch_up);
                }
            }
            Err(error) => {
                tracing::warn!(%error, conversation_id = %self.conversation_id(), "resync failed; retrying");
                myself.send_after(Duration::from_millis(100), || ConversationMsg::Resync);
            }
        }
    }

    /// Serves a catch-up from the recent frames when they cover it, otherwise reads a page from
    /// storage in the background (paced by the session's queue) and continues on `CatchUpPage`.
    fn start_catch_up(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        mut catch_up: CatchUp,
    ) {
        loop {
            let covered = ready
                .recent_frames
                .front()
                .is_some_and(|(oldest, _, _)| *oldest <= catch_up.after.next())
                && ready
                    .recent_frames
                    .back()
                    .is_some_and(|(newest, _, _)| *newest >= catch_up.through);
            if !covered {
                break;
            }
            let Some(link) = ready.links.get_mut(&catch_up.session_id) else {
                return;
            };
            let frames: Vec<(Seq, EncodedFrame)> = ready
                .recent_frames
                .iter()
                .filter(|(seq, _, _)| *seq > catch_up.after && *seq <= catch_up.through)
                .map(|(seq, subject, frame)| {
                    let frame = self.frame_for(&ready.hidden, &link.user_id, *seq, *subject, frame);
                    (*seq, frame)
                })
                .collect();
            let step =
                ready
                    .core
                    .on_catch_up_page(catch_up.session_id, catch_up.epoch, catch_up.through);
            let CatchUpStep::Deliver { next } = step else {
                return;
            };
            let mut overflowed = false;
            for (seq, frame) in frames {
                if link.outbound.push(frame).is_err() {
                    overflowed = true;
                    break;
                }
                link.last_pushed = seq;
            }
            if overflowed {
                drop_subscriber(ready, catch_up.session_id);
                return;
            }
            match next {
                Some(next) => catch_up = next,
                None => {
                    end_if_no_longer_member(ready, catch_up.session_id);
                    return;
                }
            }
        }
        let Some(link) = ready.links.get(&catch_up.session_id) else {
            return;
        };
        self.spawn_catch_up_read(myself, link.outbound.clone(), catch_up, 0);
    }

    fn spawn_catch_up_read(
        &self,
        myself: &ActorRef<ConversationMsg>,
        outbound: Outbound,
        catch_up: CatchUp,
        n_failures: u32,
    ) {
        let store = Arc::clone(&self.context.store);
        let tenant_id = self.tenant_id().clone();
        let conversation_id = self.conversation_id();
        let page_size = self.context.settings.catch_up_page_size.max(1);
        let wanted = usize::try_from(catch_up.through.get().saturating_sub(catch_up.after.get()))
            .unwrap_or(usize::MAX)
            .min(page_size);
        let myself = myself.clone();
        #[allow(clippy::disallowed_methods)]
        // A bounded background read that reports back by message.
        tokio::spawn(async move {
            if n_failures > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(n_failures))).await;
            }
            outbound.wait_for_room().await;
            if outbound.is_closed() {
                return;
            }
            let page = store
                .entries_after(&tenant_id, conversation_id, catch_up.after, wanted)
                .await;
            let _ = myself.cast(ConversationMsg::CatchUpPage {
                catch_up,
                page,
                n_failures,
            });
        });
    }

    fn handle_catch_up_page(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        catch_up: CatchUp,
        page: Result<Vec<LogEntry>, StoreError>,
        n_failures: u32,
    ) {
        let Some(subscriber) = ready.core.subscribers().get(&catch_up.session_id) else {
            return;
        };
        if subscriber.catching_up != Some(catch_up.epoch) {
            return;
        }
        let cursor = subscriber.cursor;
        let durable_head = ready.core.durable_head();
        let mut page = match page {
            Ok(page) => page,
            Err(error) => {
                const MAX_READ_FAILURES: u32 = 3;
                tracing::warn!(%error, n_failures, "catch-up read failed");
                if n_failures + 1 >= MAX_READ_FAILURES {
                    self.abandon_subscriber(ready, catch_up.session_id);
                } else if let Some(link) = ready.links.get(&catch_up.session_id) {
                    self.spawn_catch_up_read(
                        myself,
                        link.outbound.clone(),
                        catch_up,
                        n_failures + 1,
                    );
                }
                return;
            }
        };
        page.retain(|entry| entry.seq() > cursor && entry.seq() <= durable_head);
        let contiguous = page
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.seq().get() == cursor.get() + 1 + offset as u64);
        if !contiguous {
            tracing::error!(conversation_id = %self.conversation_id(), "storage returned a page with a gap");
            self.abandon_subscriber(ready, catch_up.session_id);
            return;
        }
        let page_through = page.last().map_or(cursor, LogEntry::seq);
        let CatchUpStep::Deliver { next } =
            ready
                .core
                .on_catch_up_page(catch_up.session_id, catch_up.epoch, page_through)
        else {
            return;
        };
        let Some(link) = ready.links.get_mut(&catch_up.session_id) else {
            return;
        };
        for entry in &page {
            let frame = self.context.encoder.encode(&ServerEvent::Entry(entry));
            let frame = self.frame_for(
                &ready.hidden,
                &link.user_id,
                entry.seq(),
                subject_of(entry),
                &frame,
            );
            if link.outbound.push(frame).is_err() {
                drop_subscriber(ready, catch_up.session_id);
                return;
            }
            link.last_pushed = entry.seq();
        }
        match next {
            Some(next) => self.start_catch_up(myself, ready, next),
            None => end_if_no_longer_member(ready, catch_up.session_id),
        }
    }

    /// Ends a subscription the server cannot serve, telling the client with an error frame.
    fn abandon_subscriber(&self, ready: &mut Ready, session_id: SessionId) {
        if let Some(link) = ready.links.get(&session_id) {
            let error = Error::unavailable(format!(
                "history of conversation {} could not be read; join again with since",
                self.conversation_id()
            ));
            let frame = self.context.encoder.encode(&ServerEvent::Error {
                request_id: None,
                error: &error,
            });
            let _ = link.outbound.push(frame);
        }
        drop_subscriber(ready, session_id);
    }

    async fn handle_receipt(
        &self,
        ready: &mut Ready,
        request: ReceiptRequest,
        reply: RpcReplyPort<Result<ReadCursors, Error>>,
    ) {
        let ReceiptRequest {
            user_id,
            read,
            delivered,
            session_id,
        } = request;
        if let Err(error) = ready.core.check_reader(&user_id) {
            let _ = reply.send(Err(error));
            return;
        }
        let store = &self.context.store;
        let current = match ready.cursors.get(&user_id) {
            Some(cursors) => *cursors,
            None => match store
                .read_cursors(self.tenant_id(), self.conversation_id(), &user_id)
                .await
            {
                Ok(cursors) => cursors,
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                    return;
                }
            },
        };
        let advanced = current.advanced(read, delivered, ready.core.durable_head());
        if advanced != current {
            if let Err(error) = store
                .set_read_cursors(self.tenant_id(), self.conversation_id(), &user_id, advanced)
                .await
            {
                let _ = reply.send(Err(error.into()));
                return;
            }
            let frame = self.context.encoder.encode(&ServerEvent::Receipt {
                request_id: None,
                conversation_id: self.conversation_id(),
                user_id: &user_id,
                cursors: advanced,
            });
            // Best effort: a receipt is not in the seq stream and is never replayed, so a full
            // queue just misses it (the slow-consumer rule still closes a queue that overflows).
            for (link_session_id, link) in &ready.links {
                if Some(*link_session_id) != session_id {
                    let _ = link.outbound.push(frame.clone());
                }
            }
        }
        ready.cursors.insert(user_id, advanced);
        let _ = reply.send(Ok(advanced));
    }

    /// The frame a member's session gets for an entry: the entry itself, or `skipped` when it
    /// is about a message the member deleted for themself.
    fn frame_for(
        &self,
        hidden: &HashMap<UserId, BTreeSet<MessageId>>,
        user_id: &UserId,
        seq: Seq,
        subject: Option<MessageId>,
        frame: &EncodedFrame,
    ) -> EncodedFrame {
        let is_hidden = subject.is_some_and(|message_id| {
            hidden
                .get(user_id)
                .is_some_and(|hidden| hidden.contains(&message_id))
        });
        if is_hidden {
            self.context.encoder.encode(&ServerEvent::Skipped {
                conversation_id: self.conversation_id(),
                seq,
            })
        } else {
            frame.clone()
        }
    }

    /// Passes a typing signal on to the other members' sessions: a start at most once per
    /// [`TYPING_COALESCE_MS`] per member, a stop only after a start; both dropped for sessions
    /// whose queue is over half full.
    fn handle_typing(
        &self,
        ready: &mut Ready,
        user_id: UserId,
        started: bool,
        reply_to: (Outbound, Option<RequestId>),
    ) {
        if let Err(error) = ready.core.check_reader(&user_id) {
            let (outbound, request_id) = reply_to;
            let frame = self.context.encoder.encode(&ServerEvent::Error {
                request_id: request_id.as_ref(),
                error: &error,
            });
            let _ = outbound.push(frame);
            return;
        }
        let now = self.context.clock.now();
        if started {
            let recent = ready
                .typing
                .get(&user_id)
                .is_some_and(|last| now.millis_since(*last) < TYPING_COALESCE_MS);
            if recent {
                return;
            }
            ready.typing.insert(user_id.clone(), now);
        } else if ready.typing.remove(&user_id).is_none() {
            return;
        }
        if let Some(cluster) = &self.context.cluster {
            cluster.publish(
                self.tenant_id(),
                self.conversation_id(),
                ClusterNotice::Typing {
                    user_id: user_id.clone(),
                    started,
                },
            );
        }
        self.pass_on_typing(ready, &user_id, started);
    }

    /// Pushes a `typing` event to every joined session but the typist's own, dropping it for
    /// sessions whose queues are full.
    fn pass_on_typing(&self, ready: &Ready, user_id: &UserId, started: bool) {
        let frame = self.context.encoder.encode(&ServerEvent::Typing {
            conversation_id: self.conversation_id(),
            user_id,
            started,
            expires_in_ms: TYPING_EXPIRES_MS,
        });
        for link in ready.links.values() {
            if link.user_id != *user_id {
                link.outbound.push_if_room(frame.clone());
            }
        }
    }

    /// In a deployment of several nodes, reads the conversation again before refusing someone
    /// as not a member: they may have been added through another node whose notice has not
    /// arrived yet. Returns whether it read (on a single node this actor's view is complete).
    async fn refresh_membership(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
    ) -> bool {
        if self.context.cluster.is_none() {
            return false;
        }
        self.resync(myself, ready).await;
        true
    }

    /// What another node of the deployment published about this conversation.
    async fn handle_cluster(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        notice: ClusterNotice,
    ) {
        match notice {
            // Read from the shared store what this actor has not seen (resync also reloads the
            // conversation, so member and role changes made on other nodes apply here). A
            // notice at or below the durable head changes nothing.
            ClusterNotice::Stored { head } => {
                if head > ready.core.durable_head() {
                    self.resync(myself, ready).await;
                }
            }
            // The typist's node checked membership and coalesced; a user who is no longer a
            // member here (a change not yet heard of) is not passed on.
            ClusterNotice::Typing { user_id, started } => {
                if ready.core.check_reader(&user_id).is_ok() {
                    self.pass_on_typing(ready, &user_id, started);
                }
            }
            ClusterNotice::Recording(notice) => self.pass_on_recording(myself, ready, &notice),
        }
    }

    /// Loads the messages `user_id` hid for themself, once per loaded conversation.
    async fn load_hidden(&self, ready: &mut Ready, user_id: &UserId) -> Result<(), Error> {
        if ready.hidden.contains_key(user_id) {
            return Ok(());
        }
        let hidden = self
            .context
            .store
            .hidden_messages(self.tenant_id(), self.conversation_id(), user_id)
            .await?;
        ready.hidden.insert(user_id.clone(), hidden);
        Ok(())
    }

    async fn handle_hide(
        &self,
        ready: &mut Ready,
        user_id: UserId,
        message_id: MessageId,
    ) -> Result<(), Error> {
        ready.core.check_reader(&user_id)?;
        self.context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), message_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.load_hidden(ready, &user_id).await?;
        self.context
            .store
            .hide_message(
                self.tenant_id(),
                self.conversation_id(),
                &user_id,
                message_id,
            )
            .await?;
        ready.hidden.entry(user_id).or_default().insert(message_id);
        Ok(())
    }

    async fn handle_join(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        join: JoinRequest,
        reply: JoinReply,
    ) {
        let JoinRequest {
            session_id,
            user_id,
            since,
            request_id,
            announce,
            outbound,
            session,
        } = join;
        // A session joining again replaces its old subscription without a lost-notification.
        if let Some(mut old_link) = ready.links.remove(&session_id) {
            old_link.armed = false;
        }
        if let Err(error) = self.load_hidden(ready, &user_id).await {
            let _ = reply.send(Err(error));
            return;
        }
        let mut joined = ready.core.join(session_id, user_id.clone(), since);
        if matches!(joined, Err(Error::NotMember)) && self.refresh_membership(myself, ready).await {
            joined = ready.core.join(session_id, user_id.clone(), since);
        }
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(error) => {
                let _ = reply.send(Err(error));
                return;
            }
        };
        if announce {
            let frame = self.context.encoder.encode(&ServerEvent::Joined {
                request_id: request_id.as_ref(),
                conversation_id: self.conversation_id(),
                head: outcome.head,
            });
            if outbound.push(frame).is_err() {
                ready.core.leave(session_id);
                let _ = reply.send(Err(Error::unavailable("the connection is closing")));
                return;
            }
        }
        let start = outcome
            .catch_up
            .map_or(outcome.head, |catch_up| catch_up.after);
        ready.links.insert(
            session_id,
            SubscriberLink {
                outbound,
                user_id,
                session,
                conversation_id: self.conversation_id(),
                last_pushed: start,
                armed: true,
            },
        );
        let _ = reply.send(Ok((outcome.head, myself.clone())));
        if let Some(catch_up) = outcome.catch_up {
            self.start_catch_up(myself, ready, catch_up);
        }
    }
}

/// Answers a request whose `client_id` check already decides it (refused, already stored, or
/// in flight: the ack joins the in-flight entry's waiters). Returns the ack when the entry is
/// new and the caller must go on.
fn settle_known(
    ready: &mut Ready,
    check: Result<SendCheck, Error>,
    author: &UserId,
    client_id: &ClientId,
    mut ack: AckGuard,
) -> Option<AckGuard> {
    match check {
        Err(error) => ack.finish(AckOutcome::Rejected(error)),
        Ok(SendCheck::Known(message_ref)) => {
            ack.mark_duplicate();
            ack.finish(AckOutcome::Delivered(message_ref));
        }
        Ok(SendCheck::InFlight) => {
            ack.mark_duplicate();
            if let Err(ack) = ready.core.attach_waiter(author, client_id, ack) {
                ack.finish(AckOutcome::Rejected(Error::unavailable("retry")));
            }
        }
        Ok(SendCheck::Unknown) => return Some(ack),
    }
    None
}

/// Replaces the cached frames of entries that a newly stored one changed (an edited or deleted
/// message, a thread's root, the edits whose text a delete scrubbed) with frames of the entries
/// as storage now holds them, so a replay served from the cache shows every entry as it is now,
/// exactly as one read from storage does: the cache never keeps a deleted text.
fn refresh_recent_frames(ready: &mut Ready, encoder: &dyn EventEncoder, rewritten: &[LogEntry]) {
    let Some(oldest) = ready.recent_frames.front().map(|(seq, _, _)| *seq) else {
        return;
    };
    for entry in rewritten {
        let Some(index) = entry
            .seq()
            .get()
            .checked_sub(oldest.get())
            .and_then(|offset| usize::try_from(offset).ok())
        else {
            continue;
        };
        if let Some((seq, subject, frame)) = ready.recent_frames.get_mut(index)
            && *seq == entry.seq()
        {
            *subject = subject_of(entry);
            *frame = encoder.encode(&ServerEvent::Entry(entry));
        }
    }
}

/// The message an entry is about: the message itself, or an event's target.
fn subject_of(entry: &LogEntry) -> Option<MessageId> {
    match entry {
        LogEntry::Message(message) => Some(message.message_id),
        LogEntry::Event(event) => event.body.message_id(),
    }
}

/// Removes a subscriber without telling its session (it is being disconnected anyway).
/// Ends the subscription of a session that caught up to the head when its user is no longer a
/// member: they were removed on another node, and the catch-up just delivered the event that
/// says so (a removal made through this node ends subscriptions when it is stored).
fn end_if_no_longer_member(ready: &mut Ready, session_id: SessionId) {
    let removed = ready
        .links
        .get(&session_id)
        .is_some_and(|link| ready.core.snapshot().member(&link.user_id).is_none());
    if removed {
        drop_subscriber(ready, session_id);
    }
}

fn drop_subscriber(ready: &mut Ready, session_id: SessionId) {
    ready.core.leave(session_id);
    if let Some(mut link) = ready.links.remove(&session_id) {
        link.armed = false;
    }
}

impl Actor for ConversationActor {
    type Msg = ConversationMsg;
    type State = ConversationState;
    type Arguments = ConversationArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConversationMsg>,
        _args: ConversationArgs,
    ) -> Result<ConversationState, ActorProcessingErr> {
        // Loading happens in the first message, so that spawning never waits on storage and the
        // supervisor keeps routing while this conversation loads.
        myself.cast(ConversationMsg::Load)?;
        let tick_every = (self.context.settings.idle_stop_after / 2).max(Duration::from_millis(10));
        let ticker = myself.clone();
        #[allow(clippy::disallowed_methods)] // A self-ending ticker: it stops when the actor does.
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick_every);
            interval.tick().await;
            loop {
                interval.tick().await;
                if ticker.cast(ConversationMsg::IdleTick).is_err() {
                    break;
                }
            }
        });
        Ok(ConversationState::Loading)
    }

    async fn handle(
        &self,
        myself: ActorRef<ConversationMsg>,
        message: ConversationMsg,
        state: &mut ConversationState,
    ) -> Result<(), ActorProcessingErr> {
        if let ConversationMsg::Load = message {
            *state = match self.load(&myself).await {
                Ok(ready) => ConversationState::Ready(Box::new(ready)),
                Err(error) => {
                    self.retire(&myself);
                    ConversationState::Refusing(error)
                }
            };
            return Ok(());
        }
        let ready = match state {
            ConversationState::Ready(ready) => ready,
            ConversationState::Loading => {
                return Err("conversation received a request before loading".into());
            }
            ConversationState::Refusing(error) => {
                let reply_to = match &message {
                    ConversationMsg::Typing { reply_to, .. } => Some(reply_to),
                    ConversationMsg::Call(CallMsg::Request(request)) => Some(&request.reply_to),
                    _ => None,
                };
                if let Some((outbound, request_id)) = reply_to {
                    let frame = self.context.encoder.encode(&ServerEvent::Error {
                        request_id: request_id.as_ref(),
                        error,
                    });
                    let _ = outbound.push(frame);
                }
                refuse(message, error);
                return Ok(());
            }
        };
        match message {
            ConversationMsg::Load => {}
            ConversationMsg::Join { request, reply } => {
                ready.last_activity = Instant::now();
                self.handle_join(&myself, ready, *request, reply).await;
            }
            ConversationMsg::Leave {
                session_id,
                reply_to,
            } => {
                ready.last_activity = Instant::now();
                drop_subscriber(ready, session_id);
                self.watch_call_participants(&myself, ready);
                if let Some((outbound, request_id)) = reply_to {
                    let frame = self.context.encoder.encode(&ServerEvent::Left {
                        request_id: request_id.as_ref(),
                        conversation_id: self.conversation_id(),
                    });
                    let _ = outbound.push(frame);
                }
            }
            ConversationMsg::Send {
                sender_id,
                new_message,
                ack,
            } => {
                ready.last_activity = Instant::now();
                self.handle_send(&myself, ready, sender_id, new_message, ack)
                    .await;
            }
            ConversationMsg::Operate {
                actor_id,
                new_operation,
                ack,
            } => {
                ready.last_activity = Instant::now();
                self.handle_operate(&myself, ready, actor_id, new_operation, ack)
                    .await;
            }
            ConversationMsg::Change(request) => {
                ready.last_activity = Instant::now();
                let ChangeRequest {
                    actor_id,
                    client_id,
                    change,
                    ack,
                } = *request;
                self.handle_change(&myself, ready, actor_id, client_id, change, ack)
                    .await;
            }
            ConversationMsg::Typing {
                user_id,
                started,
                reply_to,
            } => self.handle_typing(ready, user_id, started, reply_to),
            ConversationMsg::Call(call) => self.handle_call_msg(&myself, ready, call),
            ConversationMsg::Recording(notice) => self.pass_on_recording(&myself, ready, &notice),
            ConversationMsg::Hide {
                user_id,
                message_id,
                reply,
            } => {
                ready.last_activity = Instant::now();
                let result = self.handle_hide(ready, user_id, message_id).await;
                let _ = reply.send(result);
            }
            ConversationMsg::Receipt { request, reply } => {
                ready.last_activity = Instant::now();
                self.handle_receipt(ready, *request, reply).await;
            }
            ConversationMsg::Inspect { user_id, reply } => {
                ready.last_activity = Instant::now();
                if matches!(ready.core.check_reader(&user_id), Err(Error::NotMember)) {
                    self.refresh_membership(&myself, ready).await;
                }
                let result = ready
                    .core
                    .check_reader(&user_id)
                    .map(|_| ready.core.snapshot().clone());
                let _ = reply.send(result);
            }
            ConversationMsg::Persisted(results) => {
                ready.last_activity = Instant::now();
                for (ticket, result) in results {
                    let report = ready.core.on_persisted(ticket, result);
                    self.apply_report(&myself, ready, report).await;
                }
            }
            ConversationMsg::CatchUpPage {
                catch_up,
                page,
                n_failures,
            } => {
                ready.last_activity = Instant::now();
                self.handle_catch_up_page(&myself, ready, catch_up, page, n_failures);
            }
            ConversationMsg::Resync => self.resync(&myself, ready).await,
            ConversationMsg::Cluster(notice) => self.handle_cluster(&myself, ready, notice).await,
            ConversationMsg::IdleTick => {
                self.watch_call_participants(&myself, ready);
                if ready.core.is_idle()
                    && !Self::has_active_call(ready)
                    && ready.last_activity.elapsed() >= self.context.settings.idle_stop_after
                {
                    self.retire(&myself);
                }
            }
        }
        self.write_recordings(&myself, ready).await;
        Ok(())
    }
}

/// Answers a request to a conversation that could not be loaded.
fn refuse(message: ConversationMsg, error: &Error) {
    match message {
        ConversationMsg::Join { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        ConversationMsg::Send { ack, .. } | ConversationMsg::Operate { ack, .. } => {
            ack.finish(AckOutcome::Rejected(error.clone()));
        }
        ConversationMsg::Change(request) => {
            request.ack.finish(AckOutcome::Rejected(error.clone()));
        }
        ConversationMsg::Inspect { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        ConversationMsg::Receipt { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        ConversationMsg::Hide { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        // Answered with an error frame by the caller, which has the encoder.
        ConversationMsg::Typing { .. } | ConversationMsg::Call(_) => {}
        ConversationMsg::Leave { .. }
        | ConversationMsg::Load
        | ConversationMsg::Persisted(_)
        | ConversationMsg::CatchUpPage { .. }
        | ConversationMsg::Resync
        | ConversationMsg::Cluster(_)
        | ConversationMsg::Recording(_)
        | ConversationMsg::IdleTick => {}
    }
}
