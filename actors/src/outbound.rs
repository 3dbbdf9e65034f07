//! A connection's outbound queue, bounded in bytes.
//!
//! Conversation actors push encoded frames straight into a session's [`Outbound`] without
//! awaiting anything, so one slow socket can never stall a conversation. The queue counts the
//! bytes it holds; a push that would take it over its limit closes the queue with
//! [`CloseReason::SlowConsumer`] instead of buffering without bound, and the connection's writer
//! task then closes the socket with the documented close code.
//!
//! Underneath is a mutex-protected `VecDeque` and a `Notify`: the bound is enforced here, in bytes,
//! which is what actually costs memory, and an idle connection's empty queue allocates nothing
//! (tokio's unbounded channel allocated about 1.5 KB per connection up front).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use switchboard_engine::event::EncodedFrame;
use tokio::sync::Notify;

/// Why an outbound queue was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client did not read fast enough and its queue overflowed.
    SlowConsumer,
    /// The server is shutting down.
    ServerShutdown,
    /// The session ended (its actor stopped or failed).
    SessionEnded,
}

impl CloseReason {
    /// Whether the frames queued before the close are still written (every reason but an
    /// overflow: a client that did not read cannot take them).
    pub fn keeps_queued_frames(self) -> bool {
        !matches!(self, CloseReason::SlowConsumer)
    }
}

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The push would have overflowed the queue, which is now closed.
    SlowConsumer,
    /// The queue was already closed.
    Closed,
}

struct Shared {
    /// The frames themselves. A plain mutex: every critical section is one push or pop, never
    /// an await, and an empty `VecDeque` allocates nothing, which keeps idle connections small.
    frames: Mutex<VecDeque<EncodedFrame>>,
    /// Bytes pushed and not yet taken by the receiver.
    queued_bytes: AtomicUsize,
    max_queued_bytes: usize,
    /// Set once, by the first close.
    close_reason: OnceLock<CloseReason>,
    /// Set when the last [`Outbound`] is dropped.
    senders_gone: AtomicBool,
    /// Wakes the receiver: a frame was pushed, the queue closed, or the senders are gone.
    frame_signal: Notify,
    /// Woken (all waiters) when the queue is closed.
    close_signal: Notify,
    /// Woken (all waiters) when the queue drains below half of its limit while someone waits.
    room_signal: Notify,
    n_room_waiters: AtomicUsize,
}

impl Shared {
    fn lock_frames(&self) -> std::sync::MutexGuard<'_, VecDeque<EncodedFrame>> {
        self.frames.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the end of the sending side when the last [`Outbound`] clone is dropped.
struct SendersAlive {
    shared: Arc<Shared>,
}

impl Drop for SendersAlive {
    fn drop(&mut self) {
        self.shared.senders_gone.store(true, Ordering::Release);
        self.shared.frame_signal.notify_one();
    }
}

/// The sending side: cheap to clone, shared by the session and every conversation it joined.
#[derive(Clone)]
pub struct Outbound {
    shared: Arc<Shared>,
    _alive: Arc<SendersAlive>,
}

/// The receiving side, owned by the connection's writer task.
pub struct OutboundReceiver {
    shared: Arc<Shared>,
}

/// What the writer task gets next.
#[derive(Debug)]
pub enum OutboundEvent {
    /// A frame to write.
    Frame(EncodedFrame),
    /// The queue was closed; write a close frame with this reason and stop.
    Close(CloseReason),
}

/// Creates a queue that holds at most `max_queued_bytes` (a single frame larger than that is
/// still accepted into an empty queue, so a big message never wedges a connection).
pub fn outbound(max_queued_bytes: usize) -> (Outbound, OutboundReceiver) {
    let shared = Arc::new(Shared {
        frames: Mutex::new(VecDeque::new()),
        queued_bytes: AtomicUsize::new(0),
        max_queued_bytes,
        close_reason: OnceLock::new(),
        senders_gone: AtomicBool::new(false),
        frame_signal: Notify::new(),
        close_signal: Notify::new(),
        room_signal: Notify::new(),
        n_room_waiters: AtomicUsize::new(0),
    });
    (
        Outbound {
            shared: Arc::clone(&shared),
            _alive: Arc::new(SendersAlive {
                shared: Arc::clone(&shared),
            }),
        },
        OutboundReceiver { shared },
    )
}

impl Outbound {
    /// Queues a frame without waiting.
    ///
    /// # Errors
    /// [`PushError::SlowConsumer`] if the frame would overflow the queue (the queue is closed as
    /// a side effect); [`PushError::Closed`] if it was already closed.
    pub fn push(&self, frame: EncodedFrame) -> Result<(), PushError> {
        if self.shared.close_reason.get().is_some() {
            return Err(PushError::Closed);
        }
        let n_bytes = frame.len();
        let previous = self
            .shared
            .queued_bytes
            .fetch_add(n_bytes, Ordering::AcqRel);
        if previous > 0 && previous + n_bytes > self.shared.max_queued_bytes {
            self.shared
                .queued_bytes
                .fetch_sub(n_bytes, Ordering::AcqRel);
            self.close(CloseReason::SlowConsumer);
            return Err(PushError::SlowConsumer);
        }
        self.shared.lock_frames().push_back(frame);
        self.shared.frame_signal.notify_one();
        Ok(())
    }

