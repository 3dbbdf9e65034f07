//! Supervision tests on the whole actor tree, with the in-memory store and a plain-text encoder:
//! a conversation actor or the writer is killed mid-stream, and the tests check that every send
//! still ends in exactly one final ack, that joined sessions resume without a gap or duplicate,
//! and that the stored seqs stay contiguous.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_engine::event::{AckOutcome, EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::ids::{ClientId, ConversationId, RequestId, Seq, TenantId, UserId};
use switchboard_engine::membership::{ConversationChange, ModerationAction};
use switchboard_engine::model::{ConversationKind, NewMessage};
use switchboard_engine::ports::Clock;
use switchboard_engine::rate_limit::{RateLimit, RateLimits};
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::MessageLimits;
use switchboard_storage::MemoryMessageStore;

use super::*;
use crate::clock::{ManualClock, SystemClock};
use crate::outbound::{OutboundEvent, OutboundReceiver, outbound};
use crate::session::ClientRequest;

/// Encodes events as short lines that tests can match on.
struct TextEncoder;

impl EventEncoder for TextEncoder {
    fn encode(&self, event: &ServerEvent<'_>) -> EncodedFrame {
        let text = match event {
            ServerEvent::Welcome { .. } => "welcome".to_owned(),
            ServerEvent::Joined { head, .. } => format!("joined {head}"),
            ServerEvent::Left { .. } => "left".to_owned(),
            ServerEvent::Ack {
                client_id, outcome, ..
            } => match outcome {
                AckOutcome::Pending => format!("pending {client_id}"),
                AckOutcome::Delivered(message_ref) => {
                    format!("delivered {client_id} {}", message_ref.seq)
                }
                AckOutcome::Rejected(error) => format!("rejected {client_id} {error}"),
            },
            ServerEvent::Entry(entry) => format!("message {}", entry.seq()),
            ServerEvent::Receipt {
                user_id, cursors, ..
            } => format!("receipt {user_id} {}", cursors.read),
            ServerEvent::Skipped { seq, .. } => format!("skipped {seq}"),
            ServerEvent::Typing {
                user_id, started, ..
            } => format!("typing {user_id} {started}"),
            ServerEvent::Hidden { message_id, .. } => format!("hidden {message_id}"),
            ServerEvent::Call { call_id, from, .. } => format!("call {call_id} {from}"),
            ServerEvent::Recording { notice, .. } => format!("recording {notice:?}"),
            ServerEvent::Presence {
                user_id, status, ..
            } => format!("presence {user_id} {}", status.as_str()),
            ServerEvent::PresenceState { users, .. } => format!("presence_state {}", users.len()),
            ServerEvent::IceServers { servers, .. } => format!("ice {}", servers.username),
            ServerEvent::Pong { .. } => "pong".to_owned(),
            ServerEvent::Error { error, .. } => format!("error {error}"),
        };
        EncodedFrame::from_text(text)
    }
}

const DEADLINE: Duration = Duration::from_secs(10);

fn settings() -> SystemSettings {
    SystemSettings {
        conversation: ConversationSettings {
            message_limits: MessageLimits::default(),
            idle_stop_after: Duration::from_secs(60),
            catch_up_page_size: 4,
            recent_frames: 8,
            call_ringing_timeout: Duration::from_secs(30),
            call_disconnect_grace: Duration::from_secs(10),
            call_recording_consent_timeout: Duration::from_secs(30),
        },
        writer: WriterSettings {
            max_batch: 64,
            append_timeout: Duration::from_secs(5),
        },
        rate_limits: RateLimits::uniform(RateLimit {
            per_minute: 0,
            burst: 0,
        }),
        tenant_rate_limits: foldhash::HashMap::default(),
        max_connections_per_user: 0,
        max_members: 100,
        forward_max_targets: 5,
        forward_max_messages: 10,
        heartbeat_ms: 25_000,
        call_timeout: Duration::from_secs(5),
        restart_policy: RestartPolicy {
            base_delay: Duration::from_millis(10),
            ..RestartPolicy::default()
        },
    }
}

