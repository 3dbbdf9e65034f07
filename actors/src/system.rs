//! The actor system's facade: [`System`], the handle the transport layer uses for everything,
//! and what it starts with.
//!
//! [`System::start`] spawns the tree (root → {writer, conversations supervisor → conversations,
//! sessions supervisor → sessions}; see [`crate::root`] and [`crate::sessions`]) and
//! [`System::shutdown`] stops it in order, so in-flight work reaches a safe state: close every
//! session's queue (clients get "going away"), drain the conversations, drain the writer
//! (committing whatever it holds), then stop the root.
//!
//! Every other method is a one-line hand-off to the service module of its capability:
//! `conversations` (creating, viewing, listing and changing conversations, receipts, a member's
//! settings), `messages` (send, forward, operate), `history` (pages, one message, threads, the
//! moderation log, delete for me), `presence` and `recordings`. The facade shows what the system
//! can do; each module shows how. The request and answer types live with their service and are
//! re-exported here.

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorRef};
use switchboard_engine::Error;
use switchboard_engine::event::EventEncoder;
use switchboard_engine::ids::ClientId;
use switchboard_engine::ids::{ConversationId, Seq};
use switchboard_engine::ids::{MessageId, TenantId, UserId};
use switchboard_engine::media::MediaStore;
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::{
    ConversationKind, ConversationSnapshot, MemberSettings, Message, NewMessage, Role,
};
use switchboard_engine::operations::{ConversationEvent, NewOperation};
use switchboard_engine::ports::{
    Clock, ClusterBus, IceServerProvider, IceServers, MessageStore, PresenceDirectory,
    SharedRateLimiter,
};
use switchboard_engine::rate_limit::{ActionClass, RateLimits};
use tokio::sync::watch;

use crate::clock::IdGenerator;
use crate::conversation::ConversationSettings;
use crate::conversations::ConversationKey;
use crate::limits::UserLimits;
use crate::outbound::{CloseReason, Outbound};
use crate::presence::{PresenceEntry, PresenceRegistry};
use crate::reply::{ReplyWait, call_within};
use crate::restart::RestartPolicy;
use crate::security::SecurityLog;
use crate::session::{Identity, SessionActor, SessionArgs, SessionContext, SessionHandle};
use crate::writer::WriterSettings;

mod conversations;
mod history;
mod messages;
mod presence;
mod recordings;
pub use crate::root::{RootActor, RootArgs, RootHandles, RootMsg, RootState};
pub use crate::sessions::{SessionsActor, SessionsMsg, SessionsState};
pub use crate::uploads::{
    MIN_UPLOAD_BYTES_PER_SECOND, OBJECT_TIMEOUT, UPLOAD_IDLE_TIMEOUT, UPLOAD_RATE_GRACE,
};
pub use conversations::{ChangeResult, ConversationListing, MemberView, SettingsChange};
pub use history::HistoryPage;
use history::PageStart;
pub use messages::{ForwardOutcome, OperationResult, SentMessage};
pub use recordings::{AuditPage, RecordingPorts, RecordingsPage};

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
    /// Media records, for the attachments history shows.
    media: Arc<dyn MediaStore>,
    /// This node's security events (refused tokens, access denials, limits, protocol abuse).
    security: Arc<SecurityLog>,
}

/// What a [`System`] runs on: storage, the event encoder, the clock and the other ports.
pub struct SystemPorts {
    /// Conversations and messages.
    pub store: Arc<dyn MessageStore>,
    /// Turns events into wire frames.
    pub encoder: Arc<dyn EventEncoder>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// ICE servers for calls, if configured.
    pub ice: Option<Arc<dyn IceServerProvider>>,
    /// What the nodes of a scale-out deployment share (`None` on a single node).
    pub cluster: Option<ClusterPorts>,
    /// Recordings' metadata and media.
    pub recordings: RecordingPorts,
    /// Media records: what messages may attach.
    pub media: Arc<dyn MediaStore>,
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

impl System {
    /// Starts the actor tree.
    ///
    /// # Errors
    /// [`crate::Error::Startup`] if the root or one of its children fails to start.
    pub async fn start(settings: SystemSettings, ports: SystemPorts) -> crate::Result<System> {
        let SystemPorts {
            store,
            encoder,
            clock,
            ice,
            cluster,
            recordings: recording_ports,
            media,
        } = ports;
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
            media: Arc::clone(&media),
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
            media,
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
        let args = SessionArgs {
            identity,
            outbound,
            slot,
            remote,
        };
        Ok(SessionActor::start(
            session_id,
            Arc::clone(&self.session_context),
            args,
            &self.handles.sessions,
        ))
    }

    /// Creates a conversation; the creator becomes its owner and every listed user a member.
    ///
    /// # Errors
    /// The validation errors of
    /// [`validate_new_conversation`](switchboard_engine::validate::validate_new_conversation); [`Error::Unavailable`] if storage
    /// fails.
    pub async fn create_conversation(
        &self,
        creator: &Identity,
        kind: ConversationKind,
        title: Option<String>,
        member_ids: Vec<switchboard_engine::ids::UserId>,
    ) -> Result<(ConversationSnapshot, bool), Error> {
        conversations::create_conversation(self, creator, kind, title, member_ids).await
    }

    fn key(identity: &Identity, conversation_id: ConversationId) -> ConversationKey {
        ConversationKey {
            tenant_id: identity.tenant_id.clone(),
            conversation_id,
        }
    }

    /// How long a caller waits for a conversation's answer, and what it says otherwise.
    fn wait(&self) -> ReplyWait {
        ReplyWait::system(self.settings.call_timeout)
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
        conversations::conversation(self, identity, conversation_id).await
    }

    /// Takes one action of `class` from the caller's budget (the node's, or the cluster's
    /// shared one): for callers outside the system's own services, such as search.
    ///
    /// # Errors
    /// [`Error::RateLimited`] with the wait before the next one is allowed.
    pub async fn take_budget(&self, identity: &Identity, class: ActionClass) -> Result<(), Error> {
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
        messages::send(self, identity, conversation_id, new_message).await
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
        messages::forward(self, identity, source, message_ids, targets, client_id).await
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
        messages::operate(self, identity, conversation_id, new_operation).await
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
        conversations::member_view(self, identity, conversation_id).await
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
        conversations::mark(self, identity, conversation_id, read, delivered).await
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
        conversations::change(self, identity, conversation_id, client_id, change).await
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
        conversations::my_conversations(self, identity, after, limit).await
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
        conversations::update_settings(self, identity, conversation_id, change).await
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
        presence::presence(self, identity, user_ids).await
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
        history::moderation_log(self, identity, conversation_id, before, limit).await
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
        history::message(self, identity, conversation_id, message_id).await
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
        history::thread(self, identity, conversation_id, root, after, limit).await
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
        let start = PageStart::Before(before);
        history::page(self, identity, conversation_id, start, limit).await
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
        let start = PageStart::After(after);
        history::page(self, identity, conversation_id, start, limit).await
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
        history::hide_for_me(self, identity, conversation_id, message_id).await
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
        const WHAT: &str = "the sessions supervisor";
        call_within(
            &self.handles.sessions,
            SessionsMsg::Count,
            self.settings.call_timeout,
            WHAT,
        )
        .await
        // A stopped supervisor is reported as one that did not answer.
        .map_err(|_| crate::Error::Timeout { what: WHAT })
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
