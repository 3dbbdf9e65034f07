//! Tests of the conversation state machine.
//!
//! The centrepiece is a model-based property test: random interleavings of join (with and
//! without `since`), leave, send (including retries, a `client_id` reused for another text, and
//! `client_id`s that two users both pick), disconnect and reconnect
//! with `since`, storage results (success, failure, and "failed but actually written") and
//! catch-up page reads are run against the core and a naive model of the durable log. It checks
//! that every subscription observes every message after its starting point exactly once, in seq
//! order, with no gap; that the log itself never has a gap or a reused seq; and that every send
//! ends in exactly one final acknowledgement that agrees with the log: `delivered` only ever
//! names a message of the sender's own with the text they sent, and a key its user already used
//! for another text is refused as a conflict.

use std::collections::{HashMap, VecDeque};

use expect_test::expect;
use proptest::prelude::*;

use super::*;
use crate::ids::ConversationId;
use crate::model::{ConversationKind, Role};
use crate::test_fixtures::{conversation_with, user};

fn snapshot(kind: ConversationKind) -> ConversationSnapshot {
    conversation_with(
        kind,
        None,
        "alice",
        &[("alice", Role::Owner), ("bob", Role::Member)],
    )
}

fn new_message(client_id: &str, text: &str) -> NewMessage {
    NewMessage {
        client_id: ClientId::parse(client_id).expect("valid client id"),
        text: text.to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        attachments: Vec::new(),
    }
}

fn session(n: u128) -> SessionId {
    SessionId::from_parts(0, n)
}