struct Fixture {
    system: System,
    store: Arc<MemoryMessageStore>,
    tenant_id: TenantId,
    conversation_id: ConversationId,
}

fn identity(user: &str) -> Identity {
    Identity {
        tenant_id: TenantId::parse("acme").expect("valid"),
        user_id: UserId::parse(user).expect("valid"),
    }
}

async fn fixture() -> Fixture {
    fixture_with_clock(Arc::new(SystemClock)).await
}

async fn fixture_with_clock(clock: Arc<dyn Clock>) -> Fixture {
    fixture_with(clock, Arc::new(TextEncoder)).await
}

/// A system on the in-memory store with `clock` and `encoder`, and a group conversation of
/// alice (owner) and bob.
async fn fixture_with(clock: Arc<dyn Clock>, encoder: Arc<dyn EventEncoder>) -> Fixture {
    let store = Arc::new(MemoryMessageStore::new());
    let system = System::start(
        settings(),
        crate::system::SystemPorts {
            store: Arc::clone(&store) as Arc<dyn MessageStore>,
            encoder,
            clock,
            ice: None,
            cluster: None,
            recordings: crate::system::RecordingPorts {
                store: Arc::new(switchboard_storage::MemoryRecordingStore::new()),
                objects: Arc::new(switchboard_storage::MemoryObjectStore::new()),
            },
            media: Arc::new(switchboard_storage::MemoryMediaStore::new()),
        },
    )
    .await
    .expect("system starts");
    let (snapshot, _) = system
        .create_conversation(
            &identity("alice"),
            ConversationKind::Group,
            None,
            vec![UserId::parse("bob").expect("valid")],
        )
        .await
        .expect("created");
    Fixture {
        system,
        store,
        tenant_id: TenantId::parse("acme").expect("valid"),
        conversation_id: snapshot.conversation.conversation_id,
    }
}

struct TestSession {
    handle: SessionHandle,
    receiver: OutboundReceiver,
}

impl TestSession {
    async fn open(fixture: &Fixture, user: &str) -> TestSession {
        let (queue, receiver) = outbound(1 << 20);
        let handle = fixture
            .system
            .open_session(identity(user), queue)
            .await
            .expect("session opens");
        let mut session = TestSession { handle, receiver };
        assert_eq!(session.next().await, "welcome");
        session
    }

