//! The per-conversation state machine.
//!
//! [`ConversationCore`] decides everything that happens inside one conversation: who may send,
//! what a repeated `client_id` resolves to, which sessions receive a newly durable message live
//! and which must first catch up from storage. It is pure: the conversation actor feeds it
//! requests and storage results, and carries out what it returns.
//!
//! The ordering argument, in short: storage assigns each appended message the seq after its
//! conversation's head, atomically with the `client_id` check, so the durable log has no gap and
//! no reuse whatever happens here (a failed append consumes nothing and nothing is rolled back);
//! a message is handed to subscribers only when storage reports it durable, with its seq, in seq
//! order; a seq that arrives ahead of what a live subscriber has (messages this core never heard
//! of, such as a write whose report was lost) sends that subscriber to storage for the gap; and
//! a subscriber is
//! either *live* (its cursor equals the durable head, it receives each new message as it
//! becomes durable) or *catching up* (it receives pages read from storage, and turns live only
//! when its cursor reaches the durable head). A subscriber therefore sees every seq after its
//! starting point exactly once, in order. The model-based property test in
//! `conversation/tests.rs` checks this against random interleavings.
//!
//! `W` is the caller's opaque "who to acknowledge" value (a session's outbound queue, an RPC
//! reply port, a test id); the core only stores and returns it.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use crate::event::AckOutcome;
use crate::idempotency::RequestShape;
use crate::ids::{ClientId, MessageId, Seq, SessionId, UserId};
use crate::media::Attachment;
use crate::membership::{ConversationChange, apply_change, authorize_change, removed_users};
use crate::model::{ConversationSnapshot, Message, MessageRef, MessageState, NewMessage, Role};
use crate::operations::{
    ConversationEventBody, LogEntry, MessageOperation, NewOperation, authorize_operation,
};
use crate::permissions::{self, Action};
use crate::time::Timestamp;
use crate::validate::{MessageLimits, validate_new_message};
use crate::{Error, Result};

mod client_ids;
mod subscribers;

use client_ids::{ByAuthorKey, RecentClientIds};
pub use subscribers::{CatchUpStep, JoinOutcome, Subscriber};

/// How many recently stored `client_id`s a conversation remembers in memory. Older ones are
/// still deduplicated, through a storage lookup.
pub const RECENT_CLIENT_IDS: usize = 4096;

/// Identifies one append handed to storage, so its result can be matched even after failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppendTicket(pub u64);

/// What the core knows about a `client_id` before any storage lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendCheck {
    /// Already stored: acknowledge with this reference, store nothing.
    Known(MessageRef),
    /// Being stored right now: attach the new waiter with [`ConversationCore::attach_waiter`].
    InFlight,
    /// Not known here: [`ConversationCore::accept`] it. Storage still refuses a `client_id` it
    /// already has, atomically at append, and the result says so.
    Unknown,
}

/// An entry (message or event) accepted for storage, with the ticket its result will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The ticket to pass back to [`ConversationCore::on_persisted`].
    pub ticket: AppendTicket,
    /// The entry to append.
    pub entry: LogEntry,
}

/// What storage reported for one appended entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendResult {
    /// Durable, at this seq; with the entry as storage completed it, when it did, and the
    /// earlier entries it changed, as storage now holds them (see
    /// [`crate::ports::AppendOutcome::Stored`]).
    Stored(Seq, Option<Box<LogEntry>>, Vec<LogEntry>),
    /// Storage already had the author's `client_id`, stored by a request of the same shape, as
    /// this entry.
    Duplicate(MessageRef),
    /// Not stored, and no seq consumed: the target message's state refused it.
    Refused(Error),
    /// Not known to be stored (I/O error, timeout, writer crash); it may have been written.
    Failed,
}

/// A send's final acknowledgement, to be delivered by the caller.
#[derive(Debug)]
pub struct FinalAck<W> {
    /// Who to acknowledge.
    pub waiter: W,
    /// The outcome.
    pub outcome: AckOutcome,
    /// True when nothing new was stored (the `client_id` was already known).
    pub replayed: bool,
}

