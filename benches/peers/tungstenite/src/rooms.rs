//! The room registry and each connection's bounded outbound queue.
//!
//! Rooms live in one `std::sync::Mutex<HashMap<..>>`: every operation under the lock is a short
//! loop of non-blocking `try_send`s and `Vec` edits with no `.await`, so a blocking mutex is
//! cheaper than an async one, and a broadcast holds the lock for its whole fan-out so every
//! member of a room sees that room's messages in the same order.
//! A broadcast frame is encoded once by the caller; each member's queue gets a clone of the same
//! reference-counted `Utf8Bytes`.
//! A queue that is full means its client reads slower than the room talks: the connection is
//! asked to close (slow consumer) instead of the server buffering without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

#[cfg(test)]
mod tests;

/// Identifies one connection for the lifetime of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnectionId(pub(crate) u64);

/// Why the server asks a connection to close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// Its outbound queue overflowed: the client reads slower than its rooms talk.
    SlowConsumer,
    /// The server is shutting down.
    GoingAway,
}

/// The sending half of one connection's outbound queue, shared by the connection itself (for
/// replies) and every room it joined (for broadcasts), so replies and broadcasts reach the
/// client in the order they were produced. It also carries the server's request to close.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// Bounded in frames; a full queue is never waited on.
    sender: mpsc::Sender<Utf8Bytes>,
    /// The first reason given for closing; later ones are ignored.
    close_reason: OnceLock<CloseReason>,
    /// Signalled when a close is requested. `Notify` keeps the permit if the connection task is
    /// busy at that moment (or still in the handshake), so the request cannot be lost.
    close_requested: Notify,
}

impl Outbound {
    /// A queue holding at most `capacity_frames` frames, and its receiving half.
    pub(crate) fn new(capacity_frames: usize) -> (Arc<Self>, mpsc::Receiver<Utf8Bytes>) {
        let (sender, receiver) = mpsc::channel(capacity_frames);
        let outbound = Arc::new(Self {
            sender,
            close_reason: OnceLock::new(),
            close_requested: Notify::new(),
        });
        (outbound, receiver)
    }

    /// Queues a frame without waiting. Returns false, and requests a close for
    /// [`CloseReason::SlowConsumer`], when the queue is full; a queue whose connection has ended
    /// silently drops the frame.
    pub(crate) fn push(&self, frame: Utf8Bytes) -> bool {
        match self.sender.try_send(frame) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.request_close(CloseReason::SlowConsumer);
                false
            }
        }
    }

    /// Asks the connection to close; the first reason given wins.
    pub(crate) fn request_close(&self, reason: CloseReason) {
        let _ = self.close_reason.set(reason);
        self.close_requested.notify_one();
    }

    /// Completes with the reason once a close has been requested.
    pub(crate) async fn close_requested(&self) -> CloseReason {
        self.close_requested.notified().await;
        // `request_close` sets the reason before it notifies.
        self.close_reason
            .get()
            .copied()
            .unwrap_or(CloseReason::GoingAway)
    }
}

/// One member of a room.
#[derive(Debug)]
struct Member {
    connection_id: ConnectionId,
    outbound: Arc<Outbound>,
}

/// Every non-empty room, by conversation id.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    /// A room is removed as soon as its last member leaves. Nothing panics while this lock is
    /// held, so a poisoned lock still guards a consistent map and is used as is.
    members_by_room: Mutex<HashMap<String, Vec<Member>>>,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Member>>> {
        self.members_by_room
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection to a room. The caller joins each room at most once per connection.
    pub(crate) fn join(
        &self,
        conversation_id: &str,
        connection_id: ConnectionId,
        outbound: &Arc<Outbound>,
    ) {
        let member = Member {
            connection_id,
            outbound: Arc::clone(outbound),
        };
        let mut members_by_room = self.lock();
        match members_by_room.get_mut(conversation_id) {
            Some(members) => members.push(member),
            None => {
                members_by_room.insert(conversation_id.to_owned(), vec![member]);
            }
        }
    }

    /// Removes a connection from the given rooms, dropping rooms left empty.
    pub(crate) fn leave_all<'a>(
        &self,
        connection_id: ConnectionId,
        conversation_ids: impl IntoIterator<Item = &'a String>,
    ) {
        let mut members_by_room = self.lock();
        for conversation_id in conversation_ids {
            let Some(members) = members_by_room.get_mut(conversation_id.as_str()) else {
                continue;
            };
            if let Some(position) = members
                .iter()
                .position(|member| member.connection_id == connection_id)
            {
                // Member order carries no meaning, so the O(1) removal is fine.
                members.swap_remove(position);
            }
            if members.is_empty() {
                members_by_room.remove(conversation_id.as_str());
            }
        }
    }

    /// Queues one pre-encoded frame for every member of a room and returns how many members it
    /// reached. Members whose queues are full are asked to close.
    pub(crate) fn broadcast(&self, conversation_id: &str, frame: &Utf8Bytes) -> usize {
        let members_by_room = self.lock();
        let Some(members) = members_by_room.get(conversation_id) else {
            return 0;
        };
        for member in members {
            member.outbound.push(frame.clone());
        }
        members.len()
    }

    /// How many rooms exist.
    #[cfg(test)]
    pub(crate) fn n_rooms(&self) -> usize {
        self.lock().len()
    }
}