    async fn next(&mut self) -> String {
        match tokio::time::timeout(DEADLINE, self.receiver.recv()).await {
            Ok(Some(OutboundEvent::Frame(frame))) => {
                String::from_utf8(frame.bytes().to_vec()).expect("utf-8")
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn request(&self, request: ClientRequest) {
        self.handle.request(request).expect("session alive");
    }

    async fn join(&mut self, conversation_id: ConversationId, since: Option<Seq>) {
        self.request(ClientRequest::Join {
            request_id: None,
            conversation_id,
            since,
        });
        let joined = self.next().await;
        assert!(joined.starts_with("joined"), "{joined}");
    }

    fn send(&self, conversation_id: ConversationId, client_id: &str) {
        self.request(ClientRequest::Send {
            request_id: Some(RequestId::Text(client_id.to_owned())),
            conversation_id,
            new_message: NewMessage {
                client_id: ClientId::parse(client_id).expect("valid"),
                text: format!("text of {client_id}"),
                reply_to: None,
                thread_root: None,
                forwarded_from: None,
                attachments: Vec::new(),
            },
        });
    }

    /// Reads frames until every client id in `pending` has its final ack; returns them.
    async fn final_acks(&mut self, mut pending: Vec<String>) -> HashMap<String, String> {
        let mut finals = HashMap::new();
        let mut n_pending_acks: HashMap<String, usize> = HashMap::new();
        while !pending.is_empty() {
            let frame = self.next().await;
            let mut words = frame.split(' ');
            let (Some(kind), Some(client_id)) = (words.next(), words.next()) else {
                continue;
            };
            match kind {
                "pending" => *n_pending_acks.entry(client_id.to_owned()).or_default() += 1,
                "delivered" | "rejected" => {
                    assert!(
                        finals.insert(client_id.to_owned(), frame.clone()).is_none(),
                        "two final acks for {client_id}"
                    );
                    pending.retain(|waiting| waiting != client_id);
                }
                _ => {}
            }
        }
        for (client_id, n_pending) in n_pending_acks {
            assert_eq!(n_pending, 1, "{client_id} got {n_pending} pending acks");
        }
        finals
    }

    /// Sends `client_id` until it is delivered (retrying `unavailable`), returning its seq.
    async fn send_until_delivered(
        &mut self,
        conversation_id: ConversationId,
        client_id: &str,
    ) -> u64 {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            self.send(conversation_id, client_id);
            let finals = self.final_acks(vec![client_id.to_owned()]).await;
            let verdict = &finals[client_id];
            if let Some(seq) = verdict.strip_prefix(&format!("delivered {client_id} ")) {
                return seq.parse().expect("seq");
            }
            assert!(verdict.contains("unavailable"), "{verdict}");
            assert!(tokio::time::Instant::now() < deadline, "never delivered");
            tokio::task::yield_now().await;
        }
    }

    /// Reads `message` frames until `last_seq`, returning their seqs in arrival order.
    async fn messages_through(&mut self, last_seq: u64) -> Vec<u64> {
        let mut seqs = Vec::new();
        loop {
            let frame = self.next().await;
            if let Some(seq) = frame.strip_prefix("message ") {
                let seq: u64 = seq.parse().expect("seq");
                seqs.push(seq);
                if seq >= last_seq {
                    return seqs;
                }
            }
        }
    }
}

impl Fixture {
    /// Alice's session, joined to the conversation from its start, and Bob's, not joined.
    async fn alice_joined_and_bob(&self) -> (TestSession, TestSession) {
        let mut alice = TestSession::open(self, "alice").await;
        let bob = TestSession::open(self, "bob").await;
        alice.join(self.conversation_id, None).await;
        (alice, bob)
    }

    fn key(&self) -> ConversationKey {
        ConversationKey {
            tenant_id: self.tenant_id.clone(),
            conversation_id: self.conversation_id,
        }
    }

    async fn kill_conversation(&self) {
        let actor = self
            .system
            .handles()
            .conversations
            .lookup(self.key(), DEADLINE)
            .await
            .expect("supervisor answers")
            .expect("the conversation is running");
        actor.kill();
    }

    async fn stored_seqs_and_client_ids(&self) -> (Vec<u64>, Vec<String>) {
        let messages = self
            .store
            .messages_after(&self.tenant_id, self.conversation_id, Seq::ZERO, 10_000)
            .await
            .expect("readable");
        (
            messages.iter().map(|message| message.seq.get()).collect(),
            messages
                .iter()
                .map(|message| message.client_id.to_string())
                .collect(),
        )
    }

    async fn assert_log_is_clean(&self, n_expected: usize) {
        let (seqs, client_ids) = self.stored_seqs_and_client_ids().await;
        assert_eq!(
            seqs,
            (1..=n_expected as u64).collect::<Vec<_>>(),
            "gap or reuse"
        );
        let mut distinct = client_ids.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            client_ids.len(),
            "a client id was stored twice"
        );
    }
}

#[tokio::test]
async fn a_killed_conversation_is_rejoined_without_a_gap() {
    let fixture = fixture().await;
    let conversation_id = fixture.conversation_id;
    let (mut alice, mut bob) = fixture.alice_joined_and_bob().await;
    for n in 1..=5 {
        bob.send_until_delivered(conversation_id, &format!("b{n}"))
            .await;
    }
    assert_eq!(alice.messages_through(5).await, [1, 2, 3, 4, 5]);

    fixture.kill_conversation().await;
    for n in 6..=10 {
        bob.send_until_delivered(conversation_id, &format!("b{n}"))
            .await;
    }
    // Alice's session re-joins on its own from the last seq it was given.
    assert_eq!(alice.messages_through(10).await, [6, 7, 8, 9, 10]);
    fixture.assert_log_is_clean(10).await;
}

#[tokio::test]
async fn every_send_ends_in_exactly_one_final_ack_when_its_conversation_is_killed() {
    let fixture = fixture().await;
    let conversation_id = fixture.conversation_id;
    let mut bob = TestSession::open(&fixture, "bob").await;
    bob.send_until_delivered(conversation_id, "warm-up").await;
    let client_ids: Vec<String> = (0..50).map(|n| format!("k{n}")).collect();
    for client_id in &client_ids {
        bob.send(conversation_id, client_id);
    }
    fixture.kill_conversation().await;
    let finals = bob.final_acks(client_ids.clone()).await;
    assert_eq!(finals.len(), client_ids.len());
    // Retrying every key (delivered or not) stores each exactly once.
    for client_id in &client_ids {
        bob.send_until_delivered(conversation_id, client_id).await;
    }
    fixture.assert_log_is_clean(client_ids.len() + 1).await;
}

#[tokio::test]
async fn a_killed_writer_is_restarted_and_no_acknowledged_message_is_lost() {
    let fixture = fixture().await;
    let conversation_id = fixture.conversation_id;
    let (mut alice, mut bob) = fixture.alice_joined_and_bob().await;
    let client_ids: Vec<String> = (0..40).map(|n| format!("w{n}")).collect();
    for client_id in &client_ids {
        bob.send(conversation_id, client_id);
    }
    let writer_before = fixture.system.handles().writer.actor().get_id();
    fixture.system.handles().writer.actor().kill();
    let finals = bob.final_acks(client_ids.clone()).await;
    let delivered: HashMap<&String, u64> = finals
        .iter()
        .filter_map(|(client_id, verdict)| {
            let seq = verdict.strip_prefix(&format!("delivered {client_id} "))?;
            Some((client_id, seq.parse().expect("seq")))
        })
        .collect();
    for client_id in &client_ids {
        let seq = bob.send_until_delivered(conversation_id, client_id).await;
        if let Some(acked) = delivered.get(client_id) {
            assert_eq!(*acked, seq, "an acknowledged message changed seq");
        }
    }
    assert_ne!(
        fixture.system.handles().writer.actor().get_id(),
        writer_before
    );
    fixture.assert_log_is_clean(client_ids.len()).await;
    // Alice saw every stored message exactly once, in order.
    assert_eq!(
        alice.messages_through(client_ids.len() as u64).await,
        (1..=client_ids.len() as u64).collect::<Vec<_>>()
    );
}

/// Sends one message as `user` over the HTTP path; returns the error's text, or "delivered".
async fn try_send(fixture: &Fixture, user: &str, client_id: &str) -> String {
    let new_message = NewMessage {
        client_id: ClientId::parse(client_id).expect("valid"),
        text: "hello".to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        attachments: Vec::new(),
    };
    match fixture
        .system
        .send(&identity(user), fixture.conversation_id, new_message)
        .await
    {
        Ok(_) => "delivered".to_owned(),
        Err(error) => error.to_string(),
    }
}

/// Alice, the owner, makes `change` under `client_id`.
async fn change_as_alice(
    fixture: &Fixture,
    client_id: &str,
    change: ConversationChange,
) -> Result<ChangeResult, Error> {
    let client_id = ClientId::parse(client_id).expect("valid");
    fixture
        .system
        .change(
            &identity("alice"),
            fixture.conversation_id,
            client_id,
            change,
        )
        .await
}

async fn moderate(fixture: &Fixture, client_id: &str, action: ModerationAction, duration_ms: u64) {
    let moderate = ConversationChange::Moderate {
        action,
        user_id: UserId::parse("bob").expect("valid"),
        duration_ms: Some(duration_ms),
        reason: Some("testing".to_owned()),
    };
    change_as_alice(fixture, client_id, moderate)
        .await
        .expect("the owner may moderate bob");
}

#[tokio::test]
async fn mutes_and_bans_end_on_their_own_also_after_the_conversation_restarts() {
    const MINUTE: u64 = 60_000;
    let clock = Arc::new(ManualClock::at(Timestamp(1_700_000_000_000)));
    let fixture = fixture_with_clock(Arc::clone(&clock) as Arc<dyn Clock>).await;
    assert_eq!(try_send(&fixture, "bob", "before").await, "delivered");

    moderate(&fixture, "mute-bob", ModerationAction::Mute, MINUTE).await;
    let muted = "forbidden: you are muted in this conversation";
    assert_eq!(try_send(&fixture, "bob", "m1").await, muted);
    fixture.kill_conversation().await;
    // The restarted conversation reloads the mute from storage.
    assert_eq!(try_send(&fixture, "bob", "m2").await, muted);
    clock.advance(MINUTE - 1);
    assert_eq!(try_send(&fixture, "bob", "m3").await, muted);
    clock.advance(1);
    assert_eq!(try_send(&fixture, "bob", "m4").await, "delivered");

    moderate(&fixture, "ban-bob", ModerationAction::Ban, 2 * MINUTE).await;
    assert_eq!(
        try_send(&fixture, "bob", "b1").await,
        "not a member of this conversation"
    );
    let add_bob = |client_id: &'static str| {
        let fixture = &fixture;
        async move {
            let add = ConversationChange::AddMembers {
                user_ids: vec![UserId::parse("bob").expect("valid")],
            };
            change_as_alice(fixture, client_id, add)
                .await
                .map(|result| result.snapshot.members.len())
                .map_err(|error| error.to_string())
        }
    };
    assert_eq!(
        add_bob("add-1").await,
        Err("forbidden: a user named is banned from this conversation".to_owned())
    );
    fixture.kill_conversation().await;
    clock.advance(2 * MINUTE - 1);
    assert_eq!(
        add_bob("add-2").await,
        Err("forbidden: a user named is banned from this conversation".to_owned())
    );
    fixture.kill_conversation().await;
    clock.advance(1);
    assert_eq!(add_bob("add-3").await, Ok(2));
    assert_eq!(try_send(&fixture, "bob", "b2").await, "delivered");
}