#[test]
fn send_checks_membership_roles_and_content() {
    let group: ConversationCore<()> = ConversationCore::new(
        snapshot(ConversationKind::Group),
        Seq::ZERO,
        MessageLimits::default(),
    );
    let channel: ConversationCore<()> = ConversationCore::new(
        snapshot(ConversationKind::Channel),
        Seq::ZERO,
        MessageLimits::default(),
    );
    let render = |core: &ConversationCore<()>, sender: &str, text: &str| match core.check_send(
        &user(sender),
        &new_message("c1", text),
        Timestamp(0),
    ) {
        Ok(check) => format!("{check:?}"),
        Err(error) => error.to_string(),
    };
    let rendered = [
        render(&group, "alice", "hi"),
        render(&group, "bob", "hi"),
        render(&group, "mallory", "hi"),
        render(&group, "bob", ""),
        render(&channel, "alice", "hi"),
        render(&channel, "bob", "hi"),
    ]
    .join("\n");
    expect![[r#"
        Unknown
        Unknown
        not a member of this conversation
        invalid text: must not be empty
        Unknown
        forbidden: your role may not post in this conversation"#]]
    .assert_eq(&rendered);
}

#[test]
fn repeated_client_id_is_in_flight_then_known() {
    let mut core: ConversationCore<u32> = ConversationCore::new(
        snapshot(ConversationKind::Group),
        Seq(41),
        MessageLimits::default(),
    );
    let alice = user("alice");
    let accepted = core.accept(
        alice.clone(),
        new_message("c1", "hi"),
        Vec::new(),
        MessageId::from_parts(5, 5),
        Timestamp(5),
        1,
    );
    assert_eq!(
        core.check_send(&alice, &new_message("c1", "hi"), Timestamp(0)),
        Ok(SendCheck::InFlight)
    );
    assert_eq!(
        core.attach_waiter(&alice, accepted.entry.client_id(), 2),
        Ok(())
    );
    // Bob's key is his own: the same client_id is new for him.
    let bob = user("bob");
    assert_eq!(
        core.check_send(&bob, &new_message("c1", "bob's words"), Timestamp(0)),
        Ok(SendCheck::Unknown)
    );
    assert_eq!(
        core.attach_waiter(&bob, accepted.entry.client_id(), 3),
        Err(3)
    );
    let conflict =
        "conflict: this client_id was already used for a different request; use a new client_id";
    let render = |check: Result<SendCheck>| match check {
        Ok(check) => format!("{check:?}"),
        Err(error) => error.to_string(),
    };
    // While the first is in flight it may still be refused: another text goes to storage.
    assert_eq!(
        render(core.check_send(&alice, &new_message("c1", "other words"), Timestamp(0))),
        "Unknown"
    );
    let report = core.on_persisted(
        accepted.ticket,
        AppendResult::Stored(Seq(42), None, Vec::new()),
    );
    let waiters: Vec<u32> = report.acks.iter().map(|ack| ack.waiter).collect();
    assert_eq!(waiters, vec![1, 2]);
    let stored = report.committed.expect("stored").reference();
    assert_eq!(stored.seq, Seq(42));
    assert_eq!(
        core.check_send(&alice, &new_message("c1", "hi"), Timestamp(0)),
        Ok(SendCheck::Known(stored))
    );
    assert_eq!(
        render(core.check_send(&alice, &new_message("c1", "other words"), Timestamp(0))),
        conflict
    );
    assert_eq!(
        core.check_send(&bob, &new_message("c1", "bob's words"), Timestamp(0)),
        Ok(SendCheck::Unknown)
    );
    assert_eq!(core.durable_head(), Seq(42));
}

#[test]
fn a_failure_rejects_only_its_own_send() {
    let mut core: ConversationCore<u32> = ConversationCore::new(
        snapshot(ConversationKind::Group),
        Seq::ZERO,
        MessageLimits::default(),
    );
    let alice = user("alice");
    let first = core.accept(
        alice.clone(),
        new_message("a", "1"),
        Vec::new(),
        MessageId::from_parts(1, 1),
        Timestamp(1),
        1,
    );
    let second = core.accept(
        alice,
        new_message("b", "2"),
        Vec::new(),
        MessageId::from_parts(1, 2),
        Timestamp(1),
        2,
    );
    let failed = core.on_persisted(first.ticket, AppendResult::Failed);
    assert!(failed.needs_resync, "a failed append may have been written");
    assert_eq!(failed.acks.len(), 1);
    assert!(matches!(failed.acks[0].outcome, AckOutcome::Rejected(_)));
    let stored = core.on_persisted(
        second.ticket,
        AppendResult::Stored(Seq(1), None, Vec::new()),
    );
    assert_eq!(stored.acks.len(), 1);
    assert_eq!(stored.committed.map(|entry| entry.seq()), Some(Seq(1)));
    assert_eq!(core.durable_head(), Seq(1));
}

#[test]
fn a_seq_beyond_the_head_sends_live_subscribers_to_storage() {
    let mut core: ConversationCore<u32> = ConversationCore::new(
        snapshot(ConversationKind::Group),
        Seq(1),
        MessageLimits::default(),
    );
    let bob_session = session(1);
    core.join(bob_session, user("bob"), None).expect("a member");
    let accepted = core.accept(
        user("alice"),
        new_message("x", "hi"),
        Vec::new(),
        MessageId::from_parts(1, 1),
        Timestamp(1),
        7,
    );
    // Seq 2 was stored without this core hearing of it; 3 is this message.
    let report = core.on_persisted(
        accepted.ticket,
        AppendResult::Stored(Seq(3), None, Vec::new()),
    );
    assert!(report.live_sessions.is_empty());
    assert_eq!(
        report.catch_ups,
        vec![CatchUp {
            session_id: bob_session,
            epoch: 1,
            after: Seq(1),
            through: Seq(3),
        }]
    );
    // A duplicate that names a seq beyond the head asks for a resync.
    let again = core.accept(
        user("alice"),
        new_message("y", "old"),
        Vec::new(),
        MessageId::from_parts(1, 2),
        Timestamp(1),
        8,
    );
    let existing = MessageRef {
        message_id: MessageId::from_parts(1, 3),
        seq: Seq(9),
        ts: Timestamp(1),
    };
    let report = core.on_persisted(again.ticket, AppendResult::Duplicate(existing));
    assert!(report.needs_resync);
    assert!(report.acks[0].replayed);
}

/// Another node's notice can make this core resync past an entry whose own append has not
/// returned yet. The entry is not fanned out a second time, but the report still names its seq:
/// its node is the only one that tells the others of it.
#[test]
fn an_append_a_resync_got_to_first_still_reports_its_seq() {
    let mut core: ConversationCore<u32> = ConversationCore::new(
        snapshot(ConversationKind::Group),
        Seq(0),
        MessageLimits::default(),
    );
    core.join(session(1), user("bob"), None).expect("a member");
    let accepted = core.accept(
        user("alice"),
        new_message("x", "hi"),
        Vec::new(),
        MessageId::from_parts(1, 1),
        Timestamp(1),
        7,
    );
    assert_eq!(core.resync(Seq(3)).len(), 1, "bob catches up from storage");
    let report = core.on_persisted(
        accepted.ticket,
        AppendResult::Stored(Seq(2), None, Vec::new()),
    );
    assert!(report.committed.is_none(), "the catch-up delivers it");
    assert!(report.live_sessions.is_empty());
    assert_eq!(report.stored, Some(Seq(2)));
    assert_eq!(report.acks.len(), 1);
    // An append whose outcome is unknown names no seq.
    let refused = core.accept(
        user("alice"),
        new_message("y", "hi"),
        Vec::new(),
        MessageId::from_parts(1, 2),
        Timestamp(1),
        8,
    );
    let report = core.on_persisted(refused.ticket, AppendResult::Failed);
    assert_eq!(report.stored, None);
}

// ---- the model-based property test ----

/// Which `client_id` a send uses.
#[derive(Debug, Clone, Copy)]
enum KeyChoice {
    /// A new one.
    Fresh,
    /// The client's last one, with the same text: a retry.
    Retry,
    /// The client's last one, with another text: not a retry.
    RetryWithOtherText,
    /// Another client's last one (predictable keys collide): with this client's own text, so a
    /// retry when that client is the same user and a new key of this user's otherwise.
    Borrow(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Send { client: usize, key: KeyChoice },
    Persist { outcome: u8 },
    Join { client: usize, with_since: bool },
    Leave { client: usize },
    Reconnect { client: usize },
    Restart,
    Resync,
    CatchUpPage { client: usize, page_size: usize },
}

fn op_strategy(n_clients: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n_clients, 0..4usize, 0..n_clients).prop_map(|(client, choice, other)| Op::Send {
            client,
            key: match choice {
                0 => KeyChoice::Fresh,
                1 => KeyChoice::Retry,
                2 => KeyChoice::RetryWithOtherText,
                _ => KeyChoice::Borrow(other),
            },
        }),
        4 => (0u8..10).prop_map(|outcome| Op::Persist { outcome }),
        2 => (0..n_clients, any::<bool>()).prop_map(|(client, with_since)| Op::Join { client, with_since }),
        1 => (0..n_clients).prop_map(|client| Op::Leave { client }),
        1 => (0..n_clients).prop_map(|client| Op::Reconnect { client }),
        3 => (0..n_clients, 1usize..4).prop_map(|(client, page_size)| Op::CatchUpPage { client, page_size }),
        1 => Just(Op::Restart),
        2 => Just(Op::Resync),
    ]
}

/// One simulated client: a user with one connection at a time.
struct SimClient {
    user_id: UserId,
    session_id: SessionId,
    joined: bool,
    /// The seq the current subscription started after.
    start: Seq,
    /// Seqs received by the current subscription, in arrival order.
    received: Vec<Seq>,
    /// The newest seq this client has ever seen; what it passes as `since`.
    last_seen: Seq,
    /// The keys this client sent with, and the text of each send.
    sent: Vec<(ClientId, String)>,
}

/// Waiter: (client index, client_id, the text sent).
type Waiter = (usize, ClientId, String);

/// An append waiting in the simulated writer.
struct Queued {
    generation: u64,
    ticket: AppendTicket,
    message: Message,
}

struct Sim {
    core: ConversationCore<Waiter>,
    /// The naive model of durable storage: `log[i]` has seq `i + 1`.
    log: Vec<Message>,
    writer_queue: VecDeque<Queued>,
    /// Incarnations of the core (bumped by `Restart`).
    generation: u64,
    /// A report asked for a resync that has not happened yet.
    resync_pending: bool,
    clients: Vec<SimClient>,
    catch_ups: HashMap<SessionId, CatchUp>,
    /// Every final ack, by (user, key): the text sent and the outcome.
    final_acks: HashMap<(UserId, ClientId), Vec<(String, AckOutcome)>>,
    n_sends: usize,
    next_session: u128,
    now: u64,
}

impl Sim {
    fn new() -> Self {
        let users = ["alice", "bob", "alice", "mallory"];
        let clients = users
            .iter()
            .enumerate()
            .map(|(index, name)| SimClient {
                user_id: user(name),
                session_id: session(index as u128 + 1),
                joined: false,
                start: Seq::ZERO,
                received: Vec::new(),
                last_seen: Seq::ZERO,
                sent: Vec::new(),
            })
            .collect();
        Sim {
            core: ConversationCore::new(
                snapshot(ConversationKind::Group),
                Seq::ZERO,
                MessageLimits::default(),
            ),
            log: Vec::new(),
            writer_queue: VecDeque::new(),
            generation: 0,
            resync_pending: false,
            clients,
            catch_ups: HashMap::new(),
            final_acks: HashMap::new(),
            n_sends: 0,
            next_session: 100,
            now: 1,
        }
    }

    /// Storage's own rules, as the conformance suite states them: a `client_id` its sender
    /// already stored is a duplicate when the text is the same and a conflict otherwise;
    /// otherwise the message gets the next seq. Outcome 0 fails without writing,
    /// 1 writes but reports a failure (an fsync error after the write), anything else succeeds.
    fn store(&mut self, mut message: Message, outcome: u8) -> AppendResult {
        if let Some(existing) = self.log.iter().find(|stored| {
            stored.client_id == message.client_id && stored.sender_id == message.sender_id
        }) {
            if existing.text != message.text {
                return AppendResult::Refused(crate::idempotency::reused_for_another_request());
            }
            return AppendResult::Duplicate(existing.reference());
        }
        if outcome == 0 {
            return AppendResult::Failed;
        }
        let seq = Seq(self.log.len() as u64 + 1);
        message.seq = seq;
        self.log.push(message);
        if outcome == 1 {
            AppendResult::Failed
        } else {
            AppendResult::Stored(seq, None, Vec::new())
        }
    }

    fn client_of(&self, session_id: SessionId) -> usize {
        self.clients
            .iter()
            .position(|client| client.session_id == session_id)
            .expect("live sessions belong to a client")
    }

    fn deliver(&mut self, session_id: SessionId, message: &Message) {
        let index = self.client_of(session_id);
        let client = &mut self.clients[index];
        assert!(client.joined, "delivery to a session that is not joined");
        assert_eq!(
            &self.log[message.seq.get() as usize - 1],
            message,
            "delivered content differs from the log"
        );
        client.received.push(message.seq);
        client.last_seen = client.last_seen.max(message.seq);
    }

    fn check_subscription(&self, index: usize) {
        let client = &self.clients[index];
        for (offset, seq) in client.received.iter().enumerate() {
            assert_eq!(
                seq.get(),
                client.start.get() + 1 + offset as u64,
                "client {index} saw {:?} after starting at {}",
                client.received,
                client.start
            );
        }
    }

    fn apply_report(&mut self, report: PersistReport<Waiter>) {
        for ack in report.acks {
            let (client, client_id, text) = ack.waiter;
            let user_id = self.clients[client].user_id.clone();
            self.final_acks
                .entry((user_id, client_id))
                .or_default()
                .push((text, ack.outcome));
        }
        if let Some(LogEntry::Message(message)) = &report.committed {
            for session_id in &report.live_sessions {
                self.deliver(*session_id, message);
            }
        }
        for catch_up in report.catch_ups {
            self.catch_ups.insert(catch_up.session_id, catch_up);
        }
        // The actor reads the stored head right away; here the read may come later, so that
        // results arriving in between (with seqs beyond the head) are exercised too.
        self.resync_pending |= report.needs_resync;
    }

    fn apply(&mut self, op: Op) {
        self.now += 1;
        match op {
            Op::Send { client, key } => {
                let sender_id = self.clients[client].user_id.clone();
                let own_text = |client_id: &ClientId| format!("{sender_id} says {client_id}");
                let last_of = |index: usize| self.clients[index].sent.last().cloned();
                let (client_id, text) = match key {
                    KeyChoice::Retry => last_of(client),
                    KeyChoice::RetryWithOtherText => last_of(client)
                        .map(|(client_id, text)| (client_id, format!("{text}, edited"))),
                    KeyChoice::Borrow(other) => last_of(other).map(|(client_id, _)| {
                        let text = own_text(&client_id);
                        (client_id, text)
                    }),
                    KeyChoice::Fresh => None,
                }
                .unwrap_or_else(|| {
                    self.n_sends += 1;
                    let client_id =
                        ClientId::parse(&format!("c{}", self.n_sends)).expect("valid client id");
                    let text = own_text(&client_id);
                    (client_id, text)
                });
                let new_message = new_message(client_id.as_str(), &text);
                self.clients[client]
                    .sent
                    .push((client_id.clone(), text.clone()));
                let waiter = (client, client_id.clone(), text.clone());
                let ack_key = (sender_id.clone(), client_id.clone());
                match self
                    .core
                    .check_send(&sender_id, &new_message, Timestamp(self.now))
                {
                    Err(error) => {
                        assert!(
                            matches!(error, Error::NotMember | Error::Conflict { .. }),
                            "unexpected refusal {error}"
                        );
                        self.final_acks
                            .entry(ack_key)
                            .or_default()
                            .push((text, AckOutcome::Rejected(error)));
                    }
                    Ok(SendCheck::Known(message_ref)) => {
                        self.final_acks
                            .entry(ack_key)
                            .or_default()
                            .push((text, AckOutcome::Delivered(message_ref)));
                    }
                    Ok(SendCheck::InFlight) => {
                        assert!(
                            self.core
                                .attach_waiter(&sender_id, &client_id, waiter)
                                .is_ok()
                        );
                    }
                    Ok(SendCheck::Unknown) => {
                        let message_id = MessageId::from_parts(self.now, self.n_sends as u128);
                        let accepted = self.core.accept(
                            sender_id,
                            new_message,
                            Vec::new(),
                            message_id,
                            Timestamp(self.now),
                            waiter,
                        );
                        self.writer_queue.push_back(Queued {
                            generation: self.generation,
                            ticket: accepted.ticket,
                            message: match accepted.entry {
                                LogEntry::Message(message) => message,
                                LogEntry::Event(_) => unreachable!("the model only sends"),
                            },
                        });
                    }
                }
            }
            Op::Persist { outcome } => {
                let Some(queued) = self.writer_queue.pop_front() else {
                    return;
                };
                let result = self.store(queued.message, outcome);
                // Results for an earlier incarnation of the core have nobody to go to.
                if queued.generation == self.generation {
                    let report = self.core.on_persisted(queued.ticket, result);
                    self.apply_report(report);
                }
            }
            Op::Resync => {
                if std::mem::take(&mut self.resync_pending) {
                    for catch_up in self.core.resync(Seq(self.log.len() as u64)) {
                        self.catch_ups.insert(catch_up.session_id, catch_up);
                    }
                }
            }
            Op::Restart => {
                // The actor's restart: the writer is fenced (everything queued before the
                // restart is committed, its results lost), then the core reloads from storage
                // and every subscription is gone (sessions re-join with `since`).
                while let Some(queued) = self.writer_queue.pop_front() {
                    self.store(queued.message, 9);
                }
                self.generation += 1;
                self.resync_pending = false;
                self.core = ConversationCore::new(
                    snapshot(ConversationKind::Group),
                    Seq(self.log.len() as u64),
                    MessageLimits::default(),
                );
                self.catch_ups.clear();
                for index in 0..self.clients.len() {
                    if self.clients[index].joined {
                        self.check_subscription(index);
                        self.clients[index].joined = false;
                    }
                }
            }
            Op::Join { client, with_since } => {
                let since = with_since.then_some(self.clients[client].last_seen);
                let session_id = self.clients[client].session_id;
                let user_id = self.clients[client].user_id.clone();
                match self.core.join(session_id, user_id, since) {
                    Ok(outcome) => {
                        let sim_client = &mut self.clients[client];
                        sim_client.joined = true;
                        sim_client.start =
                            since.map_or(outcome.head, |since| since.min(outcome.head));
                        sim_client.received.clear();
                        self.catch_ups.remove(&session_id);
                        if let Some(catch_up) = outcome.catch_up {
                            self.catch_ups.insert(session_id, catch_up);
                        }
                    }
                    Err(error) => assert_eq!(error, Error::NotMember),
                }
            }
            Op::Leave { client } => {
                self.check_subscription(client);
                let session_id = self.clients[client].session_id;
                self.core.leave(session_id);
                self.clients[client].joined = false;
                self.catch_ups.remove(&session_id);
            }
            Op::Reconnect { client } => {
                self.check_subscription(client);
                let old_session = self.clients[client].session_id;
                self.core.leave(old_session);
                self.catch_ups.remove(&old_session);
                self.next_session += 1;
                self.clients[client].session_id = session(self.next_session);
                self.clients[client].joined = false;
                self.apply(Op::Join {
                    client,
                    with_since: true,
                });
            }
            Op::CatchUpPage { client, page_size } => {
                let session_id = self.clients[client].session_id;
                let Some(catch_up) = self.catch_ups.remove(&session_id) else {
                    return;
                };
                let through = catch_up
                    .through
                    .min(Seq(catch_up.after.get() + page_size as u64))
                    .min(self.core.durable_head());
                let page: Vec<Message> =
                    self.log[catch_up.after.get() as usize..through.get() as usize].to_vec();
                let page_through = page.last().map_or(catch_up.after, |message| message.seq);
                match self
                    .core
                    .on_catch_up_page(session_id, catch_up.epoch, page_through)
                {
                    CatchUpStep::Discard => {}
                    CatchUpStep::Deliver { next } => {
                        for message in &page {
                            self.deliver(session_id, message);
                        }
                        if let Some(next) = next {
                            self.catch_ups.insert(session_id, next);
                        }
                    }
                }
            }
        }
    }

    fn drain(&mut self) {
        while !self.writer_queue.is_empty() {
            self.apply(Op::Persist { outcome: 9 });
        }
        self.apply(Op::Resync);
        while let Some(session_id) = self.catch_ups.keys().next().copied() {
            let client = self.client_of(session_id);
            self.apply(Op::CatchUpPage {
                client,
                page_size: 3,
            });
        }
    }

    fn check_final(&self) {
        for (index, message) in self.log.iter().enumerate() {
            assert_eq!(
                message.seq.get(),
                index as u64 + 1,
                "the log has a gap or a reused seq"
            );
        }
        let head = Seq(self.log.len() as u64);
        assert_eq!(self.core.durable_head(), head);
        for (index, client) in self.clients.iter().enumerate() {
            self.check_subscription(index);
            if client.joined {
                assert_eq!(
                    client.received.last().copied().unwrap_or(client.start),
                    head,
                    "client {index} did not reach the head"
                );
            }
        }
        for ((user_id, client_id), outcomes) in &self.final_acks {
            let stored = self
                .log
                .iter()
                .find(|message| &message.client_id == client_id && &message.sender_id == user_id);
            for (text, outcome) in outcomes {
                match outcome {
                    AckOutcome::Delivered(message_ref) => {
                        // The promise the project is built on: `delivered` names the sender's
                        // own message, stored with the text they sent.
                        let stored = stored.expect("a delivered ack names a stored message");
                        assert_eq!(*message_ref, stored.reference());
                        assert_eq!(&stored.text, text, "{user_id} was acked another text");
                    }
                    AckOutcome::Rejected(Error::Conflict { .. }) => {
                        let stored = stored.expect("a conflict names a stored key");
                        assert_ne!(&stored.text, text, "a retry was refused as a conflict");
                    }
                    AckOutcome::Rejected(_) => {}
                    AckOutcome::Pending => panic!("pending is never a final ack"),
                }
            }
        }
        let n_stored_keys = self
            .log
            .iter()
            .map(|message| (&message.sender_id, &message.client_id))
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert_eq!(
            n_stored_keys,
            self.log.len(),
            "a user's client_id was stored twice"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn every_subscriber_sees_every_message_once_in_order(ops in proptest::collection::vec(op_strategy(4), 0..300)) {
        let mut sim = Sim::new();
        for op in ops {
            sim.apply(op);
        }
        sim.drain();
        sim.check_final();
    }
}

#[test]
fn a_muted_member_may_neither_send_nor_edit_but_may_react_and_an_archived_conversation_takes_nothing()
 {
    use crate::model::{MessageState, Restriction};
    use crate::operations::MessageOperation;
    let mut muted = snapshot(ConversationKind::Group);
    muted.conversation.mutes.push(Restriction {
        user_id: user("bob"),
        by: user("alice"),
        since: Timestamp(0),
        until: Some(Timestamp(1000)),
        reason: None,
    });
    let core: ConversationCore<()> =
        ConversationCore::new(muted, Seq::ZERO, MessageLimits::default());
    let bob = user("bob");
    let muted_error = Error::Forbidden {
        reason: "you are muted in this conversation".into(),
    };
    assert_eq!(
        core.check_send(&bob, &new_message("c1", "hi"), Timestamp(999)),
        Err(muted_error.clone())
    );
    assert_eq!(
        core.check_send(&bob, &new_message("c1", "hi"), Timestamp(1000)),
        Ok(SendCheck::Unknown),
        "the mute ended on its own"
    );
    let target = Message {
        conversation_id: ConversationId::from_parts(1, 1),
        seq: Seq(1),
        message_id: MessageId::from_parts(1, 9),
        sender_id: bob.clone(),
        client_id: ClientId::parse("m").expect("valid"),
        text: "mine".to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(900),
        state: MessageState::default(),
        attachments: Vec::new(),
    };
    let edit = MessageOperation::Edit {
        message_id: target.message_id,
        text: "changed".to_owned(),
    };
    let react = MessageOperation::React {
        message_id: target.message_id,
        emoji: crate::ids::Emoji::parse("👍").expect("valid"),
    };
    assert_eq!(
        core.authorize(&bob, &edit, &target, Timestamp(999)),
        Err(muted_error)
    );
    assert_eq!(
        core.authorize(&bob, &react, &target, Timestamp(999)),
        Ok(())
    );

    let mut archived = snapshot(ConversationKind::Group);
    archived.conversation.archived = true;
    let core: ConversationCore<()> =
        ConversationCore::new(archived, Seq::ZERO, MessageLimits::default());
    let archived_error = Error::Conflict {
        reason: "the conversation is archived".to_owned(),
    };
    assert_eq!(
        core.check_send(&bob, &new_message("c1", "hi"), Timestamp(0)),
        Err(archived_error.clone())
    );
    assert_eq!(
        core.authorize(&bob, &react, &target, Timestamp(999)),
        Err(archived_error)
    );
}
