//! The conversations supervisor: starts conversation actors on demand, routes messages to them,
//! retires idle ones and applies the restart policy to ones that fail.
//!
//! It is the only place that maps a `(tenant, conversation)` to an actor, so there is never more
//! than one actor per conversation. Spawning does not wait on storage (a conversation loads in
//! its first message), so one slow load never stalls routing for everyone else.
//!
//! Retirement is a handshake: an idle conversation asks to retire; the supervisor forgets it
//! first and then drains it, so a message that raced with the retirement is either processed
//! by the old actor or refused at send time and routed to a fresh one. Nothing is dropped
//! silently: refused sends come back to the sender, and a dropped send rejects itself.

use foldhash::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, MessagingErr, SupervisionEvent};
use switchboard_engine::ids::{ConversationId, TenantId};
use tokio::time::Instant;

use crate::conversation::{
    ConversationActor, ConversationArgs, ConversationContext, ConversationMsg,
};
use crate::reply::call_within;
use crate::restart::{RestartDecision, RestartPolicy, RestartTracker, SharedActorRef};

/// A conversation's identity: always with its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The conversation.
    pub conversation_id: ConversationId,
}

/// The supervisor's messages.
#[allow(
    clippy::large_enum_variant,
    reason = "Route is nearly every message; boxing it would allocate once per routed request"
)]
pub enum ConversationsMsg {
    /// Deliver a message to the conversation, starting its actor if needed.
    Route {
        /// Which conversation.
        key: ConversationKey,
        /// What to deliver.
        message: ConversationMsg,
    },
    /// An idle conversation asks to stop.
    Retire {
        /// Which conversation.
        key: ConversationKey,
        /// Which incarnation is asking (a newer one must not be retired by an old request).
        actor_id: ActorId,
    },
    /// How many conversation actors are running (for tests and metrics).
    Count(ractor::RpcReplyPort<usize>),
    /// The running actor of a conversation, if any (for tests and diagnostics).
    Lookup(
        ConversationKey,
        ractor::RpcReplyPort<Option<ActorRef<ConversationMsg>>>,
    ),
}

struct Failures {
    tracker: RestartTracker,
    /// Requests for the conversation are refused until then.
    blocked_until: Option<Instant>,
}

/// The supervisor's state.
pub struct ConversationsState {
    running: HashMap<ConversationKey, ActorRef<ConversationMsg>>,
    keys_by_actor: HashMap<ActorId, ConversationKey>,
    failures: HashMap<ConversationKey, Failures>,
    /// The origin for restart-policy time.
    started_at: Instant,
}

/// What the supervisor starts with.
pub struct ConversationsArgs {
    /// Shared services for conversation actors.
    pub context: Arc<ConversationContext>,
}

/// The conversations supervisor actor.
pub struct ConversationsActor {
    context: Arc<ConversationContext>,
    restart_policy: RestartPolicy,
}

impl ConversationsActor {
    /// A supervisor with this context and restart policy.
    pub fn new(context: Arc<ConversationContext>, restart_policy: RestartPolicy) -> Self {
        ConversationsActor {
            context,
            restart_policy,
        }
    }

    async fn spawn_conversation(
        &self,
        myself: &ActorRef<ConversationsMsg>,
        state: &mut ConversationsState,
        key: &ConversationKey,
    ) -> Result<ActorRef<ConversationMsg>, ActorProcessingErr> {
        let args = ConversationArgs {
            key: key.clone(),
            context: Arc::clone(&self.context),
            supervisor: myself.clone(),
        };
        let actor = ConversationActor::new(&args);
        let (conversation, _) = Actor::spawn_linked(None, actor, args, myself.get_cell()).await?;
        state.running.insert(key.clone(), conversation.clone());
        state
            .keys_by_actor
            .insert(conversation.get_id(), key.clone());
        Ok(conversation)
    }

    fn forget(state: &mut ConversationsState, actor_id: ActorId) -> Option<ConversationKey> {
        let key = state.keys_by_actor.remove(&actor_id)?;
        if state
            .running
            .get(&key)
            .is_some_and(|running| running.get_id() == actor_id)
        {
            state.running.remove(&key);
        }
        Some(key)
    }
}