#[test]
fn a_sessions_mailbox_message_stays_small() {
    // Every queued message is a node of the session's mailbox; requests are boxed so that a
    // node stays small whatever the largest request is.
    let size = std::mem::size_of::<crate::session::SessionMsg>();
    assert!(size <= 48, "SessionMsg is {size} bytes");
}

/// Polls the supervisor's count of sessions until it is `expected`.
async fn wait_for_n_sessions(fixture: &Fixture, expected: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let n_sessions = fixture.system.n_sessions().await.expect("count");
        if n_sessions == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n_sessions} sessions, expected {expected}"
        );
        tokio::task::yield_now().await;
    }
}

/// Alice and Bob, each with a session joined to the fixture's conversation.
async fn alice_and_bob_joined(fixture: &Fixture) -> (TestSession, TestSession) {
    let mut alice = TestSession::open(fixture, "alice").await;
    alice.join(fixture.conversation_id, None).await;
    let mut bob = TestSession::open(fixture, "bob").await;
    bob.join(fixture.conversation_id, None).await;
    wait_for_n_sessions(fixture, 2).await;
    (alice, bob)
}

/// The queue's next event is its close because the session ended.
async fn next_is_the_close(receiver: &mut OutboundReceiver) {
    match tokio::time::timeout(DEADLINE, receiver.recv()).await {
        Ok(Some(OutboundEvent::Close(CloseReason::SessionEnded))) => {}
        other => panic!("expected only the close, got {other:?}"),
    }
}

