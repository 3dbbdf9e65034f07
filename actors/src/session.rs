//! The session actor: one per WebSocket connection (a lighter actor of our own under the
//! sessions supervisor; `session/mailbox.rs` runs it and says why it is not a ractor actor).
//!
//! The transport's reader task turns client frames into [`ClientRequest`]s and casts them here;
//! the session applies per-user rules (rate limit), routes requests to conversation actors and
//! writes its own replies (`welcome`, `pong`, `pending` acks, errors) into the connection's
//! [`Outbound`] queue. Conversation actors write their replies and events into the same queue
//! directly, so fan-out never passes through this actor.
//!
//! Every send (and every operation on a message: edit, delete, react) gets exactly one `pending`
//! ack from here, immediately, and exactly one final ack
//! (`delivered` or `rejected`) later: from here when the rate limit refuses it, otherwise from
//! the conversation (or from its [`AckGuard`] if the conversation goes away).

use foldhash::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use switchboard_engine::Error;
use switchboard_engine::event::{AckOutcome, EventEncoder, ServerEvent};
use switchboard_engine::ids::{
    ClientId, ConversationId, MessageId, RequestId, Seq, SessionId, TenantId, UserId,
};
use switchboard_engine::ports::{Clock, IceServerProvider, IceServers, MessageStore};
use switchboard_engine::rate_limit::ActionClass;

use crate::conversation::{
    AckGuard, AckTarget, CallRequest, ConversationHandle, JoinRequest, ReceiptRequest, Submission,
};
use crate::conversations::{ConversationKey, ConversationsHandle};
use crate::limits::{ConnectionSlot, UserLimits};
use crate::outbound::{CloseReason, Outbound};
use crate::presence::{MAX_WATCHED_PER_REQUEST, PresenceRegistry, shares_a_conversation};
use crate::reply::ReplyWait;
use crate::security::{CallerSecurity, SecurityLog};
use crate::sessions::SessionsMsg;

mod mailbox;
mod request;
pub use mailbox::{SessionAddress, SessionHandle};
pub use request::ClientRequest;

/// Who a session belongs to, as proven by its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
}

/// The session actor's messages.
pub enum SessionMsg {
    /// A client request. Boxed, so that a queued message (a node of the session's mailbox)
    /// stays small whatever the largest request is.
    Request(Box<ClientRequest>),
    /// A conversation this session had joined stopped unexpectedly; re-join after `last_seq`.
    SubscriptionLost {
        /// Which conversation.
        conversation_id: ConversationId,
        /// The last seq the conversation pushed to this session.
        last_seq: Seq,
    },
    /// Makes the handler panic: how the tests reach the path a failed session takes.
    #[cfg(test)]
    Panic,
}

/// A [`SessionMsg`] with its request unboxed, for matching.
enum SessionInput {
    Request(ClientRequest),
    SubscriptionLost {
        conversation_id: ConversationId,
        last_seq: Seq,
    },
    #[cfg(test)]
    Panic,
}

impl From<SessionMsg> for SessionInput {
    fn from(message: SessionMsg) -> Self {
        match message {
            SessionMsg::Request(request) => SessionInput::Request(*request),
            SessionMsg::SubscriptionLost {
                conversation_id,
                last_seq,
            } => SessionInput::SubscriptionLost {
                conversation_id,
                last_seq,
            },
            #[cfg(test)]
            SessionMsg::Panic => SessionInput::Panic,
        }
    }
}

/// What every session shares.
pub struct SessionContext {
    /// Routes to conversations.
    pub conversations: ConversationsHandle,
    /// Turns events into frames.
    pub encoder: Arc<dyn EventEncoder>,
    /// Per-user rate and connection limits.
    pub limits: Arc<UserLimits>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// How long to wait for a conversation to answer a join.
    pub call_timeout: Duration,
    /// Announced in `welcome`.
    pub heartbeat_ms: u64,
    /// Who is online.
    pub presence: Arc<PresenceRegistry>,
    /// Storage (to check who may watch whom).
    pub store: Arc<dyn MessageStore>,
    /// TURN credentials for WebRTC callers, when configured.
    pub ice: Option<Arc<dyn IceServerProvider>>,
    /// Where refusals are recorded as security events.
    pub security: Arc<SecurityLog>,
}

