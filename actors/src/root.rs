//! The root supervisor: it starts the writer, the conversations supervisor and the sessions
//! supervisor, and restarts the first two when they fail, with capped, jittered backoff
//! ([`RestartPolicy`]); too many failures in a window escalate by stopping the root, which the
//! binary treats as fatal. A stopped sessions supervisor stops the root. Once shutdown begins,
//! nothing is restarted.

use std::sync::Arc;

use std::time::Duration;
use switchboard_engine::media::MediaStore;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use switchboard_engine::event::EventEncoder;
use switchboard_engine::ports::{Clock, ClusterBus, MessageStore};
use switchboard_engine::recording::RecordingStore;
use tokio::time::Instant;

use crate::conversation::ConversationContext;
use crate::conversations::{ConversationsActor, ConversationsHandle};
use crate::restart::{RestartDecision, RestartPolicy, RestartTracker};
use crate::sessions::{SessionsActor, SessionsMsg};
use crate::system::SystemSettings;
use crate::writer::{WriterActor, WriterArgs, WriterHandle};

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
    /// Media records.
    pub media: Arc<dyn MediaStore>,
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
            media: Arc::clone(&args.media),
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