/// Bob's send is delivered and reaches his own session.
async fn bob_is_still_served(fixture: &Fixture, bob: &mut TestSession, client_id: &str) {
    assert_eq!(try_send(fixture, "bob", client_id).await, "delivered");
    while !bob.next().await.starts_with("message") {}
}

#[tokio::test]
async fn dropping_a_sessions_handle_ends_it_its_subscriptions_and_its_queue() {
    let fixture = fixture().await;
    let (alice, mut bob) = alice_and_bob_joined(&fixture).await;
    let TestSession {
        handle,
        mut receiver,
    } = alice;
    drop(handle);
    wait_for_n_sessions(&fixture, 1).await;
    // The session's cleanup closed its queue...
    loop {
        match tokio::time::timeout(DEADLINE, receiver.recv()).await {
            Ok(Some(OutboundEvent::Close(reason))) => {
                assert_eq!(reason, CloseReason::SessionEnded);
                break;
            }
            Ok(Some(OutboundEvent::Frame(_))) => {}
            other => panic!("expected the queue to close, got {other:?}"),
        }
    }
    // ...and left the conversation, which goes on serving Bob.
    bob_is_still_served(&fixture, &mut bob, "after-alice-left").await;
}

#[tokio::test]
async fn a_stopped_session_refuses_requests_and_closes_its_queue() {
    let fixture = fixture().await;
    let mut alice = TestSession::open(&fixture, "alice").await;
    wait_for_n_sessions(&fixture, 1).await;
    alice.handle.stop();
    let refused = alice
        .handle
        .request(ClientRequest::Ping { request_id: None });
    assert!(refused.is_err(), "a request after the stop is refused");
    wait_for_n_sessions(&fixture, 0).await;
    next_is_the_close(&mut alice.receiver).await;
}

