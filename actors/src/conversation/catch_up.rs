//! The conversation actor's history replay: catching a subscriber up from `since` to the
//! durable head (from the recent-frames cache when it covers the range, else in pages read from
//! storage off the actor), and resyncing with storage after a failed append or a notice that
//! another node stored entries.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use switchboard_engine::conversation::{CatchUp, CatchUpStep};
use switchboard_engine::event::{EncodedFrame, ServerEvent};
use switchboard_engine::ids::{Seq, SessionId};
use switchboard_engine::operations::LogEntry;
use switchboard_engine::{Error, StoreError};

use crate::outbound::Outbound;

use super::{
    ConversationActor, ConversationMsg, Ready, drop_subscriber, end_if_no_longer_member, subject_of,
};

impl ConversationActor {
    pub(super) async fn resync(&self, myself: &ActorRef<ConversationMsg>, ready: &mut Ready) {
        // Recent frames may describe seqs that never became durable; forget them.
        ready.recent_frames.clear();
        match self
            .context
            .store
            .head(self.tenant_id(), self.conversation_id())
            .await
        {
            Ok(stored_head) => {
                // A failed append may have changed the conversation itself after all.
                match self
                    .context
                    .store
                    .load_conversation(self.tenant_id(), self.conversation_id())
                    .await
                {
                    Ok(Some(snapshot)) => ready.core.replace_snapshot(snapshot),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, conversation_id = %self.conversation_id(), "resync could not reload the conversation; retrying");
                        myself.send_after(Duration::from_millis(100), || ConversationMsg::Resync);
                        return;
                    }
                }
                for catch_up in ready.core.resync(stored_head) {
                    self.start_catch_up(myself, ready, catch_up);
                }
            }
            Err(error) => {
                tracing::warn!(%error, conversation_id = %self.conversation_id(), "resync failed; retrying");
                myself.send_after(Duration::from_millis(100), || ConversationMsg::Resync);
            }
        }
    }

    /// Serves a catch-up from the recent frames when they cover it, otherwise reads a page from
    /// storage in the background (paced by the session's queue) and continues on `CatchUpPage`.
    pub(super) fn start_catch_up(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        mut catch_up: CatchUp,
    ) {
        loop {
            let covered = ready
                .recent_frames
                .front()
                .is_some_and(|(oldest, _, _)| *oldest <= catch_up.after.next())
                && ready
                    .recent_frames
                    .back()
                    .is_some_and(|(newest, _, _)| *newest >= catch_up.through);
            if !covered {
                break;
            }
            let Some(link) = ready.links.get_mut(&catch_up.session_id) else {
                return;
            };
            let frames: Vec<(Seq, EncodedFrame)> = ready
                .recent_frames
                .iter()
                .filter(|(seq, _, _)| *seq > catch_up.after && *seq <= catch_up.through)
                .map(|(seq, subject, frame)| {
                    let frame = self.frame_for(&ready.hidden, &link.user_id, *seq, *subject, frame);
                    (*seq, frame)
                })
                .collect();
            let step =
                ready
                    .core
                    .on_catch_up_page(catch_up.session_id, catch_up.epoch, catch_up.through);
            let CatchUpStep::Deliver { next } = step else {
                return;
            };
            let mut overflowed = false;
            for (seq, frame) in frames {
                if link.outbound.push(frame).is_err() {
                    overflowed = true;
                    break;
                }
                link.last_pushed = seq;
            }
            if overflowed {
                drop_subscriber(ready, catch_up.session_id);
                return;
            }
            match next {
                Some(next) => catch_up = next,
                None => {
                    end_if_no_longer_member(ready, catch_up.session_id);
                    return;
                }
            }
        }
        let Some(link) = ready.links.get(&catch_up.session_id) else {
            return;
        };
        self.spawn_catch_up_read(myself, link.outbound.clone(), catch_up, 0);
    }

    pub(super) fn spawn_catch_up_read(
        &self,
        myself: &ActorRef<ConversationMsg>,
        outbound: Outbound,
        catch_up: CatchUp,
        n_failures: u32,
    ) {
        let store = Arc::clone(&self.context.store);
        let tenant_id = self.tenant_id().clone();
        let conversation_id = self.conversation_id();
        let page_size = self.context.settings.catch_up_page_size.max(1);
        let wanted = usize::try_from(catch_up.through.get().saturating_sub(catch_up.after.get()))
            .unwrap_or(usize::MAX)
            .min(page_size);
        let myself = myself.clone();
        #[allow(clippy::disallowed_methods)]
        // A bounded background read that reports back by message.
        tokio::spawn(async move {
            if n_failures > 0 {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(n_failures))).await;
            }
            outbound.wait_for_room().await;
            if outbound.is_closed() {
                return;
            }
            let page = store
                .entries_after(&tenant_id, conversation_id, catch_up.after, wanted)
                .await;
            let _ = myself.cast(ConversationMsg::CatchUpPage {
                catch_up,
                page,
                n_failures,
            });
        });
    }

    pub(super) fn handle_catch_up_page(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        catch_up: CatchUp,
        page: Result<Vec<LogEntry>, StoreError>,
        n_failures: u32,
    ) {
        let Some(subscriber) = ready.core.subscribers().get(&catch_up.session_id) else {
            return;
        };
        if subscriber.catching_up != Some(catch_up.epoch) {
            return;
        }
        let cursor = subscriber.cursor;
        let durable_head = ready.core.durable_head();
        let mut page = match page {
            Ok(page) => page,
            Err(error) => {
                const MAX_READ_FAILURES: u32 = 3;
                tracing::warn!(%error, n_failures, "catch-up read failed");
                if n_failures + 1 >= MAX_READ_FAILURES {
                    self.abandon_subscriber(ready, catch_up.session_id);
                } else if let Some(link) = ready.links.get(&catch_up.session_id) {
                    self.spawn_catch_up_read(
                        myself,
                        link.outbound.clone(),
                        catch_up,
                        n_failures + 1,
                    );
                }
                return;
            }
        };
        page.retain(|entry| entry.seq() > cursor && entry.seq() <= durable_head);
        let contiguous = page
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.seq().get() == cursor.get() + 1 + offset as u64);
        if !contiguous {
            tracing::error!(conversation_id = %self.conversation_id(), "storage returned a page with a gap");
            self.abandon_subscriber(ready, catch_up.session_id);
            return;
        }
        let page_through = page.last().map_or(cursor, LogEntry::seq);
        let CatchUpStep::Deliver { next } =
            ready
                .core
                .on_catch_up_page(catch_up.session_id, catch_up.epoch, page_through)
        else {
            return;
        };
        let Some(link) = ready.links.get_mut(&catch_up.session_id) else {
            return;
        };
        for entry in &page {
            let frame = self.context.encoder.encode(&ServerEvent::Entry(entry));
            let frame = self.frame_for(
                &ready.hidden,
                &link.user_id,
                entry.seq(),
                subject_of(entry),
                &frame,
            );
            if link.outbound.push(frame).is_err() {
                drop_subscriber(ready, catch_up.session_id);
                return;
            }
            link.last_pushed = entry.seq();
        }
        match next {
            Some(next) => self.start_catch_up(myself, ready, next),
            None => end_if_no_longer_member(ready, catch_up.session_id),
        }
    }

    /// Ends a subscription the server cannot serve, telling the client with an error frame.
    pub(super) fn abandon_subscriber(&self, ready: &mut Ready, session_id: SessionId) {
        if let Some(link) = ready.links.get(&session_id) {
            let error = Error::unavailable(format!(
                "history of conversation {} could not be read; join again with since",
                self.conversation_id()
            ));
            let frame = self.context.encoder.encode(&ServerEvent::Error {
                request_id: None,
                error: &error,
            });
            let _ = link.outbound.push(frame);
        }
        drop_subscriber(ready, session_id);
    }
}
