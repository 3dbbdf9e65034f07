//! Who receives a conversation's messages: joining, leaving, catching up from storage, and
//! realigning with storage's head.
//!
//! A subscriber is either live (its cursor is the durable head, it receives each message as it
//! becomes durable) or catching up (it receives pages read from storage under an epoch, and
//! turns live when its cursor reaches the head). These are the methods of
//! [`super::ConversationCore`] that move a subscriber between the two; the module documentation
//! of [`super`] gives the ordering argument they uphold.

use super::{CatchUp, ConversationCore};
use crate::Result;
use crate::ids::{Seq, SessionId, UserId};

/// What the caller must do with a page read for a catch-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUpStep {
    /// The page belongs to a catch-up that no longer exists; drop it.
    Discard,
    /// Deliver the page to the session; then, if given, read the next page.
    Deliver {
        /// The next read, or `None` if the session is now live.
        next: Option<CatchUp>,
    },
}

/// The result of a successful join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The durable head at the moment of joining (reported to the client).
    pub head: Seq,
    /// The catch-up to run, if the client asked for history it has not seen.
    pub catch_up: Option<CatchUp>,
}

/// One joined session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The session's user.
    pub user_id: UserId,
    /// The last seq the session has been given (live or from storage).
    pub cursor: Seq,
    /// `Some(epoch)` while catching up; `None` when live.
    pub catching_up: Option<u64>,
}

impl<W> ConversationCore<W> {
    /// Aligns with the head storage reports. Messages that became durable without this core
    /// hearing of them become durable here, and live subscribers catch up on them.
    pub fn resync(&mut self, stored_head: Seq) -> Vec<CatchUp> {
        let mut catch_ups = Vec::new();
        if stored_head > self.durable_head {
            self.durable_head = stored_head;
            for (session_id, subscriber) in &mut self.subscribers {
                if subscriber.catching_up.is_none() && subscriber.cursor < stored_head {
                    let epoch = self.next_epoch;
                    self.next_epoch += 1;
                    subscriber.catching_up = Some(epoch);
                    catch_ups.push(CatchUp {
                        session_id: *session_id,
                        epoch,
                        after: subscriber.cursor,
                        through: stored_head,
                    });
                }
            }
        }
        catch_ups
    }

    /// Subscribes a session. With `since`, the session first receives every durable message
    /// after it; without, it receives only messages that become durable from now on.
    /// Joining again replaces the earlier subscription of the same session.
    ///
    /// # Errors
    /// [`Error::NotMember`](crate::Error::NotMember).
    pub fn join(
        &mut self,
        session_id: SessionId,
        user_id: UserId,
        since: Option<Seq>,
    ) -> Result<JoinOutcome> {
        self.check_reader(&user_id)?;
        let head = self.durable_head;
        let start = since.map_or(head, |since| since.min(head));
        let catching_up = if start < head {
            let epoch = self.next_epoch;
            self.next_epoch += 1;
            Some(epoch)
        } else {
            None
        };
        self.subscribers.insert(
            session_id,
            Subscriber {
                user_id,
                cursor: start,
                catching_up,
            },
        );
        Ok(JoinOutcome {
            head,
            catch_up: catching_up.map(|epoch| CatchUp {
                session_id,
                epoch,
                after: start,
                through: head,
            }),
        })
    }

    /// Unsubscribes a session; returns whether it was subscribed.
    pub fn leave(&mut self, session_id: SessionId) -> bool {
        self.subscribers.remove(&session_id).is_some()
    }

    /// Applies a page read for a catch-up: `page_through` is the seq of the last message in the
    /// page (the messages must be exactly `after+1 ..= page_through`, already trimmed to the
    /// durable head). An empty page passes `after`.
    pub fn on_catch_up_page(
        &mut self,
        session_id: SessionId,
        epoch: u64,
        page_through: Seq,
    ) -> CatchUpStep {
        let durable_head = self.durable_head;
        let Some(subscriber) = self.subscribers.get_mut(&session_id) else {
            return CatchUpStep::Discard;
        };
        if subscriber.catching_up != Some(epoch) || page_through > durable_head {
            return CatchUpStep::Discard;
        }
        let made_progress = page_through > subscriber.cursor;
        subscriber.cursor = subscriber.cursor.max(page_through);
        if subscriber.cursor >= durable_head || !made_progress {
            // An empty page below the head means storage has nothing more to give; going live
            // at the head is the only way forward and never delivers anything twice.
            subscriber.cursor = durable_head;
            subscriber.catching_up = None;
            return CatchUpStep::Deliver { next: None };
        }
        CatchUpStep::Deliver {
            next: Some(CatchUp {
                session_id,
                epoch,
                after: subscriber.cursor,
                through: durable_head,
            }),
        }
    }
}