#[tokio::test]
async fn a_panicking_session_is_cleaned_up_reported_and_its_connection_closed() {
    let fixture = fixture().await;
    let (mut alice, mut bob) = alice_and_bob_joined(&fixture).await;
    assert!(
        alice
            .handle
            .address()
            .tell(crate::session::SessionMsg::Panic),
        "the session is alive"
    );
    // The cleanup ran (the queue closed) and the supervisor heard of the failure (the count).
    next_is_the_close(&mut alice.receiver).await;
    wait_for_n_sessions(&fixture, 1).await;
    assert!(
        alice
            .handle
            .request(ClientRequest::Ping { request_id: None })
            .is_err(),
        "a failed session takes no more requests"
    );
    // The conversation lost only Alice's subscription.
    bob_is_still_served(&fixture, &mut bob, "after-the-panic").await;
}

#[tokio::test]
async fn the_supervisor_closes_the_connection_of_a_failed_session() {
    let fixture = fixture().await;
    let mut alice = TestSession::open(&fixture, "alice").await;
    wait_for_n_sessions(&fixture, 1).await;
    fixture
        .system
        .handles()
        .sessions
        .cast(SessionsMsg::Failed {
            session_id: alice.handle.session_id(),
            error: "a test".to_owned(),
        })
        .expect("the supervisor runs");
    next_is_the_close(&mut alice.receiver).await;
    wait_for_n_sessions(&fixture, 0).await;
}

