//! The sessions supervisor: the parent of every session actor. It never restarts a session (its
//! client reconnects and resumes with `since`), but it remembers each session's outbound queue,
//! so shutdown can close them all with "going away" and a failed session's connection closes.

use foldhash::HashMap;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::outbound::{CloseReason, Outbound};

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