/// A request to read messages `after+1 ..= through` from storage for one catching-up session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// The session that is catching up.
    pub session_id: SessionId,
    /// Identifies this catch-up; pages from an older one are discarded.
    pub epoch: u64,
    /// The last seq the session has received.
    pub after: Seq,
    /// The durable head to read up to.
    pub through: Seq,
}

/// What the caller must do after a storage result.
#[derive(Debug)]
pub struct PersistReport<W> {
    /// The entry that just became durable, if one did.
    pub committed: Option<LogEntry>,
    /// The seq this append stored, also when this core had already read past it (a resync
    /// after another node's notice can see an entry before its own append returns). The other
    /// nodes of a deployment hear of every seq their appender stored, exactly once, through
    /// this; `committed` alone would miss the ones a resync got to first.
    pub stored: Option<Seq>,
    /// Earlier entries the stored one changed, as storage now holds them: whoever keeps copies
    /// of recent entries (the actor's cache of encoded frames) must replace them with these.
    pub rewritten: Vec<LogEntry>,
    /// The live sessions that must receive `committed`, in session id order.
    pub live_sessions: Vec<SessionId>,
    /// Final acknowledgements to deliver, in order.
    pub acks: Vec<FinalAck<W>>,
    /// Sessions that must (re)start catching up.
    pub catch_ups: Vec<CatchUp>,
    /// Whether the caller must read the stored head and call [`ConversationCore::resync`].
    pub needs_resync: bool,
    /// Sessions whose user the committed entry took out of the conversation: they received
    /// the entry and are no longer subscribed.
    pub ended_sessions: Vec<SessionId>,
}

impl<W> PersistReport<W> {
    fn empty() -> Self {
        PersistReport {
            committed: None,
            stored: None,
            rewritten: Vec::new(),
            live_sessions: Vec::new(),
            acks: Vec::new(),
            catch_ups: Vec::new(),
            needs_resync: false,
            ended_sessions: Vec::new(),
        }
    }

    /// The same final acknowledgement for every waiter of one send.
    fn ack_every(&mut self, waiters: Vec<W>, outcome: &AckOutcome, replayed: bool) {
        for waiter in waiters {
            self.acks.push(FinalAck {
                waiter,
                outcome: outcome.clone(),
                replayed,
            });
        }
    }
}

#[derive(Debug)]
struct InFlight<W> {
    ticket: AppendTicket,
    entry: LogEntry,
    waiters: Vec<W>,
}

/// The state machine of one conversation. See the module documentation.
#[derive(Debug)]
pub struct ConversationCore<W> {
    snapshot: ConversationSnapshot,
    limits: MessageLimits,
    /// The highest seq known durable and already handed to live subscribers.
    durable_head: Seq,
    in_flight: VecDeque<InFlight<W>>,
    in_flight_client_ids: ByAuthorKey<AppendTicket>,
    next_ticket: u64,
    next_epoch: u64,
    recent: RecentClientIds,
    subscribers: BTreeMap<SessionId, Subscriber>,
    /// How many in-flight entries change the conversation itself; while any do, requests are
    /// checked against the conversation as it will be once they are stored.
    n_in_flight_changes: usize,
}

impl<W> ConversationCore<W> {
    /// A core for a conversation whose stored head is `head`.
    pub fn new(snapshot: ConversationSnapshot, head: Seq, limits: MessageLimits) -> Self {
        ConversationCore {
            snapshot,
            limits,
            durable_head: head,
            in_flight: VecDeque::new(),
            in_flight_client_ids: ByAuthorKey::default(),
            next_ticket: 1,
            next_epoch: 1,
            recent: RecentClientIds::default(),
            subscribers: BTreeMap::new(),
            n_in_flight_changes: 0,
        }
    }