impl SessionContext {
    /// TURN credentials and ICE servers for `identity` (a signal, rate limited).
    ///
    /// # Errors
    /// [`Error::RateLimited`]; [`Error::Unavailable`] when no TURN service is configured.
    pub async fn ice_servers(
        &self,
        identity: &Identity,
        ttl_secs: Option<u64>,
    ) -> Result<IceServers, Error> {
        let now = self.clock.now();
        self.limits
            .take(
                ActionClass::Signals,
                &identity.tenant_id,
                &identity.user_id,
                now,
            )
            .await?;
        let ice = self
            .ice
            .as_ref()
            .ok_or_else(|| Error::unavailable("TURN credentials are not configured"))?;
        Ok(ice.ice_servers(&identity.tenant_id, &identity.user_id, now, ttl_secs))
    }
}

/// What a session actor starts with.
pub struct SessionArgs {
    /// The authenticated identity.
    pub identity: Identity,
    /// The connection's queue.
    pub outbound: Outbound,
    /// The user's connection slot, released when the session ends.
    pub slot: ConnectionSlot,
    /// Where the connection comes from, when the transport knows it (for security events).
    pub remote: Option<SocketAddr>,
}

/// The session's state.
pub struct SessionState {
    identity: Identity,
    outbound: Outbound,
    /// Records the access denials this session's requests get.
    security: Arc<CallerSecurity>,
    /// Joined conversations and the actor serving each (a cache; routing is the fallback).
    joined: HashMap<ConversationId, ConversationHandle>,
    /// This session's own address, handed to the conversations it joins.
    myself: SessionAddress,
    _slot: ConnectionSlot,
}

/// The session actor.
pub struct SessionActor {
    session_id: SessionId,
    context: Arc<SessionContext>,
}

impl SessionActor {
    /// The actor for one connection.
    pub fn new(session_id: SessionId, context: Arc<SessionContext>) -> Self {
        SessionActor {
            session_id,
            context,
        }
    }

    fn key(state: &SessionState, conversation_id: ConversationId) -> ConversationKey {
        ConversationKey {
            tenant_id: state.identity.tenant_id.clone(),
            conversation_id,
        }
    }

    fn push_error(&self, state: &SessionState, request_id: Option<&RequestId>, error: &Error) {
        state.security.refused(error);
        let frame = self
            .context
            .encoder
            .encode(&ServerEvent::Error { request_id, error });
        let _ = state.outbound.push(frame);
    }

    async fn join(
        &self,
        state: &mut SessionState,
        conversation_id: ConversationId,
        since: Option<Seq>,
        request_id: Option<RequestId>,
        announce: bool,
    ) -> Result<(), Error> {
        let join = JoinRequest {
            session_id: self.session_id,
            user_id: state.identity.user_id.clone(),
            since,
            request_id,
            announce,
            outbound: state.outbound.clone(),
            session: Some(state.myself.clone()),
        };
        let (_head, conversation) = self
            .context
            .conversations
            .join(Self::key(state, conversation_id), join, self.wait())
            .await?;
        state.joined.insert(conversation_id, conversation);
        Ok(())
    }

    /// How long this session waits for a conversation's answer, and what it says otherwise.
    fn wait(&self) -> ReplyWait {
        ReplyWait::session(self.context.call_timeout)
    }

    /// Takes one signals token (receipts, typing, presence).
    async fn take_signal(&self, state: &SessionState) -> Result<(), Error> {
        self.take_token(state, ActionClass::Signals).await
    }

    /// Takes one token of `class` from the user's budget now.
    async fn take_token(&self, state: &SessionState, class: ActionClass) -> Result<(), Error> {
        self.context
            .limits
            .take(
                class,
                &state.identity.tenant_id,
                &state.identity.user_id,
                self.context.clock.now(),
            )
            .await
    }