impl Actor for ConversationsActor {
    type Msg = ConversationsMsg;
    type State = ConversationsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<ConversationsMsg>,
        _args: (),
    ) -> Result<ConversationsState, ActorProcessingErr> {
        Ok(ConversationsState {
            running: HashMap::default(),
            keys_by_actor: HashMap::default(),
            failures: HashMap::default(),
            started_at: Instant::now(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConversationsMsg>,
        message: ConversationsMsg,
        state: &mut ConversationsState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConversationsMsg::Route { key, message } => {
                if let Some(failures) = state.failures.get(&key)
                    && failures
                        .blocked_until
                        .is_some_and(|until| Instant::now() < until)
                {
                    // Dropping the message refuses it: sends reject themselves as
                    // unavailable and callers waiting on a reply see it vanish.
                    return Ok(());
                }
                let mut message = message;
                if let Some(running) = state.running.get(&key) {
                    match running.cast(message) {
                        Ok(()) => return Ok(()),
                        Err(MessagingErr::SendErr(returned)) => {
                            let actor_id = running.get_id();
                            Self::forget(state, actor_id);
                            message = returned;
                        }
                        Err(_) => return Ok(()),
                    }
                }
                let conversation = self.spawn_conversation(&myself, state, &key).await?;
                let _ = conversation.cast(message);
            }
            ConversationsMsg::Retire { key, actor_id } => {
                let is_current = state
                    .running
                    .get(&key)
                    .is_some_and(|running| running.get_id() == actor_id);
                if is_current && let Some(running) = state.running.remove(&key) {
                    state.keys_by_actor.remove(&actor_id);
                    let _ = running.drain();
                }
            }
            ConversationsMsg::Count(reply) => {
                let _ = reply.send(state.running.len());
            }
            ConversationsMsg::Lookup(key, reply) => {
                let _ = reply.send(state.running.get(&key).cloned());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<ConversationsMsg>,
        event: SupervisionEvent,
        state: &mut ConversationsState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                Self::forget(state, cell.get_id());
            }
            SupervisionEvent::ActorFailed(cell, error) => {
                let Some(key) = Self::forget(state, cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(
                    conversation_id = %key.conversation_id,
                    tenant_id = %key.tenant_id,
                    %error,
                    "conversation actor failed; it restarts on its next request"
                );
                let now = Instant::now().duration_since(state.started_at);
                let failures = state.failures.entry(key).or_insert_with(|| Failures {
                    tracker: RestartTracker::default(),
                    blocked_until: None,
                });
                // A conversation restarts lazily, on its next request; the backoff delay is
                // enforced by refusing requests until it has passed.
                let delay =
                    match failures
                        .tracker
                        .on_failure(&self.restart_policy, now, fastrand::f64())
                    {
                        RestartDecision::RestartAfter(delay) => delay,
                        RestartDecision::Escalate => self.restart_policy.max_delay,
                    };
                failures.blocked_until = Some(Instant::now() + delay);
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

/// How callers reach conversations: always through the supervisor's routing. Survives
/// restarts of the supervisor.
#[derive(Clone)]
pub struct ConversationsHandle {
    current: SharedActorRef<ConversationsMsg>,
}

impl ConversationsHandle {
    /// A handle to the supervisor.
    pub fn new(actor: ActorRef<ConversationsMsg>) -> Self {
        ConversationsHandle {
            current: SharedActorRef::new(actor),
        }
    }

    /// Points the handle at a restarted supervisor.
    pub fn replace(&self, actor: ActorRef<ConversationsMsg>) {
        self.current.replace(actor);
    }

    /// The current supervisor actor.
    pub fn actor(&self) -> ActorRef<ConversationsMsg> {
        self.current.get()
    }

    /// The running actor of a conversation, if any.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the supervisor does not answer.
    pub async fn lookup(
        &self,
        key: ConversationKey,
        timeout: Duration,
    ) -> crate::Result<Option<ActorRef<ConversationMsg>>> {
        call_within(
            &self.actor(),
            |reply| ConversationsMsg::Lookup(key, reply),
            timeout,
            "the conversations supervisor",
        )
        .await
    }

    /// How many conversation actors are running.
    ///
    /// # Errors
    /// [`crate::Error::Timeout`] or [`crate::Error::Stopped`] if the supervisor does not answer.
    pub async fn n_running(&self, timeout: Duration) -> crate::Result<usize> {
        call_within(
            &self.actor(),
            ConversationsMsg::Count,
            timeout,
            "the conversations supervisor",
        )
        .await
    }
}
