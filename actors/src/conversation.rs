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
//!
//! This file holds the actor, its messages and state, loading and dispatch; each of its jobs
//! has a sibling file: `submissions` (sends, operations, changes), `delivery` (fan-out of stored
//! entries, typing, receipts), `catch_up` (history replay and resync), `subscribers` (joins,
//! membership, hiding, cluster notices), `calls` (call signalling), `recordings` (recording
//! consent and metadata),
//! `ack` (acknowledgements) and `handle` (the typed handles callers use).

use std::collections::{BTreeSet, VecDeque};

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::conversation::{AppendResult, AppendTicket, CatchUp, ConversationCore};
use switchboard_engine::event::{AckOutcome, EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::ids::{
    ClientId, ConversationId, MessageId, RequestId, Seq, SessionId, TenantId, UserId,
};
use switchboard_engine::media::MediaStore;
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::{ConversationSnapshot, NewMessage, ReadCursors};
use switchboard_engine::operations::{LogEntry, NewOperation};
use switchboard_engine::ports::{
    Clock, ClusterBus, ClusterListener, ClusterNotice, ClusterSubscription, MessageStore,
};
use switchboard_engine::recording::{RecordingNotice, RecordingStore};
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::MessageLimits;
use switchboard_engine::{Error, StoreError};
use tokio::time::Instant;

mod ack;
mod attachments;
mod calls;
mod catch_up;
mod delivery;
mod handle;
mod recordings;
mod submissions;
mod subscribers;

use crate::conversations::{ConversationKey, ConversationsMsg};
use crate::outbound::Outbound;
use crate::session::{SessionAddress, SessionMsg};
use crate::writer::WriterHandle;
pub use ack::{AckGuard, AckTarget, SendReceipt};
pub use calls::{CallMsg, CallRequest};
use delivery::subject_of;
pub(crate) use handle::report_persisted;
pub use handle::{ConversationHandle, Submission};
use subscribers::{drop_subscriber, end_if_no_longer_member};
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
    /// Media records: what a message may attach, and the list of messages attaching each.
    pub media: Arc<dyn MediaStore>,
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
    pub session: Option<SessionAddress>,
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
    /// Call signalling and its timers: a closed enum of its own, handled by `conversation/calls.rs`
    /// in the actor's order with everything else (see [`CallMsg`]).
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
    session: Option<SessionAddress>,
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
            let _ = session.tell(SessionMsg::SubscriptionLost {
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
    recording_writes: Vec<recordings::RecordingWrite>,
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
