//! A session's mailbox, the handles that reach it, and the loop that runs it under the sessions
//! supervisor: the session is a lighter actor of our own, not a ractor actor.
//!
//! # Why not ractor here
//!
//! A session is the one actor there is per connection, so what an actor costs at rest is paid
//! per idle connection. A ractor actor allocates four tokio channels up front (a block of 32
//! message slots each, about 4.5 KB in all), a boxed processing loop as large as its largest
//! handler's future (2.9 KB) and its cell: `heaptrack` of 5,000 idle connections put about 9 KB
//! of each connection's 15.7 KB there (docs/PERFORMANCE.md). Here the mailbox is
//! `futures-channel`'s unbounded queue, which allocates per message and nothing up front; the
//! task's future holds only the loop, and each message's handler future is boxed while it runs.
//!
//! What stays the same: one task owns the session's state and handles one closed message enum
//! ([`SessionMsg`]) in order; a stop is seen before the next message (messages still queued
//! are dropped, as ractor's stop does); the sessions supervisor (a ractor actor,
//! `sessions.rs`) registers every session, learns when it ends, and closes the connection of
//! one that fails (a panic in a handler is caught, the session's cleanup still runs).

use std::panic::AssertUnwindSafe;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::{FutureExt as _, StreamExt as _};
use ractor::ActorRef;
use switchboard_engine::ids::SessionId;

use super::{ClientRequest, SessionActor, SessionMsg, SessionState};
use crate::sessions::SessionsMsg;

/// Where a session's messages go: held by the conversations it joined (to tell it a
/// subscription was lost) and by the sessions supervisor (to stop it).
#[derive(Clone)]
pub struct SessionAddress {
    sender: UnboundedSender<SessionMsg>,
}

impl SessionAddress {
    /// Queues `message`; false when the session has stopped.
    pub fn tell(&self, message: SessionMsg) -> bool {
        self.sender.unbounded_send(message).is_ok()
    }

    /// Stops the session before its next message; what is still queued is dropped.
    pub fn stop(&self) {
        self.sender.close_channel();
    }

    /// Whether the session was stopped (or has ended).
    pub fn is_stopped(&self) -> bool {
        self.sender.is_closed()
    }
}

/// The transport's handle to one session: the connection owns it, and dropping it stops the
/// session (so a connection task that ends any way at all, a panic included, ends its session).
pub struct SessionHandle {
    session_id: SessionId,
    address: SessionAddress,
}

impl SessionHandle {
    /// The session id (as sent in `welcome`).
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// Hands a client request to the session.
    ///
    /// # Errors
    /// [`crate::Error::Stopped`] if the session is gone (the connection should close).
    pub fn request(&self, request: ClientRequest) -> crate::Result<()> {
        if self.address.tell(SessionMsg::Request(Box::new(request))) {
            Ok(())
        } else {
            Err(crate::Error::Stopped {
                what: "the session",
            })
        }
    }

    /// The session's address (for tests that send it what no client can).
    #[cfg(test)]
    pub(crate) fn address(&self) -> &SessionAddress {
        &self.address
    }

    /// Ends the session: it leaves its conversations and releases its connection slot.
    pub fn stop(&self) {
        self.address.stop();
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.address.stop();
    }
}

/// A new session's mailbox: the address its state keeps for itself and hands out, the
/// transport's handle, and the receiving end for [`run`].
pub(crate) fn mailbox(
    session_id: SessionId,
) -> (SessionAddress, SessionHandle, UnboundedReceiver<SessionMsg>) {
    let (sender, receiver) = unbounded();
    let address = SessionAddress { sender };
    let handle = SessionHandle {
        session_id,
        address: address.clone(),
    };
    (address, handle, receiver)
}

/// Runs a session until it is stopped or every sender is gone, then cleans up and tells the
/// supervisor how it ended.
pub(crate) async fn run(
    actor: SessionActor,
    mut state: SessionState,
    mut receiver: UnboundedReceiver<SessionMsg>,
    supervisor: ActorRef<SessionsMsg>,
) {
    let handled = AssertUnwindSafe(async {
        while let Some(message) = receiver.next().await {
            if state.myself.is_stopped() {
                break;
            }
            // Boxed, so the task keeps only this loop between messages, not the largest
            // handler's future.
            Box::pin(actor.handle(&mut state, message)).await;
        }
    })
    .catch_unwind()
    .await;
    receiver.close();
    let session_id = actor.session_id;
    actor.stopped(&mut state);
    let report = match handled {
        Ok(()) => SessionsMsg::Ended { session_id },
        Err(panic) => SessionsMsg::Failed {
            session_id,
            error: panic_message(panic.as_ref()),
        },
    };
    let _ = supervisor.cast(report);
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