    /// Starts watching the presence of the named users who share a conversation with this
    /// user, and answers `presence_state`.
    async fn subscribe_presence(
        &self,
        state: &mut SessionState,
        request_id: Option<&RequestId>,
        user_ids: Vec<UserId>,
    ) -> Result<(), Error> {
        if user_ids.len() > MAX_WATCHED_PER_REQUEST {
            return Err(Error::TooLarge {
                what: "user_ids".into(),
                limit: MAX_WATCHED_PER_REQUEST,
                actual: user_ids.len(),
            });
        }
        self.take_signal(state).await?;
        let identity = &state.identity;
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for user_id in user_ids {
            if shares_a_conversation(
                self.context.store.as_ref(),
                &identity.tenant_id,
                &identity.user_id,
                &user_id,
            )
            .await?
            {
                allowed.push(user_id);
            } else {
                refused.push(user_id);
            }
        }
        let users = self
            .context
            .presence
            .watch(
                &identity.tenant_id,
                self.session_id,
                &state.outbound,
                &allowed,
            )
            .await;
        let frame = self.context.encoder.encode(&ServerEvent::PresenceState {
            request_id,
            users: &users,
            refused: &refused,
        });
        let _ = state.outbound.push(frame);
        Ok(())
    }

    /// Hides a message for the user only and answers `hidden`.
    async fn hide(
        &self,
        state: &mut SessionState,
        request_id: Option<RequestId>,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) {
        if let Err(error) = self.take_token(state, ActionClass::Operations).await {
            self.push_error(state, request_id.as_ref(), &error);
            return;
        }
        let result = self
            .context
            .conversations
            .hide(
                Self::key(state, conversation_id),
                state.identity.user_id.clone(),
                message_id,
                self.wait(),
            )
            .await;
        match result {
            Ok(()) => {
                let frame = self.context.encoder.encode(&ServerEvent::Hidden {
                    request_id: request_id.as_ref(),
                    conversation_id,
                    message_id,
                });
                let _ = state.outbound.push(frame);
            }
            Err(error) => self.push_error(state, request_id.as_ref(), &error),
        }
    }

    /// Moves the user's receipt cursors and answers with the cursors now (the conversation
    /// tells its other subscribers).
    async fn receipt(
        &self,
        state: &mut SessionState,
        request_id: Option<RequestId>,
        conversation_id: ConversationId,
        read: Option<Seq>,
        delivered: Option<Seq>,
    ) {
        if let Err(error) = self.take_signal(state).await {
            self.push_error(state, request_id.as_ref(), &error);
            return;
        }
        let request = ReceiptRequest {
            user_id: state.identity.user_id.clone(),
            read,
            delivered,
            session_id: Some(self.session_id),
        };
        let result = self
            .context
            .conversations
            .receipt(Self::key(state, conversation_id), request, self.wait())
            .await;
        match result {
            Ok(cursors) => {
                let frame = self.context.encoder.encode(&ServerEvent::Receipt {
                    request_id: request_id.as_ref(),
                    conversation_id,
                    user_id: &state.identity.user_id,
                    cursors,
                });
                let _ = state.outbound.push(frame);
            }
            Err(error) => self.push_error(state, request_id.as_ref(), &error),
        }
    }

    /// Sends `pending`, applies the rate limit and hands the request (built around its
    /// [`AckGuard`] by `make_message`) to the conversation: the shared path of every request
    /// that is acknowledged by `client_id` (sends and operations on messages).
    async fn submit(
        &self,
        state: &mut SessionState,
        request_id: Option<RequestId>,
        conversation_id: ConversationId,
        client_id: &ClientId,
        class: ActionClass,
        make_submission: impl FnOnce(UserId, AckGuard) -> Submission,
    ) {
        let encoder = &self.context.encoder;
        let pending = encoder.encode(&ServerEvent::Ack {
            request_id: request_id.as_ref(),
            client_id,
            outcome: &AckOutcome::Pending,
        });
        if state.outbound.push(pending).is_err() {
            return;
        }
        let ack = AckGuard::new(AckTarget::Session {
            outbound: state.outbound.clone(),
            request_id,
            client_id: client_id.clone(),
            encoder: Arc::clone(encoder),
            security: Arc::clone(&state.security),
        });
        if let Err(error) = self.take_token(state, class).await {
            ack.finish(AckOutcome::Rejected(error));
            return;
        }
        let mut submission = make_submission(state.identity.user_id.clone(), ack);
        if let Some(conversation) = state.joined.get(&conversation_id) {
            match conversation.submit(submission) {
                None => return,
                Some(returned) => {
                    // The cached actor retired; route to its successor.
                    state.joined.remove(&conversation_id);
                    submission = returned;
                }
            }
        }
        self.context
            .conversations
            .submit(Self::key(state, conversation_id), submission);
    }
}

