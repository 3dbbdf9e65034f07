//! The sessions supervisor: the parent of every session. It never restarts a session (its
//! client reconnects and resumes with `since`), but it remembers each session's outbound queue
//! and address, so shutdown can close them all with "going away", and a failed session's
//! connection closes. Sessions are lighter actors of our own (`session/mailbox.rs` says why),
//! so they report their end here themselves instead of through ractor's supervision events.

use foldhash::HashMap;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use switchboard_engine::ids::SessionId;

use crate::outbound::{CloseReason, Outbound};
use crate::session::SessionAddress;

/// The sessions supervisor's messages.
pub enum SessionsMsg {
    /// A session started: remember its queue (to close it on shutdown) and its address (to
    /// stop it when the supervisor stops).
    Register {
        /// The session.
        session_id: SessionId,
        /// Its mailbox.
        address: SessionAddress,
        /// Its queue.
        outbound: Outbound,
    },
    /// A session ended and cleaned up after itself.
    Ended {
        /// The session.
        session_id: SessionId,
    },
    /// A session's handler panicked: its cleanup ran, and its connection is closed here.
    Failed {
        /// The session.
        session_id: SessionId,
        /// The panic's message.
        error: String,
    },
    /// Close every session's queue with this reason.
    CloseAll(CloseReason, RpcReplyPort<usize>),
    /// How many sessions are alive.
    Count(RpcReplyPort<usize>),
}

/// Supervises sessions: never restarts them (their clients reconnect), but tracks their queues.
pub struct SessionsActor;

/// A running session, as the supervisor knows it.
struct SessionEntry {
    address: SessionAddress,
    outbound: Outbound,
}

/// The sessions supervisor's state.
pub struct SessionsState {
    sessions: HashMap<SessionId, SessionEntry>,
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
            sessions: HashMap::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<SessionsMsg>,
        message: SessionsMsg,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SessionsMsg::Register {
                session_id,
                address,
                outbound,
            } => {
                state
                    .sessions
                    .insert(session_id, SessionEntry { address, outbound });
            }
            SessionsMsg::Ended { session_id } => {
                state.sessions.remove(&session_id);
            }
            SessionsMsg::Failed { session_id, error } => {
                tracing::error!(%session_id, %error, "session failed; its connection closes");
                if let Some(entry) = state.sessions.remove(&session_id) {
                    entry.outbound.close(CloseReason::SessionEnded);
                }
            }
            SessionsMsg::CloseAll(reason, reply) => {
                for entry in state.sessions.values() {
                    entry.outbound.close(reason);
                }
                let _ = reply.send(state.sessions.len());
            }
            SessionsMsg::Count(reply) => {
                let _ = reply.send(state.sessions.len());
            }
        }
        Ok(())
    }

    /// Stops every session still running (as ractor stops a supervisor's linked children).
    async fn post_stop(
        &self,
        _myself: ActorRef<SessionsMsg>,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        for entry in state.sessions.values() {
            entry.address.stop();
        }
        Ok(())
    }
}