    /// Replaces the conversation with what storage holds (after a failed append, whose changes
    /// may or may not have been stored).
    pub fn replace_snapshot(&mut self, snapshot: ConversationSnapshot) {
        self.snapshot = snapshot;
    }

    /// The conversation as it will be once every accepted entry is stored: the durable one, with
    /// the in-flight changes applied in order. Requests are checked against this, so two
    /// changes accepted back to back cannot contradict each other.
    pub fn effective_snapshot(&self) -> Cow<'_, ConversationSnapshot> {
        if self.n_in_flight_changes == 0 {
            return Cow::Borrowed(&self.snapshot);
        }
        let mut projected = self.snapshot.clone();
        for in_flight in &self.in_flight {
            if let LogEntry::Event(event) = &in_flight.entry
                && event.body.changes_conversation()
            {
                apply_change(&mut projected, event);
            }
        }
        Cow::Owned(projected)
    }

    /// The conversation and its members.
    pub fn snapshot(&self) -> &ConversationSnapshot {
        &self.snapshot
    }

    /// The highest durable seq.
    pub fn durable_head(&self) -> Seq {
        self.durable_head
    }

    /// The joined sessions.
    pub fn subscribers(&self) -> &BTreeMap<SessionId, Subscriber> {
        &self.subscribers
    }

    /// Whether nothing is joined and nothing is being stored: the actor may stop.
    pub fn is_idle(&self) -> bool {
        self.subscribers.is_empty() && self.in_flight.is_empty()
    }

    /// The number of messages accepted but not yet reported durable.
    pub fn n_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Checks that `user_id` may read this conversation.
    ///
    /// # Errors
    /// [`Error::NotMember`].
    pub fn check_reader(&self, user_id: &UserId) -> Result<Role> {
        self.effective_snapshot()
            .member(user_id)
            .map(|member| member.role)
            .ok_or(Error::NotMember)
    }

    /// What this core remembers of `author`'s `client_id`: the entry a request of this shape
    /// repeats, if it was stored recently (so a retry is answered with it even when the author
    /// could not make the request now).
    ///
    /// # Errors
    /// [`Error::Conflict`] if the key was used for a different request.
    fn remembered(
        &self,
        author: &UserId,
        client_id: &ClientId,
        shape: &RequestShape<'_>,
    ) -> Result<Option<MessageRef>> {
        match self.recent.get(author, client_id) {
            Some((message_ref, fingerprint)) => {
                shape.fingerprint().check_repeat(fingerprint)?;
                Ok(Some(message_ref))
            }
            None => Ok(None),
        }
    }

    /// What is known about `author`'s `client_id`, for any request acknowledged by one.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the key was used for a different request.
    fn check_client_id(
        &self,
        author: &UserId,
        client_id: &ClientId,
        shape: &RequestShape<'_>,
    ) -> Result<SendCheck> {
        if let Some(message_ref) = self.remembered(author, client_id, shape)? {
            return Ok(SendCheck::Known(message_ref));
        }
        let in_flight = self
            .in_flight_client_ids
            .get(author, client_id)
            .and_then(|ticket| {
                self.in_flight
                    .iter()
                    .find(|in_flight| in_flight.ticket == *ticket)
            });
        // An entry in flight under the same key may still be refused, so only a request of the
        // same shape waits for it; another one goes to storage, whose verdict is atomic.
        if let Some(in_flight) = in_flight
            && shape.repeats(&RequestShape::of_entry(&in_flight.entry))
        {
            return Ok(SendCheck::InFlight);
        }
        Ok(SendCheck::Unknown)
    }

    /// Refuses writes to an archived conversation.
    fn check_not_archived(snapshot: &ConversationSnapshot) -> Result<()> {
        if snapshot.conversation.archived {
            return Err(Error::Conflict {
                reason: "the conversation is archived".to_owned(),
            });
        }
        Ok(())
    }

    /// Decides whether a send may proceed and what is known about its `client_id`.
    ///
    /// # Errors
    /// [`Error::NotMember`], [`Error::Forbidden`] (see [`permissions`], e.g. a member posting in a
    /// channel), or the
    /// validation errors of [`validate_new_message`].
    pub fn check_send(
        &self,
        sender_id: &UserId,
        new_message: &NewMessage,
        now: Timestamp,
    ) -> Result<SendCheck> {
        // A repeat of the sender's own stored send is answered even if the sender could not
        // send it now (muted, removed since): a retry must learn that the first attempt worked.
        let shape = RequestShape::of_new_message(new_message);
        if let Some(message_ref) = self.remembered(sender_id, &new_message.client_id, &shape)? {
            return Ok(SendCheck::Known(message_ref));
        }
        let snapshot = self.effective_snapshot();
        let role = snapshot
            .member(sender_id)
            .map(|member| member.role)
            .ok_or(Error::NotMember)?;
        permissions::check(snapshot.conversation.kind, role, Action::Post, None, None)?;
        Self::check_not_archived(&snapshot)?;
        if snapshot.conversation.mute_at(sender_id, now).is_some() {
            return Err(Error::Forbidden {
                reason: "you are muted in this conversation".into(),
            });
        }
        validate_new_message(new_message, &self.limits)?;
        self.check_client_id(sender_id, &new_message.client_id, &shape)
    }

    /// Decides whether a change to the conversation may proceed as far as its `client_id` and
    /// the actor's membership go; [`Self::authorize_change`] decides the rest.
    ///
    /// # Errors
    /// [`Error::NotMember`]; [`Error::Conflict`] if the actor used the key for a different
    /// kind of request.
    pub fn check_change(&self, actor_id: &UserId, client_id: &ClientId) -> Result<SendCheck> {
        // A repeat of the actor's own stored change is answered even if the actor is no longer
        // a member (a retried `leave`).
        let shape = RequestShape::Unchecked;
        if let Some(message_ref) = self.remembered(actor_id, client_id, &shape)? {
            return Ok(SendCheck::Known(message_ref));
        }
        self.check_reader(actor_id)?;
        self.check_client_id(actor_id, client_id, &shape)
    }

    /// Decides a change to the conversation against the conversation as it will be once every
    /// accepted entry is stored, and returns the event to record.
    ///
    /// # Errors
    /// See [`authorize_change`].
    pub fn authorize_change(
        &self,
        actor_id: &UserId,
        change: ConversationChange,
        now: Timestamp,
        max_members: usize,
    ) -> Result<ConversationEventBody> {
        authorize_change(
            &self.effective_snapshot(),
            actor_id,
            change,
            now,
            max_members,
        )
    }

    /// Decides whether an operation on a message may proceed as far as its `client_id` and the
    /// actor's membership go; the rest is decided by [`Self::authorize`] once the target
    /// message is loaded.
    ///
    /// # Errors
    /// [`Error::NotMember`]; [`Error::Conflict`] if the actor used the key for a different
    /// request.
    pub fn check_operation(
        &self,
        actor_id: &UserId,
        new_operation: &NewOperation,
    ) -> Result<SendCheck> {
        let shape = RequestShape::of_operation(&new_operation.operation);
        if let Some(message_ref) = self.remembered(actor_id, &new_operation.client_id, &shape)? {
            return Ok(SendCheck::Known(message_ref));
        }
        self.check_reader(actor_id)?;
        self.check_client_id(actor_id, &new_operation.client_id, &shape)
    }

    /// Decides whether `actor_id` may apply `operation` to `target` (as loaded from storage) at
    /// `now`: membership, role, authorship and the edit window. The target's mutable state
    /// (deleted, reactions) is checked by storage when it applies the event.
    ///
    /// # Errors
    /// [`Error::NotMember`], [`Error::NotFound`] if `target` is not the operation's message,
    /// and the errors of [`authorize_operation`].
    pub fn authorize(
        &self,
        actor_id: &UserId,
        operation: &MessageOperation,
        target: &Message,
        now: Timestamp,
    ) -> Result<()> {
        let snapshot = self.effective_snapshot();
        let role = snapshot
            .member(actor_id)
            .map(|member| member.role)
            .ok_or(Error::NotMember)?;
        if target.message_id != operation.message_id()
            || target.conversation_id != snapshot.conversation.conversation_id
        {
            return Err(Error::NotFound);
        }
        Self::check_not_archived(&snapshot)?;
        if matches!(operation, MessageOperation::Edit { .. })
            && snapshot.conversation.mute_at(actor_id, now).is_some()
        {
            return Err(Error::Forbidden {
                reason: "you are muted in this conversation".into(),
            });
        }
        authorize_operation(
            snapshot.conversation.kind,
            role,
            actor_id,
            operation,
            target,
            now,
            &self.limits,
        )
    }

    /// Adds a waiter to `author`'s in-flight entry with this `client_id`.
    ///
    /// # Errors
    /// Gives the waiter back if no entry of `author`'s with that `client_id` is in flight.
    pub fn attach_waiter(
        &mut self,
        author: &UserId,
        client_id: &ClientId,
        waiter: W,
    ) -> Result<(), W> {
        let Some(ticket) = self.in_flight_client_ids.get(author, client_id) else {
            return Err(waiter);
        };
        match self
            .in_flight
            .iter_mut()
            .find(|in_flight| in_flight.ticket == *ticket)
        {
            Some(in_flight) => {
                in_flight.waiters.push(waiter);
                Ok(())
            }
            None => Err(waiter),
        }
    }

    /// Accepts a checked message, carrying `attachments` (the media its request named, checked
    /// with [`crate::media::attachment::check_attachable`]), and puts it in flight.
    /// Call only after [`Self::check_send`] returned [`SendCheck::Unknown`].
    pub fn accept(
        &mut self,
        sender_id: UserId,
        new_message: NewMessage,
        attachments: Vec<Attachment>,
        message_id: MessageId,
        now: Timestamp,
        waiter: W,
    ) -> Accepted {
        let message = Message {
            conversation_id: self.snapshot.conversation.conversation_id,
            // Assigned by storage; set when the append is reported stored.
            seq: Seq::ZERO,
            message_id,
            sender_id,
            client_id: new_message.client_id,
            text: new_message.text,
            reply_to: new_message.reply_to,
            thread_root: new_message.thread_root,
            forwarded_from: new_message.forwarded_from.map(|origin| *origin),
            ts: now,
            state: MessageState::default(),
            attachments,
        };
        self.accept_entry(LogEntry::Message(message), waiter)
    }

    /// Accepts a checked entry (a message, or the event of an authorized operation) and puts it
    /// in flight. Call only after the check returned [`SendCheck::Unknown`] for its
    /// `client_id`.
    pub fn accept_entry(&mut self, entry: LogEntry, waiter: W) -> Accepted {
        let ticket = AppendTicket(self.next_ticket);
        self.next_ticket += 1;
        if changes_conversation(&entry) {
            self.n_in_flight_changes += 1;
        }
        self.in_flight_client_ids
            .insert(entry.author(), entry.client_id(), ticket);
        self.in_flight.push_back(InFlight {
            ticket,
            entry: entry.clone(),
            waiters: vec![waiter],
        });
        Accepted { ticket, entry }
    }

    /// Applies storage's verdict on one append. Results for one conversation arrive in the order
    /// its appends were committed; a result for an unknown ticket is ignored, but if it reveals
    /// a stored seq beyond the durable head it asks for a resync.
    pub fn on_persisted(&mut self, ticket: AppendTicket, result: AppendResult) -> PersistReport<W> {
        let mut report = PersistReport::empty();
        let Some(position) = self
            .in_flight
            .iter()
            .position(|in_flight| in_flight.ticket == ticket)
        else {
            report.needs_resync = match result {
                AppendResult::Stored(seq, _, rewritten) => {
                    report.stored = Some(seq);
                    report.rewritten = rewritten;
                    seq > self.durable_head
                }
                AppendResult::Duplicate(existing) => existing.seq > self.durable_head,
                AppendResult::Refused(_) => false,
                AppendResult::Failed => true,
            };
            return report;
        };
        let Some(in_flight) = self.in_flight.remove(position) else {
            return report;
        };
        let (author, client_id) = (
            in_flight.entry.author().clone(),
            in_flight.entry.client_id().clone(),
        );
        let fingerprint = RequestShape::of_entry(&in_flight.entry).fingerprint();
        // The key may name a later entry of another shape by now (see `check_client_id`).
        if self.in_flight_client_ids.get(&author, &client_id) == Some(&ticket) {
            self.in_flight_client_ids.remove(&author, &client_id);
        }
        if changes_conversation(&in_flight.entry) {
            self.n_in_flight_changes = self.n_in_flight_changes.saturating_sub(1);
        }
        match result {
            AppendResult::Stored(seq, completed, rewritten) => {
                report.stored = Some(seq);
                report.rewritten = rewritten;
                let mut entry = completed.map_or(in_flight.entry, |completed| *completed);
                entry.set_seq(seq);
                let message_ref = entry.reference();
                self.recent
                    .insert(&author, &client_id, message_ref, fingerprint);
                report.ack_every(
                    in_flight.waiters,
                    &AckOutcome::Delivered(message_ref),
                    false,
                );
                if seq <= self.durable_head {
                    // Already known durable (a resync read past it): it was handed out then.
                    return report;
                }
                self.durable_head = seq;
                for (session_id, subscriber) in &mut self.subscribers {
                    if subscriber.catching_up.is_some() || subscriber.cursor >= seq {
                        continue;
                    }
                    if subscriber.cursor.next() == seq {
                        subscriber.cursor = seq;
                        report.live_sessions.push(*session_id);
                    } else {
                        // Seqs before this one became durable without this core hearing of them
                        // (a lost report); the subscriber reads them, and this one, from storage.
                        let epoch = self.next_epoch;
                        self.next_epoch += 1;
                        subscriber.catching_up = Some(epoch);
                        report.catch_ups.push(CatchUp {
                            session_id: *session_id,
                            epoch,
                            after: subscriber.cursor,
                            through: seq,
                        });
                    }
                }
                if let LogEntry::Event(event) = &entry
                    && event.body.changes_conversation()
                {
                    apply_change(&mut self.snapshot, event);
                    let removed = removed_users(event);
                    if !removed.is_empty() {
                        self.subscribers.retain(|session_id, subscriber| {
                            let keep = !removed.contains(&&subscriber.user_id);
                            if !keep {
                                report.ended_sessions.push(*session_id);
                            }
                            keep
                        });
                    }
                }
                report.committed = Some(entry);
            }
            AppendResult::Duplicate(existing) => {
                // Storage found the author's key already stored by a request of this shape.
                self.recent
                    .insert(&author, &client_id, existing, fingerprint);
                report.ack_every(in_flight.waiters, &AckOutcome::Delivered(existing), true);
                // A message this core never fanned out (stored by an earlier incarnation).
                report.needs_resync = existing.seq > self.durable_head;
            }
            AppendResult::Refused(error) => {
                report.ack_every(in_flight.waiters, &AckOutcome::Rejected(error), false);
            }
            AppendResult::Failed => {
                report.ack_every(
                    in_flight.waiters,
                    &AckOutcome::Rejected(unavailable()),
                    false,
                );
                // The append may have been written after all; storage's head tells.
                report.needs_resync = true;
            }
        }
        report
    }
}

fn changes_conversation(entry: &LogEntry) -> bool {
    matches!(entry, LogEntry::Event(event) if event.body.changes_conversation())
}

fn unavailable() -> Error {
    Error::unavailable("the message could not be stored; retry with the same client_id")
}

#[cfg(test)]
mod tests;