impl SessionActor {
    /// Starts the session for one connection under `supervisor`: pushes `welcome` into its
    /// queue, marks its user online, registers it and spawns its task (`session/mailbox.rs`).
    pub(crate) fn start(
        session_id: SessionId,
        context: Arc<SessionContext>,
        args: SessionArgs,
        supervisor: &ActorRef<SessionsMsg>,
    ) -> SessionHandle {
        let welcome = context.encoder.encode(&ServerEvent::Welcome {
            session_id,
            user_id: &args.identity.user_id,
            tenant_id: &args.identity.tenant_id,
            heartbeat_ms: context.heartbeat_ms,
        });
        let _ = args.outbound.push(welcome);
        context.presence.session_opened(&args.identity);
        let security = CallerSecurity::new(
            Arc::clone(&context.security),
            args.identity.tenant_id.clone(),
            args.identity.user_id.clone(),
            args.remote,
        );
        let (address, handle, receiver) = mailbox::mailbox(session_id);
        let _ = supervisor.cast(SessionsMsg::Register {
            session_id,
            address: address.clone(),
            outbound: args.outbound.clone(),
        });
        let state = SessionState {
            identity: args.identity,
            outbound: args.outbound,
            security,
            joined: HashMap::default(),
            myself: address,
            _slot: args.slot,
        };
        let actor = SessionActor::new(session_id, context);
        #[allow(clippy::disallowed_methods)]
        // The sessions supervisor owns this task: it is told when it ends or fails, and stops
        // it on shutdown.
        tokio::spawn(mailbox::run(actor, state, receiver, supervisor.clone()));
        handle
    }

