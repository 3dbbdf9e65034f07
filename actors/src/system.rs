//! The actor system: the root supervisor, the sessions supervisor, and [`System`], the handle the
//! transport layer uses for everything.
//!
//! The tree is root → {writer, conversations supervisor → conversations, sessions supervisor →
//! sessions}. The root restarts the writer and the conversations supervisor when they fail, with
//! capped, jittered backoff ([`RestartPolicy`]); too many failures in a window escalate by
//! stopping the root, which the binary treats as fatal. Sessions are not restarted: a failed
//! session's connection closes and its client reconnects and resumes with `since`.
//!
//! Shutdown is ordered so in-flight work reaches a safe state: close every session's queue
//! (clients get "going away"), drain the conversations, drain the writer (committing whatever
//! it holds), then stop the root.

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use switchboard_engine::event::EventEncoder;
use switchboard_engine::ids::ClientId;
use switchboard_engine::ids::{ConversationId, Seq};
use switchboard_engine::ids::{MessageId, TenantId, UserId};
use switchboard_engine::membership::{ConversationChange, Patch};
use switchboard_engine::model::{
    Conversation, ConversationKind, ConversationSnapshot, ForwardedFrom, MAX_COUNTED_UNREAD,
    Member, MemberSettings, Message, MessageRef, NewMessage, ReadCursors, Role,
};
use switchboard_engine::operations::{ConversationEvent, NewOperation};
use switchboard_engine::permissions::{self, Action};
use switchboard_engine::ports::{
    Clock, ClusterBus, IceServerProvider, IceServers, MessageStore, PresenceDirectory,
    SharedRateLimiter,
};
use switchboard_engine::rate_limit::{ActionClass, RateLimits};
use switchboard_engine::recording::RecordingStore;
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::validate_new_conversation;
use switchboard_engine::{Error, StoreError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::IdGenerator;
use crate::conversation::{
    AckGuard, AckTarget, ChangeRequest, ConversationContext, ConversationMsg, ConversationSettings,
    ReceiptRequest, SendReceipt,
};
use crate::conversations::{ConversationKey, ConversationsActor, ConversationsHandle};
use crate::limits::UserLimits;
use crate::outbound::{CloseReason, Outbound};
use crate::presence::{
    MAX_WATCHED_PER_REQUEST, PresenceEntry, PresenceRegistry, shares_a_conversation,
};
use crate::restart::{RestartDecision, RestartPolicy, RestartTracker};
use crate::security::SecurityLog;
use crate::session::{Identity, SessionActor, SessionArgs, SessionContext, SessionHandle};
use crate::writer::{WriterActor, WriterArgs, WriterHandle, WriterSettings};

mod recordings;
pub use recordings::{
    AuditPage, MIN_UPLOAD_BYTES_PER_SECOND, OBJECT_TIMEOUT, RecordingPorts, RecordingsPage,
    UPLOAD_IDLE_TIMEOUT, UPLOAD_RATE_GRACE,
};

/// Everything the actor system can be tuned with.
#[derive(Debug, Clone)]
pub struct SystemSettings {
    /// Conversation actor tunables.
    pub conversation: ConversationSettings,
    /// Writer tunables.
    pub writer: WriterSettings,
    /// The per-user rate of each action class.
    pub rate_limits: RateLimits,
    /// Tenants whose users have rates of their own.
    pub tenant_rate_limits: HashMap<TenantId, RateLimits>,
    /// Concurrent connections per user (0 = unlimited).
    pub max_connections_per_user: usize,
    /// Members per conversation, creator included.
    pub max_members: usize,
    /// Target conversations one forward may name.
    pub forward_max_targets: usize,
    /// Messages one forward may copy.
    pub forward_max_messages: usize,
    /// Announced to clients in `welcome`.
    pub heartbeat_ms: u64,
    /// How long any call to an actor may take.
    pub call_timeout: Duration,
    /// How supervisors restart failed children.
    pub restart_policy: RestartPolicy,
}

// ---- the sessions supervisor ----

/// The sessions supervisor's messages.
pub enum SessionsMsg {
    /// Remember a session's queue (to close it on shutdown).
    Register {
        /// The session actor.
        actor_id: ActorId,
        /// Its queue.
        outbound: Outbound,
    },
    /// Close every session's queue with this reason.
    CloseAll(CloseReason, RpcReplyPort<usize>),
    /// How many sessions are alive.
    Count(RpcReplyPort<usize>),
}

/// Supervises sessions: never restarts them (their clients reconnect), but tracks their queues.
pub struct SessionsActor;

/// The sessions supervisor's state.
pub struct SessionsState {
    outbounds: HashMap<ActorId, Outbound>,
}

impl Actor for SessionsActor {
    type Msg = SessionsMsg;
    type State = SessionsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<SessionsMsg>,
        _args: (),
    ) -> Result<SessionsState, ActorProcessingErr> {
        Ok(SessionsState {
            outbounds: HashMap::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SessionsMsg>,
        message: SessionsMsg,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionsMsg::Register { actor_id, outbound } => {
                state.outbounds.insert(actor_id, outbound);
            }
            SessionsMsg::CloseAll(reason, reply) => {
                for outbound in state.outbounds.values() {
                    outbound.close(reason);
                }
                let _ = reply.send(state.outbounds.len());
            }
            SessionsMsg::Count(reply) => {
                let _ = reply.send(state.outbounds.len());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SessionsMsg>,
        event: SupervisionEvent,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.outbounds.remove(&cell.get_id());
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                tracing::error!(%error, "session actor failed; its connection closes");
                if let Some(outbound) = state.outbounds.remove(&cell.get_id()) {
                    outbound.close(CloseReason::SessionEnded);
                }
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

// ---- the root supervisor ----

/// The root's messages.
pub enum RootMsg {
    /// Start a new writer (after a failure and its backoff).
    RestartWriter,
    /// Start a new conversations supervisor (after a failure and its backoff).
    RestartConversations,
    /// Stop restarting children: the system is shutting down.
    BeginShutdown(RpcReplyPort<()>),
}

/// What the root starts with: its children's dependencies.
pub struct RootArgs {
    /// Storage.
    pub store: Arc<dyn MessageStore>,
    /// The writer's shared handle (points at a placeholder until the root starts the writer).
    pub settings: SystemSettings,
    /// Where the root reports its children's handles once they are running.
    pub handles: tokio::sync::oneshot::Sender<RootHandles>,
    /// The wire encoder.
    pub encoder: Arc<dyn EventEncoder>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// How this node tells the others what it stored (scale-out deployments only).
    pub cluster: Option<Arc<dyn ClusterBus>>,
    /// Where recording metadata is kept.
    pub recordings: Arc<dyn RecordingStore>,
}

/// Handles to the root's children, valid across their restarts.
#[derive(Clone)]
pub struct RootHandles {
    /// The writer.
    pub writer: WriterHandle,
    /// The conversations supervisor.
    pub conversations: ConversationsHandle,
    /// The sessions supervisor.
    pub sessions: ActorRef<SessionsMsg>,
}

/// The root's state.
pub struct RootState {
    store: Arc<dyn MessageStore>,
    settings: SystemSettings,
    context: Arc<ConversationContext>,
    handles: RootHandles,
    writer_failures: RestartTracker,
    conversations_failures: RestartTracker,
    started_at: Instant,
    shutting_down: bool,
}

/// The root supervisor.
pub struct RootActor;

impl RootActor {
    async fn spawn_writer(
        myself: &ActorRef<RootMsg>,
        store: &Arc<dyn MessageStore>,
        settings: &SystemSettings,
    ) -> Result<ActorRef<crate::writer::WriterMsg>, ActorProcessingErr> {
        let args = WriterArgs {
            store: Arc::clone(store),
            settings: settings.writer,
        };
        let (writer, _) = Actor::spawn_linked(None, WriterActor, args, myself.get_cell()).await?;
        Ok(writer)
    }

    async fn spawn_conversations(
        myself: &ActorRef<RootMsg>,
        context: &Arc<ConversationContext>,
        settings: &SystemSettings,
    ) -> Result<ActorRef<crate::conversations::ConversationsMsg>, ActorProcessingErr> {
        let actor = ConversationsActor::new(Arc::clone(context), settings.restart_policy);
        let (conversations, _) = Actor::spawn_linked(None, actor, (), myself.get_cell()).await?;
        Ok(conversations)
    }

    fn schedule_restart(
        myself: &ActorRef<RootMsg>,
        tracker: &mut RestartTracker,
        policy: &RestartPolicy,
        elapsed: Duration,
        what: &'static str,
        message: fn() -> RootMsg,
    ) -> Result<(), ActorProcessingErr> {
        match tracker.on_failure(policy, elapsed, fastrand::f64()) {
            RestartDecision::RestartAfter(delay) => {
                tracing::warn!(what, ?delay, "restarting after failure");
                myself.send_after(delay, message);
                Ok(())
            }
            RestartDecision::Escalate => {
                tracing::error!(what, "too many failures; stopping the system");
                Err(format!("{what} failed too often").into())
            }
        }
    }
}

impl Actor for RootActor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let writer = Self::spawn_writer(&myself, &args.store, &args.settings).await?;
        let writer = WriterHandle::new(writer);
        let context = Arc::new(ConversationContext {
            store: Arc::clone(&args.store),
            encoder: args.encoder,
            clock: args.clock,
            writer: writer.clone(),
            settings: args.settings.conversation,
            max_members: args.settings.max_members,
            cluster: args.cluster.clone(),
            recordings: Arc::clone(&args.recordings),
        });
        let conversations = Self::spawn_conversations(&myself, &context, &args.settings).await?;
        let (sessions, _) = Actor::spawn_linked(None, SessionsActor, (), myself.get_cell()).await?;
        let handles = RootHandles {
            writer,
            conversations: ConversationsHandle::new(conversations),
            sessions,
        };
        let _ = args.handles.send(handles.clone());
        Ok(RootState {
            store: args.store,
            settings: args.settings,
            context,
            handles,
            writer_failures: RestartTracker::default(),
            conversations_failures: RestartTracker::default(),
            started_at: Instant::now(),
            shutting_down: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        message: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RootMsg::RestartWriter if !state.shutting_down => {
                let writer = Self::spawn_writer(&myself, &state.store, &state.settings).await?;
                state.handles.writer.replace(writer);
            }
            RootMsg::RestartConversations if !state.shutting_down => {
                let conversations =
                    Self::spawn_conversations(&myself, &state.context, &state.settings).await?;
                state.handles.conversations.replace(conversations);
            }
            RootMsg::RestartWriter | RootMsg::RestartConversations => {}
            RootMsg::BeginShutdown(reply) => {
                state.shutting_down = true;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        event: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let cell = match &event {
            SupervisionEvent::ActorFailed(cell, error) => {
                tracing::error!(%error, "supervised actor failed");
                cell.clone()
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => cell.clone(),
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {
                return Ok(());
            }
        };
        if state.shutting_down {
            return Ok(());
        }
        let elapsed = Instant::now().duration_since(state.started_at);
        let policy = state.settings.restart_policy;
        if cell.get_id() == state.handles.writer.actor().get_id() {
            Self::schedule_restart(
                &myself,
                &mut state.writer_failures,
                &policy,
                elapsed,
                "the writer",
                || RootMsg::RestartWriter,
            )?;
        } else if cell.get_id() == state.handles.conversations.actor().get_id() {
            Self::schedule_restart(
                &myself,
                &mut state.conversations_failures,
                &policy,
                elapsed,
                "the conversations supervisor",
                || RootMsg::RestartConversations,
            )?;
        } else if cell.get_id() == state.handles.sessions.get_id() {
            return Err("the sessions supervisor stopped".into());
        }
        Ok(())
    }
}

// ---- the system handle ----

/// A running actor system and everything the transport layer may ask of it.
pub struct System {
    root: ActorRef<RootMsg>,
    handles: RootHandles,
    session_context: Arc<SessionContext>,
    store: Arc<dyn MessageStore>,
    ids: IdGenerator,
    limits: Arc<UserLimits>,
    settings: SystemSettings,
    stopped: watch::Receiver<bool>,
    cluster: Option<Arc<dyn ClusterBus>>,
    recordings: recordings::Recordings,
    /// This node's security events (refused tokens, access denials, limits, protocol abuse).
    security: Arc<SecurityLog>,
}

/// What the nodes of a deployment share, besides the store: how they tell each other what they
/// stored, the users' rate-limit budgets, and presence.
pub struct ClusterPorts {
    /// Notices between nodes.
    pub bus: Arc<dyn ClusterBus>,
    /// Rate-limit budgets.
    pub rate_limiter: Arc<dyn SharedRateLimiter>,
    /// Presence across nodes.
    pub presence: Arc<dyn PresenceDirectory>,
}

/// What a send over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The stored message.
    pub message: Message,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

/// A conversation as one of its members sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The conversation and its members.
    pub snapshot: ConversationSnapshot,
    /// The member's receipt cursors.
    pub cursors: ReadCursors,
    /// Messages of others after the read cursor that are not deleted, counted up to
    /// [`MAX_COUNTED_UNREAD`].
    pub unread_count: usize,
    /// The newest seq.
    pub head: Seq,
    /// The member's own settings.
    pub settings: MemberSettings,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The messages, in the page's direction.
    pub messages: Vec<Message>,
    /// Where the next page starts (the last seq read), when there may be one.
    pub next: Option<Seq>,
}

/// One conversation in a member's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationListing {
    /// The conversation with the member's cursors, unread count and settings.
    pub view: MemberView,
    /// The newest message, if any.
    pub last_message: Option<Message>,
}

/// A change to a member's own settings; fields left `None` (or [`Patch::Keep`]) stay as they
/// are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Mute notifications until a time, or unmute.
    pub notifications_muted_until: Patch<Timestamp>,
    /// Archive or unarchive for oneself.
    pub archived: Option<bool>,
    /// Pin or unpin.
    pub pinned: Option<bool>,
}

/// What a forward did in one target conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOutcome {
    /// The target.
    pub conversation_id: ConversationId,
    /// The copies stored there, in order, or why the target refused (copies before the
    /// refusal stay stored; retrying the same forward completes it without duplicates).
    pub result: Result<Vec<SentMessage>, Error>,
}

/// What a change to a conversation over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeResult {
    /// The event's reference in the seq stream.
    pub event: MessageRef,
    /// The conversation as it is now.
    pub snapshot: ConversationSnapshot,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

/// What an operation on a message over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationResult {
    /// The event's reference in the seq stream.
    pub event: MessageRef,
    /// The message as it is now.
    pub message: Message,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

impl System {
    /// Starts the actor tree.
    ///
    /// # Errors
    /// [`crate::Error::Startup`] if the root or one of its children fails to start.
    pub async fn start(
        settings: SystemSettings,
        store: Arc<dyn MessageStore>,
        encoder: Arc<dyn EventEncoder>,
        clock: Arc<dyn Clock>,
        ice: Option<Arc<dyn IceServerProvider>>,
        cluster: Option<ClusterPorts>,
        recording_ports: RecordingPorts,
    ) -> crate::Result<System> {
        let (bus, shared_rate_limiter, presence_directory) = match cluster {
            Some(ports) => (
                Some(ports.bus),
                Some(ports.rate_limiter),
                Some(ports.presence),
            ),
            None => (None, None, None),
        };
        let cluster = bus;
        let (handles_sender, handles_receiver) = tokio::sync::oneshot::channel();
        let args = RootArgs {
            store: Arc::clone(&store),
            settings: settings.clone(),
            handles: handles_sender,
            encoder: Arc::clone(&encoder),
            clock: Arc::clone(&clock),
            cluster: cluster.clone(),
            recordings: Arc::clone(&recording_ports.store),
        };
        let (root, root_join) =
            Actor::spawn(None, RootActor, args)
                .await
                .map_err(|error| crate::Error::Startup {
                    what: "the root supervisor",
                    reason: error.to_string(),
                })?;
        let handles = handles_receiver.await.map_err(|_| crate::Error::Startup {
            what: "the root supervisor",
            reason: "it did not report its children".to_owned(),
        })?;
        let (stopped_sender, stopped) = watch::channel(false);
        #[allow(clippy::disallowed_methods)] // Watches the root for the binary's benefit.
        tokio::spawn(async move {
            let _ = root_join.await;
            let _ = stopped_sender.send(true);
        });
        let security = SecurityLog::new(Arc::clone(&clock));
        let limits = UserLimits::new(
            settings.rate_limits,
            settings.tenant_rate_limits.clone(),
            settings.max_connections_per_user,
            shared_rate_limiter,
            Some(Arc::clone(&security)),
        );
        let presence = PresenceRegistry::new(
            Arc::clone(&clock),
            Arc::clone(&encoder),
            cluster.clone().zip(presence_directory),
        );
        let session_context = Arc::new(SessionContext {
            conversations: handles.conversations.clone(),
            encoder,
            limits: Arc::clone(&limits),
            clock: Arc::clone(&clock),
            call_timeout: settings.call_timeout,
            heartbeat_ms: settings.heartbeat_ms,
            presence,
            store: Arc::clone(&store),
            ice,
            security: Arc::clone(&security),
        });
        Ok(System {
            root,
            handles,
            session_context,
            store,
            ids: IdGenerator::new(clock),
            limits,
            settings,
            stopped,
            cluster,
            recordings: recordings::Recordings::new(recording_ports),
            security,
        })
    }

    /// The settings the system runs with.
    pub fn settings(&self) -> &SystemSettings {
        &self.settings
    }

    /// Where this node's security events are recorded and counted.
    pub fn security(&self) -> &Arc<SecurityLog> {
        &self.security
    }

    /// Resolves when the root supervisor has stopped (after [`System::shutdown`], or because a
    /// child failed too often).
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|stopped| *stopped).await;
    }

    /// Starts a session for an authenticated connection. Its first frame (`welcome`) is pushed
    /// into `outbound` before this returns.
    ///
    /// # Errors
    /// [`Error::TooManyConnections`] if the user is at the limit; [`Error::Unavailable`] if the
    /// session actor cannot start.
    pub async fn open_session(
        &self,
        identity: Identity,
        outbound: Outbound,
    ) -> Result<SessionHandle, Error> {
        self.open_session_from(identity, outbound, None).await
    }

    /// [`System::open_session`] for a connection from `remote`, which the session's security
    /// events name.
    ///
    /// # Errors
    /// As [`System::open_session`].
    pub async fn open_session_from(
        &self,
        identity: Identity,
        outbound: Outbound,
        remote: Option<std::net::SocketAddr>,
    ) -> Result<SessionHandle, Error> {
        let slot = self
            .limits
            .open_connection(&identity.tenant_id, &identity.user_id)?;
        let session_id = self.ids.session_id();
        let actor = SessionActor::new(session_id, Arc::clone(&self.session_context));
        let args = SessionArgs {
            identity,
            outbound: outbound.clone(),
            slot,
            remote,
        };
        let (session, _) = Actor::spawn_linked(None, actor, args, self.handles.sessions.get_cell())
            .await
            .map_err(|_| Error::unavailable("the session could not start"))?;
        let _ = self.handles.sessions.cast(SessionsMsg::Register {
            actor_id: session.get_id(),
            outbound,
        });
        Ok(SessionHandle::new(session_id, session))
    }

    /// Creates a conversation; the creator becomes its owner and every listed user a member.
    ///
    /// # Errors
    /// The validation errors of [`validate_new_conversation`]; [`Error::Unavailable`] if storage
    /// fails.
    pub async fn create_conversation(
        &self,
        creator: &Identity,
        kind: ConversationKind,
        title: Option<String>,
        member_ids: Vec<switchboard_engine::ids::UserId>,
    ) -> Result<(ConversationSnapshot, bool), Error> {
        let mut others: Vec<switchboard_engine::ids::UserId> = Vec::new();
        let mut creator_listed = false;
        for user_id in member_ids {
            if user_id == creator.user_id {
                creator_listed = true;
            } else if !others.contains(&user_id) {
                others.push(user_id);
            }
        }
        validate_new_conversation(
            kind,
            title.as_deref(),
            others.len(),
            creator_listed && kind == ConversationKind::Direct,
            self.settings.max_members,
        )?;
        let now = self.ids.clock().now();
        let conversation = Conversation::new(
            self.ids.conversation_id(),
            creator.tenant_id.clone(),
            kind,
            title,
            creator.user_id.clone(),
            now,
        );
        let mut members = vec![Member {
            user_id: creator.user_id.clone(),
            role: Role::Owner,
            joined_at: now,
        }];
        members.extend(others.into_iter().map(|user_id| Member {
            user_id,
            role: Role::Member,
            joined_at: now,
        }));
        members.sort_by(|left, right| left.user_id.cmp(&right.user_id));
        let direct_with = match (kind, members.as_slice()) {
            (ConversationKind::Direct, [first, second]) => {
                Some((first.user_id.clone(), second.user_id.clone()))
            }
            _ => None,
        };
        if let Some((first, second)) = &direct_with
            && let Some(existing) = self.existing_direct(creator, first, second).await?
        {
            return Ok((existing, false));
        }
        match self
            .store
            .create_conversation(&conversation, &members)
            .await
        {
            Ok(()) => {}
            // Another request created this pair's conversation first: answer with it.
            Err(StoreError::AlreadyExists) if direct_with.is_some() => {
                let (first, second) = direct_with.as_ref().ok_or(Error::NotFound)?;
                let existing = self.existing_direct(creator, first, second).await?;
                return existing.map(|existing| (existing, false)).ok_or_else(|| {
                    Error::unavailable("the direct conversation could not be read")
                });
            }
            Err(error) => return Err(error.into()),
        }
        Ok((
            ConversationSnapshot {
                conversation,
                members,
            },
            true,
        ))
    }

    async fn existing_direct(
        &self,
        creator: &Identity,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationSnapshot>, Error> {
        let Some(conversation_id) = self
            .store
            .direct_conversation(&creator.tenant_id, first, second)
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .load_conversation(&creator.tenant_id, conversation_id)
            .await?)
    }

    fn key(identity: &Identity, conversation_id: ConversationId) -> ConversationKey {
        ConversationKey {
            tenant_id: identity.tenant_id.clone(),
            conversation_id,
        }
    }

    async fn await_reply<T>(
        &self,
        receiver: ractor::concurrency::OneshotReceiver<Result<T, Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.settings.call_timeout, receiver).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::unavailable("the conversation is restarting; retry")),
            Err(_) => Err(Error::unavailable(
                "the conversation did not answer in time",
            )),
        }
    }

    /// The conversation, if `identity` is a member.
    ///
    /// # Errors
    /// [`Error::NotFound`] (also for other tenants' conversations), [`Error::NotMember`],
    /// [`Error::Unavailable`].
    pub async fn conversation(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
    ) -> Result<ConversationSnapshot, Error> {
        let (sender, receiver) = ractor::concurrency::oneshot();
        self.handles.conversations.route(
            Self::key(identity, conversation_id),
            ConversationMsg::Inspect {
                user_id: identity.user_id.clone(),
                reply: sender.into(),
            },
        );
        self.await_reply(receiver).await
    }

    /// Takes one token of `class` from the user's budget now.
    async fn take_budget(&self, identity: &Identity, class: ActionClass) -> Result<(), Error> {
        self.limits
            .take(
                class,
                &identity.tenant_id,
                &identity.user_id,
                self.ids.clock().now(),
            )
            .await
    }

    /// Sends a message on behalf of `identity` and waits until it is durable.
    ///
    /// # Errors
    /// Every rejection a WebSocket send can get: [`Error::RateLimited`], [`Error::NotMember`],
    /// [`Error::NotFound`], [`Error::Invalid`], [`Error::TooLarge`], [`Error::Unavailable`].
    pub async fn send(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        new_message: NewMessage,
    ) -> Result<SentMessage, Error> {
        self.take_budget(identity, ActionClass::Messages).await?;
        self.send_unlimited(identity, conversation_id, new_message)
            .await
    }

    /// Applies the rate limit, routes a request acknowledged by `client_id` (built around its
    /// ack by `make_message`) to its conversation, and waits for the final ack.
    async fn submit(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        class: ActionClass,
        make_message: impl FnOnce(UserId, AckGuard) -> ConversationMsg,
    ) -> Result<SendReceipt, Error> {
        self.take_budget(identity, class).await?;
        self.submit_unlimited(identity, conversation_id, make_message)
            .await
    }

    /// [`Self::submit`] for a request whose rate-limit token was already taken.
    async fn submit_unlimited(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        make_message: impl FnOnce(UserId, AckGuard) -> ConversationMsg,
    ) -> Result<SendReceipt, Error> {
        let (sender, receiver) = ractor::concurrency::oneshot();
        self.handles.conversations.route(
            Self::key(identity, conversation_id),
            make_message(
                identity.user_id.clone(),
                AckGuard::new(AckTarget::Reply(sender.into())),
            ),
        );
        self.await_reply(receiver).await
    }

    /// Copies messages of one conversation into others on behalf of `identity`: each copy is a
    /// new message of the caller's with `forwarded_from` naming the original (the first one,
    /// for a copy of a copy). The caller must be a member of the source and may post in each
    /// target under that target's rules. One messages token is taken per target. Each copy's
    /// `client_id` is `<client_id>+<index>`, so retrying the same forward stores nothing twice.
    ///
    /// # Errors
    /// For the request as a whole: [`Error::Invalid`] (no messages or targets, a `client_id`
    /// over 62 bytes), [`Error::TooLarge`] (over the configured counts), the errors of
    /// [`System::conversation`] for the source, [`Error::NotFound`] for a message that is not
    /// in it, [`Error::Conflict`] for a deleted one, [`Error::RateLimited`]. Per target: what a
    /// send there would get.
    pub async fn forward(
        &self,
        identity: &Identity,
        source: ConversationId,
        message_ids: Vec<MessageId>,
        targets: Vec<ConversationId>,
        client_id: &ClientId,
    ) -> Result<Vec<ForwardOutcome>, Error> {
        let mut message_ids = message_ids;
        let mut seen = std::collections::HashSet::new();
        message_ids.retain(|message_id| seen.insert(*message_id));
        let mut targets = targets;
        let mut seen = std::collections::HashSet::new();
        targets.retain(|target| seen.insert(*target));
        if message_ids.is_empty() {
            return Err(Error::invalid(
                "message_ids",
                "must name at least one message",
            ));
        }
        if targets.is_empty() {
            return Err(Error::invalid("to", "must name at least one conversation"));
        }
        for (what, count, limit) in [
            (
                "message_ids",
                message_ids.len(),
                self.settings.forward_max_messages,
            ),
            ("to", targets.len(), self.settings.forward_max_targets),
        ] {
            if count > limit {
                return Err(Error::TooLarge {
                    what: what.into(),
                    limit,
                    actual: count,
                });
            }
        }
        const MAX_FORWARD_CLIENT_ID_BYTES: usize = 62;
        if client_id.as_str().len() > MAX_FORWARD_CLIENT_ID_BYTES {
            return Err(Error::invalid(
                "client_id",
                format!(
                    "must be at most {MAX_FORWARD_CLIENT_ID_BYTES} bytes for a forward (each copy appends +<index>)"
                ),
            ));
        }
        self.conversation(identity, source).await?;
        let mut originals = Vec::with_capacity(message_ids.len());
        for message_id in message_ids {
            let original = self
                .store
                .message_by_id(&identity.tenant_id, source, message_id)
                .await?
                .ok_or(Error::NotFound)?;
            if original.state.deleted.is_some() {
                return Err(Error::Conflict {
                    reason: format!("message {message_id} was deleted"),
                });
            }
            originals.push(original);
        }
        for _ in &targets {
            self.take_budget(identity, ActionClass::Messages).await?;
        }
        let mut outcomes = Vec::with_capacity(targets.len());
        for target in targets {
            let mut copies = Vec::with_capacity(originals.len());
            let mut failure = None;
            for (index, original) in originals.iter().enumerate() {
                let origin = original
                    .forwarded_from
                    .clone()
                    .unwrap_or_else(|| ForwardedFrom {
                        conversation_id: source,
                        message_id: original.message_id,
                        sender_id: original.sender_id.clone(),
                    });
                let new_message = NewMessage {
                    client_id: ClientId::parse(&format!("{client_id}+{index}"))?,
                    text: original.text.clone(),
                    reply_to: None,
                    thread_root: None,
                    forwarded_from: Some(Box::new(origin)),
                };
                match self.send_unlimited(identity, target, new_message).await {
                    Ok(copy) => copies.push(copy),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            outcomes.push(ForwardOutcome {
                conversation_id: target,
                result: failure.map_or(Ok(copies), Err),
            });
        }
        Ok(outcomes)
    }

    async fn send_unlimited(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        new_message: NewMessage,
    ) -> Result<SentMessage, Error> {
        let SendReceipt {
            message_ref,
            created,
        } = self
            .submit_unlimited(identity, conversation_id, |sender_id, ack| {
                ConversationMsg::Send {
                    sender_id,
                    new_message,
                    ack,
                }
            })
            .await?;
        let message = self
            .store
            .message_by_id(&identity.tenant_id, conversation_id, message_ref.message_id)
            .await?
            .ok_or_else(|| Error::unavailable("the stored message could not be read back"))?;
        Ok(SentMessage { message, created })
    }

    /// Edits, deletes or reacts to a message on behalf of `identity` and waits until the event
    /// is durable.
    ///
    /// # Errors
    /// As [`System::send`], plus [`Error::Forbidden`] (not the author, window over, role) and
    /// [`Error::Conflict`] (already deleted, already reacted).
    pub async fn operate(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        new_operation: NewOperation,
    ) -> Result<OperationResult, Error> {
        let message_id = new_operation.operation.message_id();
        let SendReceipt {
            message_ref,
            created,
        } = self
            .submit(
                identity,
                conversation_id,
                ActionClass::Operations,
                |actor_id, ack| ConversationMsg::Operate {
                    actor_id,
                    new_operation,
                    ack,
                },
            )
            .await?;
        let message = self
            .store
            .message_by_id(&identity.tenant_id, conversation_id, message_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(OperationResult {
            event: message_ref,
            message,
            created,
        })
    }

    /// The conversation with the caller's cursors and unread count.
    ///
    /// # Errors
    /// As [`System::conversation`].
    pub async fn member_view(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
    ) -> Result<MemberView, Error> {
        let snapshot = self.conversation(identity, conversation_id).await?;
        let cursors = self
            .store
            .read_cursors(&identity.tenant_id, conversation_id, &identity.user_id)
            .await?;
        self.view_with(identity, snapshot, cursors).await
    }

    async fn view_with(
        &self,
        identity: &Identity,
        snapshot: ConversationSnapshot,
        cursors: ReadCursors,
    ) -> Result<MemberView, Error> {
        let conversation_id = snapshot.conversation.conversation_id;
        let unread_count = self
            .store
            .count_unread(
                &identity.tenant_id,
                conversation_id,
                &identity.user_id,
                cursors.read,
                MAX_COUNTED_UNREAD,
            )
            .await?;
        let head = self
            .store
            .head(&identity.tenant_id, conversation_id)
            .await?;
        let settings = self
            .store
            .member_settings(&identity.tenant_id, conversation_id, &identity.user_id)
            .await?;
        Ok(MemberView {
            snapshot,
            cursors,
            unread_count,
            head,
            settings,
        })
    }

    /// Moves the caller's receipt cursors forward (never back, never past the head) and returns
    /// the view after the move; the conversation's joined sessions get a `receipt` event.
    ///
    /// # Errors
    /// As [`System::conversation`].
    pub async fn mark(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        read: Option<Seq>,
        delivered: Option<Seq>,
    ) -> Result<MemberView, Error> {
        self.take_budget(identity, ActionClass::Signals).await?;
        let (sender, receiver) = ractor::concurrency::oneshot();
        let request = ReceiptRequest {
            user_id: identity.user_id.clone(),
            read,
            delivered,
            session_id: None,
            reply: sender.into(),
        };
        self.handles.conversations.route(
            Self::key(identity, conversation_id),
            ConversationMsg::Receipt(Box::new(request)),
        );
        let cursors = self.await_reply(receiver).await?;
        let snapshot = self.conversation(identity, conversation_id).await?;
        self.view_with(identity, snapshot, cursors).await
    }

    /// Changes a conversation itself (members, roles, profile, archive, moderation) on behalf
    /// of `identity` and waits until the event is durable.
    ///
    /// # Errors
    /// As [`System::send`], plus those of
    /// [`authorize_change`](switchboard_engine::membership::authorize_change).
    pub async fn change(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        client_id: ClientId,
        change: ConversationChange,
    ) -> Result<ChangeResult, Error> {
        let SendReceipt {
            message_ref,
            created,
        } = self
            .submit(
                identity,
                conversation_id,
                ActionClass::Changes,
                |actor_id, ack| {
                    ConversationMsg::Change(Box::new(ChangeRequest {
                        actor_id,
                        client_id,
                        change,
                        ack,
                    }))
                },
            )
            .await?;
        let snapshot = self
            .store
            .load_conversation(&identity.tenant_id, conversation_id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(ChangeResult {
            event: message_ref,
            snapshot,
            created,
        })
    }

    /// The conversations `identity` is a member of, in id order, after `after`, at most
    /// `limit`, each with the member's role, cursors, unread count, settings and the newest
    /// message.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if storage fails.
    pub async fn my_conversations(
        &self,
        identity: &Identity,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationListing>, Error> {
        let tenant_id = &identity.tenant_id;
        let ids = self
            .store
            .conversations_of_user(tenant_id, &identity.user_id, after, limit)
            .await?;
        let mut listings = Vec::with_capacity(ids.len());
        for conversation_id in ids {
            // The index and the conversation are written in one batch, so a listed
            // conversation exists; skip rather than fail if it somehow does not.
            let Some(snapshot) = self
                .store
                .load_conversation(tenant_id, conversation_id)
                .await?
            else {
                continue;
            };
            let cursors = self
                .store
                .read_cursors(tenant_id, conversation_id, &identity.user_id)
                .await?;
            let view = self.view_with(identity, snapshot, cursors).await?;
            let last_message = self
                .store
                .messages_before(tenant_id, conversation_id, None, 1)
                .await?
                .pop();
            listings.push(ConversationListing { view, last_message });
        }
        Ok(listings)
    }

    /// Changes the caller's own settings for a conversation and returns them.
    ///
    /// # Errors
    /// As [`System::conversation`].
    pub async fn update_settings(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        change: SettingsChange,
    ) -> Result<MemberSettings, Error> {
        self.conversation(identity, conversation_id).await?;
        let tenant_id = &identity.tenant_id;
        let mut settings = self
            .store
            .member_settings(tenant_id, conversation_id, &identity.user_id)
            .await?;
        settings.notifications_muted_until = match change.notifications_muted_until {
            Patch::Keep => settings.notifications_muted_until,
            Patch::Clear => None,
            Patch::Set(until) => Some(until),
        };
        settings.archived = change.archived.unwrap_or(settings.archived);
        settings.pinned = change.pinned.unwrap_or(settings.pinned);
        self.store
            .set_member_settings(tenant_id, conversation_id, &identity.user_id, settings)
            .await?;
        Ok(settings)
    }

    /// The presence of users who share a conversation with `identity`, and the users named that
    /// do not (whose presence is not shown).
    ///
    /// # Errors
    /// [`Error::TooLarge`] for more than 100 users, [`Error::RateLimited`] (a signal),
    /// storage errors.
    pub async fn presence(
        &self,
        identity: &Identity,
        user_ids: Vec<UserId>,
    ) -> Result<(Vec<PresenceEntry>, Vec<UserId>), Error> {
        if user_ids.len() > MAX_WATCHED_PER_REQUEST {
            return Err(Error::TooLarge {
                what: "user_ids".into(),
                limit: MAX_WATCHED_PER_REQUEST,
                actual: user_ids.len(),
            });
        }
        self.take_budget(identity, ActionClass::Signals).await?;
        let mut visible = Vec::new();
        let mut refused = Vec::new();
        for user_id in user_ids {
            if shares_a_conversation(
                self.store.as_ref(),
                &identity.tenant_id,
                &identity.user_id,
                &user_id,
            )
            .await?
            {
                visible.push(
                    self.session_context
                        .presence
                        .view(&identity.tenant_id, &user_id)
                        .await,
                );
            } else {
                refused.push(user_id);
            }
        }
        Ok((visible, refused))
    }

    /// TURN credentials and ICE servers for a WebRTC caller.
    ///
    /// # Errors
    /// [`Error::RateLimited`] (a signal); [`Error::Unavailable`] when no TURN service is
    /// configured.
    pub async fn ice_servers(
        &self,
        identity: &Identity,
        ttl_secs: Option<u64>,
    ) -> Result<IceServers, Error> {
        self.session_context.ice_servers(identity, ttl_secs).await
    }

    /// A page of the moderation log, newest first, for moderators and stronger.
    ///
    /// # Errors
    /// As [`System::conversation`], and [`Error::Forbidden`] below moderator.
    pub async fn moderation_log(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, Error> {
        let snapshot = self.conversation(identity, conversation_id).await?;
        let role = snapshot
            .member(&identity.user_id)
            .map(|member| member.role)
            .ok_or(Error::NotMember)?;
        permissions::check(
            snapshot.conversation.kind,
            role,
            Action::ReadModerationLog,
            None,
            None,
        )?;
        Ok(self
            .store
            .moderation_log(&identity.tenant_id, conversation_id, before, limit)
            .await?)
    }

    /// One message in its current state, for a member.
    ///
    /// # Errors
    /// As [`System::conversation`], and [`Error::NotFound`] for an unknown message.
    pub async fn message(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(Message, Role), Error> {
        let snapshot = self.conversation(identity, conversation_id).await?;
        let role = snapshot
            .member(&identity.user_id)
            .map(|member| member.role)
            .ok_or(Error::NotMember)?;
        let message = self
            .store
            .message_by_id(&identity.tenant_id, conversation_id, message_id)
            .await?
            .ok_or(Error::NotFound)?;
        let hidden = self
            .store
            .hidden_messages(&identity.tenant_id, conversation_id, &identity.user_id)
            .await?;
        if hidden.contains(&message_id) {
            return Err(Error::NotFound);
        }
        Ok((message, role))
    }

    /// A page of a thread's replies, oldest first: those after `after`.
    ///
    /// # Errors
    /// As [`System::message`] (for the root).
    pub async fn thread(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<(Message, HistoryPage), Error> {
        let (root_message, _) = self.message(identity, conversation_id, root).await?;
        let replies = self
            .store
            .thread_replies(&identity.tenant_id, conversation_id, root, after, limit)
            .await?;
        let page = self
            .without_hidden(identity, conversation_id, replies, limit)
            .await?;
        Ok((root_message, page))
    }

    /// A page of history, newest first: messages below `before` (or the newest), without
    /// those the caller deleted for themself.
    ///
    /// # Errors
    /// As [`System::conversation`].
    pub async fn history_before(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<HistoryPage, Error> {
        self.conversation(identity, conversation_id).await?;
        let messages = self
            .store
            .messages_before(&identity.tenant_id, conversation_id, before, limit)
            .await?;
        self.without_hidden(identity, conversation_id, messages, limit)
            .await
    }

    /// A page of history, oldest first: messages after `after`, without those the caller
    /// deleted for themself.
    ///
    /// # Errors
    /// As [`System::conversation`].
    pub async fn history_after(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<HistoryPage, Error> {
        self.conversation(identity, conversation_id).await?;
        let messages = self
            .store
            .messages_after(&identity.tenant_id, conversation_id, after, limit)
            .await?;
        self.without_hidden(identity, conversation_id, messages, limit)
            .await
    }

    /// A page read from storage, minus the caller's hidden messages; `next` is where the next
    /// page starts, when the page read was full.
    async fn without_hidden(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        mut messages: Vec<Message>,
        limit: usize,
    ) -> Result<HistoryPage, Error> {
        let next = if messages.len() == limit {
            messages.last().map(|last| last.seq)
        } else {
            None
        };
        let hidden = self
            .store
            .hidden_messages(&identity.tenant_id, conversation_id, &identity.user_id)
            .await?;
        messages.retain(|message| !hidden.contains(&message.message_id));
        Ok(HistoryPage { messages, next })
    }

    /// Deletes a message for the caller only: it disappears from their history and thread
    /// listings, and their sessions see `skipped` in its place in the seq stream.
    ///
    /// # Errors
    /// As [`System::conversation`], [`Error::NotFound`] for an unknown message,
    /// [`Error::RateLimited`] (an operation).
    pub async fn hide_for_me(
        &self,
        identity: &Identity,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<(), Error> {
        self.take_budget(identity, ActionClass::Operations).await?;
        let (sender, receiver) = ractor::concurrency::oneshot();
        self.handles.conversations.route(
            Self::key(identity, conversation_id),
            ConversationMsg::Hide {
                user_id: identity.user_id.clone(),
                message_id,
                reply: sender.into(),
            },
        );
        self.await_reply(receiver).await
    }

    /// Checks that storage, the cluster bus (when there is one) and the object store answer.
    ///
    /// # Errors
    /// [`Error::Unavailable`].
    pub async fn ready(&self) -> Result<(), Error> {
        match tokio::time::timeout(self.settings.call_timeout, self.store.ping()).await {
            // The probe is for operators: it says what is missing (clients' errors do not).
            Ok(Err(error)) => Err(Error::unavailable(error.to_string())),
            Ok(Ok(())) => {
                if let Some(cluster) = &self.cluster {
                    cluster
                        .ready()
                        .map_err(|reason| Error::unavailable(format!("cluster bus: {reason}")))?;
                }
                self.objects_ready().await
            }
            Err(_) => Err(Error::unavailable("storage did not answer in time")),
        }
    }

    /// How many conversation actors are running.
    ///
    /// # Errors
    /// If the supervisor does not answer.
    pub async fn n_conversations(&self) -> crate::Result<usize> {
        self.handles
            .conversations
            .n_running(self.settings.call_timeout)
            .await
    }

    /// The handles of the root's children (for tests and diagnostics).
    pub fn handles(&self) -> &RootHandles {
        &self.handles
    }

    /// How many sessions are alive.
    ///
    /// # Errors
    /// If the supervisor does not answer.
    pub async fn n_sessions(&self) -> crate::Result<usize> {
        match self
            .handles
            .sessions
            .call(SessionsMsg::Count, Some(self.settings.call_timeout))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(n_sessions)) => Ok(n_sessions),
            _ => Err(crate::Error::Timeout {
                what: "the sessions supervisor",
            }),
        }
    }

    /// Shuts down in order: close every session ("going away"), drain conversations, drain the
    /// writer (committing what it holds), stop the root. Waits at most `deadline` per step.
    pub async fn shutdown(&self, deadline: Duration) {
        let _ = self.root.call(RootMsg::BeginShutdown, Some(deadline)).await;
        let _ = self
            .handles
            .sessions
            .call(
                |reply| SessionsMsg::CloseAll(CloseReason::ServerShutdown, reply),
                Some(deadline),
            )
            .await;
        let conversations = self.handles.conversations.actor();
        conversations.drain_children_and_wait(Some(deadline)).await;
        let _ = conversations.drain_and_wait(Some(deadline)).await;
        let writer = self.handles.writer.actor();
        if writer.drain_and_wait(Some(deadline)).await.is_err() {
            tracing::error!("the writer did not drain before the deadline");
        }
        self.handles.sessions.stop(None);
        self.root.stop(None);
        let mut stopped = self.stopped.clone();
        let _ = tokio::time::timeout(deadline, stopped.wait_for(|stopped| *stopped)).await;
    }
}

#[cfg(test)]
mod tests;
