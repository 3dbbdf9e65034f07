//! The conversation actor's fan-out: what it does when storage reports entries durable (finish
//! their acks, encode each entry once and push the same bytes to every live subscriber, keep
//! the recent-frames cache current), and the signals that are never stored: typing and
//! receipts.

use std::collections::BTreeSet;

use foldhash::HashMap;

use ractor::{ActorRef, RpcReplyPort};
use switchboard_engine::Error;
use switchboard_engine::conversation::PersistReport;
use switchboard_engine::event::{EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::ids::{MessageId, RequestId, Seq, UserId};
use switchboard_engine::model::ReadCursors;
use switchboard_engine::operations::LogEntry;
use switchboard_engine::ports::ClusterNotice;

use crate::outbound::Outbound;

use super::{
    AckGuard, ConversationActor, ConversationMsg, Ready, ReceiptRequest, TYPING_COALESCE_MS,
    TYPING_EXPIRES_MS, drop_subscriber,
};

impl ConversationActor {
    pub(super) async fn apply_report(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        report: PersistReport<AckGuard>,
    ) {
        for final_ack in report.acks {
            let mut ack = final_ack.waiter;
            if final_ack.replayed {
                ack.mark_duplicate();
            }
            ack.finish(final_ack.outcome);
        }
        // Every seq this node stored is published, also one a resync had already read: the
        // other nodes learn of it from nobody else.
        if let (Some(head), Some(cluster)) = (report.stored, &self.context.cluster) {
            cluster.publish(
                self.tenant_id(),
                self.conversation_id(),
                ClusterNotice::Stored { head },
            );
        }
        refresh_recent_frames(ready, self.context.encoder.as_ref(), &report.rewritten);
        if let Some(entry) = report.committed {
            let seq = entry.seq();
            let subject = subject_of(&entry);
            let frame = self.context.encoder.encode(&ServerEvent::Entry(&entry));
            let mut overflowed = Vec::new();
            for session_id in &report.live_sessions {
                if let Some(link) = ready.links.get_mut(session_id) {
                    let frame = self.frame_for(&ready.hidden, &link.user_id, seq, subject, &frame);
                    if link.outbound.push(frame).is_ok() {
                        link.last_pushed = seq;
                    } else {
                        overflowed.push(*session_id);
                    }
                }
            }
            for session_id in overflowed.into_iter().chain(report.ended_sessions) {
                drop_subscriber(ready, session_id);
            }
            // The frames stay contiguous: after a seq this actor did not see (stored by another
            // node, or before a resync), the older ones cannot serve a catch-up across the hole.
            if ready
                .recent_frames
                .back()
                .is_some_and(|(newest, _, _)| newest.next() != seq)
            {
                ready.recent_frames.clear();
            }
            ready.recent_frames.push_back((seq, subject, frame));
            while ready.recent_frames.len() > self.context.settings.recent_frames {
                ready.recent_frames.pop_front();
            }
        }
        for catch_up in report.catch_ups {
            self.start_catch_up(myself, ready, catch_up);
        }
        if report.needs_resync {
            // An append whose outcome was unknown may have been stored after all. If the head
            // moved, the other nodes hear of it now: the node that stored it never published.
            let known = ready.core.durable_head();
            self.resync(myself, ready).await;
            let head = ready.core.durable_head();
            if head > known
                && let Some(cluster) = &self.context.cluster
            {
                cluster.publish(
                    self.tenant_id(),
                    self.conversation_id(),
                    ClusterNotice::Stored { head },
                );
            }
        }
    }

    pub(super) async fn handle_receipt(
        &self,
        ready: &mut Ready,
        request: ReceiptRequest,
        reply: RpcReplyPort<Result<ReadCursors, Error>>,
    ) {
        let ReceiptRequest {
            user_id,
            read,
            delivered,
            session_id,
        } = request;
        if let Err(error) = ready.core.check_reader(&user_id) {
            let _ = reply.send(Err(error));
            return;
        }
        let store = &self.context.store;
        let current = match ready.cursors.get(&user_id) {
            Some(cursors) => *cursors,
            None => match store
                .read_cursors(self.tenant_id(), self.conversation_id(), &user_id)
                .await
            {
                Ok(cursors) => cursors,
                Err(error) => {
                    let _ = reply.send(Err(error.into()));
                    return;
                }
            },
        };
        let advanced = current.advanced(read, delivered, ready.core.durable_head());
        if advanced != current {
            if let Err(error) = store
                .set_read_cursors(self.tenant_id(), self.conversation_id(), &user_id, advanced)
                .await
            {
                let _ = reply.send(Err(error.into()));
                return;
            }
            let frame = self.context.encoder.encode(&ServerEvent::Receipt {
                request_id: None,
                conversation_id: self.conversation_id(),
                user_id: &user_id,
                cursors: advanced,
            });
            // Best effort: a receipt is not in the seq stream and is never replayed, so a full
            // queue just misses it (the slow-consumer rule still closes a queue that overflows).
            for (link_session_id, link) in &ready.links {
                if Some(*link_session_id) != session_id {
                    let _ = link.outbound.push(frame.clone());
                }
            }
        }
        ready.cursors.insert(user_id, advanced);
        let _ = reply.send(Ok(advanced));
    }

    /// The frame a member's session gets for an entry: the entry itself, or `skipped` when it
    /// is about a message the member deleted for themself.
    pub(super) fn frame_for(
        &self,
        hidden: &HashMap<UserId, BTreeSet<MessageId>>,
        user_id: &UserId,
        seq: Seq,
        subject: Option<MessageId>,
        frame: &EncodedFrame,
    ) -> EncodedFrame {
        let is_hidden = subject.is_some_and(|message_id| {
            hidden
                .get(user_id)
                .is_some_and(|hidden| hidden.contains(&message_id))
        });
        if is_hidden {
            self.context.encoder.encode(&ServerEvent::Skipped {
                conversation_id: self.conversation_id(),
                seq,
            })
        } else {
            frame.clone()
        }
    }

    /// Passes a typing signal on to the other members' sessions: a start at most once per
    /// [`TYPING_COALESCE_MS`] per member, a stop only after a start; both dropped for sessions
    /// whose queue is over half full.
    pub(super) fn handle_typing(
        &self,
        ready: &mut Ready,
        user_id: UserId,
        started: bool,
        reply_to: (Outbound, Option<RequestId>),
    ) {
        if let Err(error) = ready.core.check_reader(&user_id) {
            let (outbound, request_id) = reply_to;
            let frame = self.context.encoder.encode(&ServerEvent::Error {
                request_id: request_id.as_ref(),
                error: &error,
            });
            let _ = outbound.push(frame);
            return;
        }
        let now = self.context.clock.now();
        if started {
            let recent = ready
                .typing
                .get(&user_id)
                .is_some_and(|last| now.millis_since(*last) < TYPING_COALESCE_MS);
            if recent {
                return;
            }
            ready.typing.insert(user_id.clone(), now);
        } else if ready.typing.remove(&user_id).is_none() {
            return;
        }
        if let Some(cluster) = &self.context.cluster {
            cluster.publish(
                self.tenant_id(),
                self.conversation_id(),
                ClusterNotice::Typing {
                    user_id: user_id.clone(),
                    started,
                },
            );
        }
        self.pass_on_typing(ready, &user_id, started);
    }

    /// Pushes a `typing` event to every joined session but the typist's own, dropping it for
    /// sessions whose queues are full.
    pub(super) fn pass_on_typing(&self, ready: &Ready, user_id: &UserId, started: bool) {
        let frame = self.context.encoder.encode(&ServerEvent::Typing {
            conversation_id: self.conversation_id(),
            user_id,
            started,
            expires_in_ms: TYPING_EXPIRES_MS,
        });
        for link in ready.links.values() {
            if link.user_id != *user_id {
                link.outbound.push_if_room(frame.clone());
            }
        }
    }
}

/// Replaces the cached frames of entries that a newly stored one changed (an edited or deleted
/// message, a thread's root, the edits whose text a delete scrubbed) with frames of the entries
/// as storage now holds them, so a replay served from the cache shows every entry as it is now,
/// exactly as one read from storage does: the cache never keeps a deleted text.
pub(super) fn refresh_recent_frames(
    ready: &mut Ready,
    encoder: &dyn EventEncoder,
    rewritten: &[LogEntry],
) {
    let Some(oldest) = ready.recent_frames.front().map(|(seq, _, _)| *seq) else {
        return;
    };
    for entry in rewritten {
        let Some(index) = entry
            .seq()
            .get()
            .checked_sub(oldest.get())
            .and_then(|offset| usize::try_from(offset).ok())
        else {
            continue;
        };
        if let Some((seq, subject, frame)) = ready.recent_frames.get_mut(index)
            && *seq == entry.seq()
        {
            *subject = subject_of(entry);
            *frame = encoder.encode(&ServerEvent::Entry(entry));
        }
    }
}

/// The message an entry is about: the message itself, or an event's target.
pub(super) fn subject_of(entry: &LogEntry) -> Option<MessageId> {
    match entry {
        LogEntry::Message(message) => Some(message.message_id),
        LogEntry::Event(event) => event.body.message_id(),
    }
}