    /// Handles one message; the session's task runs one at a time, in order.
    async fn handle(&self, state: &mut SessionState, message: SessionMsg) {
        match SessionInput::from(message) {
            SessionInput::Request(ClientRequest::Ping { request_id }) => {
                let frame = self.context.encoder.encode(&ServerEvent::Pong {
                    request_id: request_id.as_ref(),
                });
                let _ = state.outbound.push(frame);
            }
            SessionInput::Request(ClientRequest::Join {
                request_id,
                conversation_id,
                since,
            }) => {
                if let Err(error) = self
                    .join(state, conversation_id, since, request_id.clone(), true)
                    .await
                {
                    self.push_error(state, request_id.as_ref(), &error);
                }
            }
            SessionInput::Request(ClientRequest::Leave {
                request_id,
                conversation_id,
            }) => match state.joined.remove(&conversation_id) {
                Some(conversation) => {
                    let reply_to = Some((state.outbound.clone(), request_id.clone()));
                    if !conversation.leave(self.session_id, reply_to) {
                        // The conversation is gone, and with it the subscription.
                        let frame = self.context.encoder.encode(&ServerEvent::Left {
                            request_id: request_id.as_ref(),
                            conversation_id,
                        });
                        let _ = state.outbound.push(frame);
                    }
                }
                None => {
                    let frame = self.context.encoder.encode(&ServerEvent::Left {
                        request_id: request_id.as_ref(),
                        conversation_id,
                    });
                    let _ = state.outbound.push(frame);
                }
            },
            SessionInput::Request(ClientRequest::Send {
                request_id,
                conversation_id,
                new_message,
            }) => {
                let client_id = new_message.client_id.clone();
                self.submit(
                    state,
                    request_id,
                    conversation_id,
                    &client_id,
                    ActionClass::Messages,
                    |sender_id, ack| Submission::send(sender_id, new_message, ack),
                )
                .await;
            }
            SessionInput::Request(ClientRequest::Change {
                request_id,
                conversation_id,
                client_id,
                change,
            }) => {
                let ack_client_id = client_id.clone();
                self.submit(
                    state,
                    request_id,
                    conversation_id,
                    &ack_client_id,
                    ActionClass::Changes,
                    |actor_id, ack| Submission::change(actor_id, client_id, change, ack),
                )
                .await;
            }
            SessionInput::Request(ClientRequest::Typing {
                request_id,
                conversation_id,
                started,
            }) => {
                if let Err(error) = self.take_signal(state).await {
                    self.push_error(state, request_id.as_ref(), &error);
                } else {
                    self.context.conversations.typing(
                        Self::key(state, conversation_id),
                        state.identity.user_id.clone(),
                        started,
                        (state.outbound.clone(), request_id),
                    );
                }
            }
            SessionInput::Request(ClientRequest::Call {
                request_id,
                conversation_id,
                action,
            }) => match self.take_signal(state).await {
                Ok(()) => self.context.conversations.call(
                    Self::key(state, conversation_id),
                    CallRequest {
                        user_id: state.identity.user_id.clone(),
                        action,
                        reply_to: (state.outbound.clone(), request_id),
                    },
                ),
                Err(error) => self.push_error(state, request_id.as_ref(), &error),
            },
            SessionInput::Request(ClientRequest::IceServers {
                request_id,
                ttl_secs,
            }) => match self.context.ice_servers(&state.identity, ttl_secs).await {
                Ok(servers) => {
                    let frame = self.context.encoder.encode(&ServerEvent::IceServers {
                        request_id: request_id.as_ref(),
                        servers: &servers,
                    });
                    let _ = state.outbound.push(frame);
                }
                Err(error) => self.push_error(state, request_id.as_ref(), &error),
            },
            SessionInput::Request(ClientRequest::SetPresence { request_id, away }) => {
                match self.take_signal(state).await {
                    Ok(()) => self.context.presence.set_away(&state.identity, away),
                    Err(error) => self.push_error(state, request_id.as_ref(), &error),
                }
            }
            SessionInput::Request(ClientRequest::SubscribePresence {
                request_id,
                user_ids,
            }) => {
                if let Err(error) = self
                    .subscribe_presence(state, request_id.as_ref(), user_ids)
                    .await
                {
                    self.push_error(state, request_id.as_ref(), &error);
                }
            }
            SessionInput::Request(ClientRequest::Hide {
                request_id,
                conversation_id,
                message_id,
            }) => {
                self.hide(state, request_id, conversation_id, message_id)
                    .await;
            }
            SessionInput::Request(ClientRequest::Receipt {
                request_id,
                conversation_id,
                read,
                delivered,
            }) => {
                self.receipt(state, request_id, conversation_id, read, delivered)
                    .await;
            }
            SessionInput::Request(ClientRequest::Operate {
                request_id,
                conversation_id,
                new_operation,
            }) => {
                let client_id = new_operation.client_id.clone();
                self.submit(
                    state,
                    request_id,
                    conversation_id,
                    &client_id,
                    ActionClass::Operations,
                    |actor_id, ack| Submission::operate(actor_id, new_operation, ack),
                )
                .await;
            }
            SessionInput::SubscriptionLost {
                conversation_id,
                last_seq,
            } => {
                if state.joined.remove(&conversation_id).is_none() || state.outbound.is_closed() {
                    return;
                }
                tracing::info!(%conversation_id, %last_seq, "re-joining after a conversation restart");
                if let Err(error) = self
                    .join(state, conversation_id, Some(last_seq), None, false)
                    .await
                {
                    let error = Error::unavailable(format!(
                        "lost the subscription to conversation {conversation_id} ({error}); join again with since"
                    ));
                    self.push_error(state, None, &error);
                }
            }
            #[cfg(test)]
            SessionInput::Panic => panic!("a session handler panicked, as the test asked"),
        }
    }

    /// The session's cleanup, however it ended: it leaves its conversations, closes its queue
    /// and tells presence.
    fn stopped(&self, state: &mut SessionState) {
        for (_, conversation) in state.joined.drain() {
            conversation.leave(self.session_id, None);
        }
        state.outbound.close(CloseReason::SessionEnded);
        self.context
            .presence
            .session_closed(&state.identity, self.session_id);
    }
}