#[tokio::test]
async fn a_retry_learns_its_first_attempt_worked_even_after_a_restart_and_a_change_of_rights() {
    let fixture = fixture().await;
    let bob = identity("bob");
    let conversation_id = fixture.conversation_id;
    let send = || NewMessage {
        client_id: ClientId::parse("b-1").expect("valid"),
        text: "hello".to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        attachments: Vec::new(),
    };
    let first = fixture
        .system
        .send(&bob, conversation_id, send())
        .await
        .expect("bob may send");
    let leave = |client_id: &'static str| {
        let fixture = &fixture;
        let bob = bob.clone();
        async move {
            fixture
                .system
                .change(
                    &bob,
                    conversation_id,
                    ClientId::parse(client_id).expect("valid"),
                    ConversationChange::Leave,
                )
                .await
        }
    };
    let left = leave("b-leave").await.expect("bob may leave");
    // The conversation restarts and forgets the keys it remembered; bob is no longer a member.
    fixture.kill_conversation().await;
    let again = leave("b-leave").await.expect("the repeat is answered");
    assert_eq!((again.event, again.created), (left.event, false));
    let resent = fixture
        .system
        .send(&bob, conversation_id, send())
        .await
        .expect("the repeated send is answered");
    assert_eq!(
        (resent.message.message_id, resent.created),
        (first.message.message_id, false)
    );
    // A new request from a non-member is still refused.
    let refused = fixture
        .system
        .send(
            &bob,
            conversation_id,
            NewMessage {
                client_id: ClientId::parse("b-2").expect("valid"),
                ..send()
            },
        )
        .await;
    assert_eq!(refused.map(|_| ()), Err(Error::NotMember));
}

// ---- resumes show every entry as it is now (issue 13, defect 8) ----

/// Encodes every entry with its whole state, so two frames of one seq differ whenever the
/// entries differ; everything else as [`TextEncoder`] does.
struct StateEncoder;

impl EventEncoder for StateEncoder {
    fn encode(&self, event: &ServerEvent<'_>) -> EncodedFrame {
        match event {
            ServerEvent::Entry(entry) => EncodedFrame::from_text(format!("entry {entry:?}")),
            other => TextEncoder.encode(other),
        }
    }
}

/// An operation of the resume property test; messages are named by their index among the
/// messages sent so far (modulo their number).
#[derive(Debug, Clone)]
enum ReplayOp {
    Send {
        by_bob: bool,
        in_thread_of: Option<usize>,
    },
    Edit {
        message: usize,
    },
    Delete {
        message: usize,
        hard: bool,
    },
    /// A reaction (👍 or 🎉) added, or taken back when `undo`.
    React {
        message: usize,
        by_bob: bool,
        thumbs: bool,
        undo: bool,
    },
}

fn replay_op_strategy() -> impl proptest::strategy::Strategy<Value = ReplayOp> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (any::<bool>(), proptest::option::of(0..8usize))
            .prop_map(|(by_bob, in_thread_of)| ReplayOp::Send { by_bob, in_thread_of }),
        2 => (0..8usize).prop_map(|message| ReplayOp::Edit { message }),
        1 => (0..8usize, any::<bool>()).prop_map(|(message, hard)| ReplayOp::Delete { message, hard }),
        2 => (0..8usize, any::<bool>(), any::<bool>())
            .prop_map(|(message, by_bob, thumbs)| ReplayOp::React { message, by_bob, thumbs, undo: false }),
        1 => (0..8usize, any::<bool>(), any::<bool>())
            .prop_map(|(message, by_bob, thumbs)| ReplayOp::React { message, by_bob, thumbs, undo: true }),
    ]
}