    /// Pushes a frame that may be dropped (typing, presence): only while the queue is at most
    /// half full, so a client that falls behind loses these first and never gets closed for
    /// them. Returns whether the frame was queued.
    pub fn push_if_room(&self, frame: EncodedFrame) -> bool {
        if self.queued_bytes() + frame.len() > self.shared.max_queued_bytes / 2 {
            return false;
        }
        self.push(frame).is_ok()
    }

    /// Closes the queue; the first reason wins. After an overflow
    /// ([`CloseReason::SlowConsumer`]) the frames already queued are discarded, since the client
    /// cannot take them; for any other reason the writer still gets them, in order, before the
    /// close ([`CloseReason::keeps_queued_frames`]).
    pub fn close(&self, reason: CloseReason) {
        if self.shared.close_reason.set(reason).is_ok() {
            self.shared.frame_signal.notify_one();
            self.shared.close_signal.notify_waiters();
            self.shared.room_signal.notify_waiters();
        }
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.close_reason.get().is_some()
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(Ordering::Acquire)
    }

    /// The queue's byte limit.
    pub fn max_queued_bytes(&self) -> usize {
        self.shared.max_queued_bytes
    }

    /// Waits until the queue holds at most half its limit, or is closed. Catch-up reads use this
    /// so that replaying a long history paces itself to the client instead of overflowing.
    pub async fn wait_for_room(&self) {
        let threshold = self.shared.max_queued_bytes / 2;
        loop {
            let notified = self.shared.room_signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() || self.queued_bytes() <= threshold {
                return;
            }
            self.shared.n_room_waiters.fetch_add(1, Ordering::AcqRel);
            // Re-check after announcing ourselves, so a drain in between is not missed.
            if !(self.is_closed() || self.queued_bytes() <= threshold) {
                notified.await;
            }
            self.shared.n_room_waiters.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl OutboundReceiver {
    fn took(&self, frame: &EncodedFrame) {
        let previous = self
            .shared
            .queued_bytes
            .fetch_sub(frame.len(), Ordering::AcqRel);
        let now = previous - frame.len();
        if now <= self.shared.max_queued_bytes / 2
            && self.shared.n_room_waiters.load(Ordering::Acquire) > 0
        {
            self.shared.room_signal.notify_waiters();
        }
    }

    fn pop(&self) -> Option<EncodedFrame> {
        let frame = self.shared.lock_frames().pop_front()?;
        self.took(&frame);
        Some(frame)
    }

    /// Waits for the next frame or for the queue to close. Once closed, the frames queued before
    /// come first unless the close discards them ([`CloseReason::keeps_queued_frames`]). `None`
    /// means every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<OutboundEvent> {
        loop {
            if let Some(reason) = self.shared.close_reason.get() {
                if reason.keeps_queued_frames()
                    && let Some(frame) = self.pop()
                {
                    return Some(OutboundEvent::Frame(frame));
                }
                return Some(OutboundEvent::Close(*reason));
            }
            if let Some(frame) = self.pop() {
                return Some(OutboundEvent::Frame(frame));
            }
            if self.shared.senders_gone.load(Ordering::Acquire) {
                return None;
            }
            // `notify_one` stores a permit when nobody waits, so a push between the checks
            // above and this await is not missed.
            self.shared.frame_signal.notified().await;
        }
    }

    /// Takes a frame if one is ready, without waiting (for writing several frames per flush).
    /// Returns `None` when the queue is empty, or closed by a reason that discards its frames.
    pub fn try_recv(&mut self) -> Option<EncodedFrame> {
        if self
            .shared
            .close_reason
            .get()
            .is_some_and(|reason| !reason.keeps_queued_frames())
        {
            return None;
        }
        self.pop()
    }

    /// A watcher that resolves when the queue is closed, usable while the receiver itself is
    /// busy (to abandon a socket write that is blocked on a client that stopped reading).
    pub fn close_watcher(&self) -> CloseWatcher {
        CloseWatcher {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Why the queue was closed, if it was.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason.get().copied()
    }
}

/// Waits for an outbound queue to close.
pub struct CloseWatcher {
    shared: Arc<Shared>,
}

impl CloseWatcher {
    /// Resolves when the queue is closed, with the reason.
    pub async fn closed(&self) -> CloseReason {
        wait_closed(&self.shared).await
    }
}

async fn wait_closed(shared: &Shared) -> CloseReason {
    loop {
        let notified = shared.close_signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(reason) = shared.close_reason.get() {
            return *reason;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests;