/// Runs `ops` (refused ones are simply refused), then resumes a new session from every seq and
/// checks that what it receives is exactly the log as storage now holds it.
async fn check_resumes_equal_the_history(ops: Vec<ReplayOp>) {
    use switchboard_engine::ids::{Emoji, MessageId};
    use switchboard_engine::model::DeleteMode;
    use switchboard_engine::operations::{MessageOperation, NewOperation};

    let Fixture {
        system,
        store,
        tenant_id,
        conversation_id,
    } = fixture_with(Arc::new(SystemClock), Arc::new(StateEncoder)).await;

    let mut messages: Vec<MessageId> = Vec::new();
    for (n, op) in ops.into_iter().enumerate() {
        let client_id = ClientId::parse(&format!("op{n}")).expect("valid");
        let pick = |index: usize| messages.get(index % messages.len().max(1)).copied();
        let who = |by_bob: bool| identity(if by_bob { "bob" } else { "alice" });
        let operation = match op {
            ReplayOp::Send {
                by_bob,
                in_thread_of,
            } => {
                let new_message = NewMessage {
                    client_id,
                    text: format!("message {n}"),
                    reply_to: None,
                    thread_root: in_thread_of.and_then(pick),
                    forwarded_from: None,
                    attachments: Vec::new(),
                };
                if let Ok(sent) = system
                    .send(&who(by_bob), conversation_id, new_message)
                    .await
                {
                    messages.push(sent.message.message_id);
                }
                continue;
            }
            ReplayOp::Edit { message } => pick(message).map(|message_id| {
                (
                    false,
                    MessageOperation::Edit {
                        message_id,
                        text: format!("edited by op {n}"),
                    },
                )
            }),
            ReplayOp::Delete { message, hard } => pick(message).map(|message_id| {
                (
                    false,
                    MessageOperation::Delete {
                        message_id,
                        mode: if hard {
                            DeleteMode::Hard
                        } else {
                            DeleteMode::ForEveryone
                        },
                    },
                )
            }),
            ReplayOp::React {
                message,
                by_bob,
                thumbs,
                undo,
            } => pick(message).map(|message_id| {
                let emoji = Emoji::parse(if thumbs { "👍" } else { "🎉" }).expect("emoji");
                let operation = if undo {
                    MessageOperation::Unreact { message_id, emoji }
                } else {
                    MessageOperation::React { message_id, emoji }
                };
                (by_bob, operation)
            }),
        };
        if let Some((by_bob, operation)) = operation {
            // Alice sends about half the messages: edits of bob's are refused, which is fine.
            let _ = system
                .operate(
                    &who(by_bob),
                    conversation_id,
                    NewOperation {
                        client_id,
                        operation,
                    },
                )
                .await;
        }
    }

    let stored = store
        .entries_after(&tenant_id, conversation_id, Seq::ZERO, 10_000)
        .await
        .expect("readable");
    let head = stored
        .last()
        .map_or(Seq::ZERO, switchboard_engine::operations::LogEntry::seq);
    for since in 0..=head.get() {
        let (queue, receiver) = outbound(1 << 20);
        let handle = system
            .open_session(identity("bob"), queue)
            .await
            .expect("session opens");
        let mut session = TestSession { handle, receiver };
        assert_eq!(session.next().await, "welcome");
        session.join(conversation_id, Some(Seq(since))).await;
        let mut received = Vec::new();
        while (received.len() as u64) < head.get() - since {
            let frame = session.next().await;
            if frame.starts_with("entry ") {
                received.push(frame);
            }
        }
        let expected: Vec<String> = stored
            .iter()
            .filter(|entry| entry.seq().get() > since)
            .map(|entry| format!("entry {entry:?}"))
            .collect();
        assert_eq!(received, expected, "a resume from seq {since}");
        session.handle.stop();
    }
    system.shutdown(DEADLINE).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]
    #[test]
    fn a_resume_after_any_operations_equals_the_history_read_afterwards(
        ops in proptest::collection::vec(replay_op_strategy(), 1..24)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(check_resumes_equal_the_history(ops));
    }
}

#[tokio::test]
async fn a_resume_shows_the_edited_text_and_never_a_deleted_one() {
    // The two cases, as fixed scenarios: a message edited before the resume, and one
    // edited and then deleted for everyone.
    check_resumes_equal_the_history(vec![
        ReplayOp::Send {
            by_bob: false,
            in_thread_of: None,
        },
        ReplayOp::Edit { message: 0 },
        ReplayOp::Send {
            by_bob: false,
            in_thread_of: None,
        },
        ReplayOp::Edit { message: 1 },
        ReplayOp::Delete {
            message: 1,
            hard: false,
        },
    ])
    .await;
}
