//! Micro-benchmarks of Switchboard's hot paths, one criterion group per layer, so that a
//! regression or an optimisation shows up in the layer that caused it.
//!
//! - `codec`: parsing a client `send` frame (200-byte text) and a `join` frame with
//!   `switchboard_transport::codec::parse_client_frame`, and encoding a `message` event and a
//!   `delivered` ack with `JsonEventEncoder`. Every frame a client sends is parsed once and every
//!   event is encoded once (fan-out shares the bytes), so these bound the per-frame CPU cost at
//!   the edge.
//! - `engine`: one send decision cycle of the pure `ConversationCore` (`check_send`, `accept`,
//!   `on_persisted(Stored)`) with 0, 10 and 100 live subscribers, and `TokenBucket::try_take`.
//!   This is the work a conversation actor does per message, without actors, storage or I/O.
//! - `fanout`: the real actor system on the in-memory store with N sessions joined to one
//!   conversation (N = 10, 100, 1000; with `CI` set, 10 and 100). One session sends, and an
//!   iteration ends when every session's outbound queue has yielded the `message` frame. This is
//!   the end-to-end latency of a send through session, conversation, writer and fan-out, minus
//!   sockets and durable storage.
//! - `store`: durable appends of 1, 64 and 1024 messages to `EmbeddedMessageStore` (real fjall,
//!   fsync included, in a temporary directory) against `MemoryMessageStore`, and a read of 50
//!   messages with `messages_after` from both. Appends are the writer's group commits, so their
//!   cost per commit is the floor of a send's acknowledgement latency.
//!
//! Run it with `cargo bench --bench micro`; `docs/PERFORMANCE.md` records a run. With `CI` set,
//! sizes and times are cut so that even a full run stays short (CI itself only builds it).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchboard::config::Config;
use switchboard_actors::clock::SystemClock;
use switchboard_actors::outbound::{OutboundEvent, OutboundReceiver, outbound};
use switchboard_actors::session::{ClientRequest, Identity, SessionHandle};
use switchboard_actors::system::System;
use switchboard_engine::conversation::{AppendResult, ConversationCore, SendCheck};
use switchboard_engine::event::{AckOutcome, EncodedFrame, EventEncoder, ServerEvent};
use switchboard_engine::ids::{
    ClientId, ConversationId, MessageId, RequestId, Seq, SessionId, TenantId, UserId,
};
use switchboard_engine::model::{
    Conversation, ConversationKind, ConversationSnapshot, Member, Message, MessageState,
    NewMessage, Role,
};
use switchboard_engine::operations::LogEntry;
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};
use switchboard_engine::rate_limit::{RateLimit, RateLimits, TokenBucket};
use switchboard_engine::time::Timestamp;
use switchboard_engine::validate::MessageLimits;
use switchboard_storage::{EmbeddedMessageStore, MemoryMessageStore};
use switchboard_transport::codec::{JsonEventEncoder, parse_client_frame};
use tempfile::TempDir;
use tokio::runtime::Runtime;
// tokio's clock, not `std::time::Instant` (which clippy.toml forbids): nothing here pauses time,
// so it reads the same monotonic clock, and `iter_custom` needs a timer of its own.
use tokio::time::Instant;

#[path = "shared/bench_support.rs"]
mod bench_support;
use bench_support::{Xorshift, bounded_criterion, is_ci};

/// A fixed wall-clock time for ids and timestamps (2026-11-23), so runs are repeatable.
const EPOCH_MS: u64 = 1_795_392_000_000;
/// The length of every message text, in bytes: a typical chat line.
const TEXT_BYTES: usize = 200;
/// The frame size limit passed to the parser (the configuration's default).
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Conversations the store benchmarks spread their messages over.
const N_STORE_CONVERSATIONS: usize = 16;
/// Messages per `messages_after` read, the default history page.
const READ_PAGE_LENGTH: usize = 50;
/// How long the fan-out benchmark waits for one frame before declaring the system stuck.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);
/// The in-memory store grows with every append; past this many messages the append benchmark
/// swaps in an empty store (outside the timed region) so memory stays bounded.
const MEMORY_STORE_MAX_MESSAGES: usize = 200_000;

/// Session counts for the fan-out group.
fn fanout_session_counts() -> &'static [usize] {
    if is_ci() {
        &[10, 100]
    } else {
        &[10, 100, 1000]
    }
}

/// Messages per conversation stored before the read benchmarks run.
fn n_read_prefill_per_conversation() -> u64 {
    if is_ci() { 200 } else { 2_000 }
}

fn tenant_id() -> TenantId {
    TenantId::parse("acme").expect("a static tenant id is valid")
}

fn user_id(name: &str) -> UserId {
    UserId::parse(name).expect("benchmark user ids use only valid characters")
}

fn client_id(text: &str) -> ClientId {
    ClientId::parse(text).expect("benchmark client ids are short and use only valid characters")
}

/// Pseudo-random lowercase words: valid UTF-8 at any cut, JSON-safe without escapes, and
/// varied enough that stored texts do not compress to nothing.
fn random_words(n_bytes: usize, seed: u64) -> String {
    let mut random = Xorshift(seed);
    (0..n_bytes)
        .map(|_| match random.below(7) {
            0 => ' ',
            _ => char::from(b'a' + random.below(26) as u8),
        })
        .collect()
}

/// A `TEXT_BYTES`-long chat text that starts and ends with a letter.
fn chat_text(seed: u64) -> String {
    let mut text = random_words(TEXT_BYTES, seed);
    text.replace_range(..1, "h");
    text.replace_range(TEXT_BYTES - 1.., ".");
    text
}

fn multi_thread_runtime() -> Runtime {
    // The default worker count is one per core, as in the server.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}

// ---- codec ----

fn codec(criterion: &mut Criterion) {
    let conversation_id = ConversationId::from_parts(EPOCH_MS, 0x00c0_ffee);
    let text = chat_text(1);
    let send_frame = format!(
        r#"{{"type":"send","id":17,"conversation_id":"{conversation_id}","client_id":"9f1c2a4e-5b6d-4c3e-8a7f-0123456789ab","text":"{text}"}}"#
    );
    let join_frame = format!(
        r#"{{"type":"join","id":"join-3","conversation_id":"{conversation_id}","since":1234}}"#
    );
    assert!(
        matches!(
            parse_client_frame(&send_frame, MAX_FRAME_BYTES),
            Ok(ClientRequest::Send { .. })
        ),
        "the benchmark's send frame parses"
    );
    assert!(
        matches!(
            parse_client_frame(&join_frame, MAX_FRAME_BYTES),
            Ok(ClientRequest::Join { .. })
        ),
        "the benchmark's join frame parses"
    );
    let message = Message {
        conversation_id,
        seq: Seq(1234),
        message_id: MessageId::from_parts(EPOCH_MS, 0x0bad_cafe),
        sender_id: user_id("user-0042"),
        client_id: client_id("9f1c2a4e-5b6d-4c3e-8a7f-0123456789ab"),
        text,
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(EPOCH_MS),
        state: MessageState::default(),
        attachments: Vec::new(),
    };
    let entry = LogEntry::Message(message.clone());
    let request_id = RequestId::Number(17);
    let delivered = AckOutcome::Delivered(message.reference());
    let encoder = JsonEventEncoder;

    let mut group = criterion.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_send_200_byte_text", |bencher| {
        bencher.iter(|| parse_client_frame(black_box(&send_frame), MAX_FRAME_BYTES));
    });
    group.bench_function("parse_join", |bencher| {
        bencher.iter(|| parse_client_frame(black_box(&join_frame), MAX_FRAME_BYTES));
    });
    group.bench_function("encode_message_200_byte_text", |bencher| {
        bencher.iter(|| encoder.encode(&ServerEvent::Entry(black_box(&entry))));
    });
    group.bench_function("encode_delivered_ack", |bencher| {
        bencher.iter(|| {
            encoder.encode(&ServerEvent::Ack {
                request_id: Some(black_box(&request_id)),
                client_id: black_box(&message.client_id),
                outcome: black_box(&delivered),
            })
        });
    });
    group.finish();
}

// ---- engine ----

/// A group conversation whose members are `n_subscribers` readers plus the sender, with every
/// reader joined live. The sender's id sorts after every reader's, so the member lookup in
/// `check_send` (a scan of the member list) does its full length, as for an unlucky sender.
fn conversation_core(n_subscribers: usize, sender_id: &UserId) -> ConversationCore<()> {
    let created_at = Timestamp(EPOCH_MS);
    let reader_ids: Vec<UserId> = (0..n_subscribers)
        .map(|index| user_id(&format!("member-{index:04}")))
        .collect();
    let mut members: Vec<Member> = reader_ids
        .iter()
        .map(|reader_id| Member {
            user_id: reader_id.clone(),
            role: Role::Member,
            joined_at: created_at,
        })
        .collect();
    members.push(Member {
        user_id: sender_id.clone(),
        role: Role::Owner,
        joined_at: created_at,
    });
    members.sort_by(|left, right| left.user_id.cmp(&right.user_id));
    let snapshot = ConversationSnapshot {
        conversation: Conversation::new(
            ConversationId::from_parts(EPOCH_MS, 7),
            tenant_id(),
            ConversationKind::Group,
            None,
            sender_id.clone(),
            created_at,
        ),
        members,
    };
    let mut core = ConversationCore::new(snapshot, Seq::ZERO, MessageLimits::default());
    for (index, reader_id) in reader_ids.into_iter().enumerate() {
        let session_id = SessionId::from_parts(EPOCH_MS, index as u128);
        core.join(session_id, reader_id, None)
            .expect("every reader is a member");
    }
    core
}

fn engine(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    let text = chat_text(2);
    let now = Timestamp(EPOCH_MS);
    for n_subscribers in [0_usize, 10, 100] {
        let sender_id = user_id("owner");
        let mut core = conversation_core(n_subscribers, &sender_id);
        let mut n_sent: u64 = 0;
        group.bench_with_input(
            BenchmarkId::new("send_cycle", n_subscribers),
            &n_subscribers,
            |bencher, &n_subscribers| {
                bencher.iter_batched(
                    // Outside the timed region: what the actor receives (a fresh client id, so
                    // every send is new) and the message id it generates.
                    || {
                        n_sent += 1;
                        let new_message = NewMessage {
                            client_id: client_id(&format!("engine-{n_sent}")),
                            text: text.clone(),
                            reply_to: None,
                            thread_root: None,
                            forwarded_from: None,
                            attachments: Vec::new(),
                        };
                        let message_id = MessageId::from_parts(EPOCH_MS, u128::from(n_sent));
                        (sender_id.clone(), new_message, message_id)
                    },
                    |(sender_id, new_message, message_id)| {
                        let check = core
                            .check_send(&sender_id, &new_message, Timestamp(EPOCH_MS))
                            .expect("the owner sends valid text");
                        assert_eq!(check, SendCheck::Unknown, "every client id is fresh");
                        let accepted =
                            core.accept(sender_id, new_message, Vec::new(), message_id, now, ());
                        let seq = core.durable_head().next();
                        let report = core.on_persisted(
                            accepted.ticket,
                            AppendResult::Stored(seq, None, Vec::new()),
                        );
                        assert_eq!(
                            report.live_sessions.len(),
                            n_subscribers,
                            "every reader is live"
                        );
                        report
                    },
                    BatchSize::SmallInput,
                );
            },
        );
    }

    // The configuration's default shape; one call per simulated second keeps the bucket
    // refilling exactly as fast as it is drained, so every call takes a token.
    let limit = RateLimit {
        per_minute: 60,
        burst: 10,
    };
    let mut bucket = TokenBucket::full(&limit, now);
    let mut now_ms = EPOCH_MS;
    group.bench_function("token_bucket_try_take", |bencher| {
        bencher.iter(|| {
            now_ms += 1_000;
            bucket.try_take(black_box(&limit), black_box(Timestamp(now_ms)))
        });
    });
    group.finish();
}

// ---- fanout ----

/// A running actor system with `receivers.len()` sessions joined to one conversation.
struct FanoutFixture {
    system: System,
    conversation_id: ConversationId,
    /// Every session, kept so each stays alive for the whole benchmark (dropping a handle stops
    /// its session); the first one sends, and its queue is the first of `receivers`.
    sessions: Vec<SessionHandle>,
    /// Every session's queue; each must yield every message.
    receivers: Vec<OutboundReceiver>,
    text: String,
    n_sent: u64,
}

fn is_frame(frame: &EncodedFrame, kind: &str) -> bool {
    // `JsonEventEncoder` writes the `type` tag first.
    frame
        .bytes()
        .strip_prefix(br#"{"type":""#)
        .and_then(|rest| rest.strip_prefix(kind.as_bytes()))
        .is_some_and(|rest| rest.starts_with(b"\""))
}

/// The next frame of one queue. A frame that is already queued is taken without arming a
/// timer (that is the common case for every queue after the first), so the timeout's cost does
/// not inflate the measurement.
async fn next_frame(receiver: &mut OutboundReceiver) -> EncodedFrame {
    if let Some(frame) = receiver.try_recv() {
        return frame;
    }
    match tokio::time::timeout(FRAME_DEADLINE, receiver.recv()).await {
        Ok(Some(OutboundEvent::Frame(frame))) => frame,
        other => panic!("a session's queue stalled or closed: {other:?}"),
    }
}

async fn next_frame_of_kind(receiver: &mut OutboundReceiver, kind: &str) {
    while !is_frame(&next_frame(receiver).await, kind) {}
}

impl FanoutFixture {
    async fn start(n_sessions: usize) -> FanoutFixture {
        let config = Config::default();
        let mut settings = config.system_settings();
        // Every iteration sends from the same user, so rate limiting must be off.
        settings.rate_limits = RateLimits::uniform(RateLimit {
            per_minute: 0,
            burst: 0,
        });
        settings.max_members = settings.max_members.max(n_sessions);
        let system = System::start(
            settings,
            switchboard_actors::system::SystemPorts {
                store: Arc::new(MemoryMessageStore::new()),
                encoder: Arc::new(JsonEventEncoder),
                clock: Arc::new(SystemClock),
                ice: None,
                cluster: None,
                recordings: switchboard_actors::system::RecordingPorts {
                    store: Arc::new(switchboard_storage::MemoryRecordingStore::new()),
                    objects: Arc::new(switchboard_storage::MemoryObjectStore::new()),
                },
                media: Arc::new(switchboard_storage::MemoryMediaStore::new()),
            },
        )
        .await
        .expect("the actor system starts");
        let identities: Vec<Identity> = (0..n_sessions)
            .map(|index| Identity {
                tenant_id: tenant_id(),
                user_id: user_id(&format!("user-{index:04}")),
            })
            .collect();
        let (snapshot, _) = system
            .create_conversation(
                &identities[0],
                ConversationKind::Group,
                Some("fan-out benchmark".to_owned()),
                identities
                    .iter()
                    .map(|identity| identity.user_id.clone())
                    .collect(),
            )
            .await
            .expect("the conversation is created within max_members");
        let conversation_id = snapshot.conversation.conversation_id;

        let mut sessions = Vec::with_capacity(n_sessions);
        let mut receivers = Vec::with_capacity(n_sessions);
        for identity in identities {
            let (queue, receiver) = outbound(config.limits.outbound_queue_bytes);
            let session = system
                .open_session(identity, queue)
                .await
                .expect("connections are not limited here");
            session
                .request(ClientRequest::Join {
                    request_id: None,
                    conversation_id,
                    since: None,
                })
                .expect("a new session is alive");
            sessions.push(session);
            receivers.push(receiver);
        }
        for receiver in &mut receivers {
            next_frame_of_kind(receiver, "welcome").await;
            next_frame_of_kind(receiver, "joined").await;
        }
        FanoutFixture {
            system,
            conversation_id,
            sessions,
            receivers,
            text: chat_text(3),
            n_sent: 0,
        }
    }

    /// One send, until every session (the sender included) has its `message` frame. The
    /// sender's `pending` and `delivered` acks arrive before its `message` frame and are
    /// skipped on the way.
    async fn send_and_wait_for_everyone(&mut self) {
        self.n_sent += 1;
        let request = ClientRequest::Send {
            request_id: Some(RequestId::Number(self.n_sent as i64)),
            conversation_id: self.conversation_id,
            new_message: NewMessage {
                client_id: client_id(&format!("fanout-{}", self.n_sent)),
                text: self.text.clone(),
                reply_to: None,
                thread_root: None,
                forwarded_from: None,
                attachments: Vec::new(),
            },
        };
        self.sessions[0]
            .request(request)
            .expect("the sender's session is alive");
        for receiver in &mut self.receivers {
            next_frame_of_kind(receiver, "message").await;
        }
    }
}

fn fanout(criterion: &mut Criterion) {
    let runtime = multi_thread_runtime();
    let mut group = criterion.benchmark_group("fanout");
    // One element is one delivered message frame.
    for &n_sessions in fanout_session_counts() {
        let mut fixture = runtime.block_on(FanoutFixture::start(n_sessions));
        group.throughput(Throughput::Elements(n_sessions as u64));
        // Each iteration also stores the message in the in-memory store (the writer's group
        // commit runs for real, without an fsync), as every send does; that is part of the
        // measured latency.
        group.bench_with_input(
            BenchmarkId::new("send_to_joined_sessions", n_sessions),
            &n_sessions,
            |bencher, _| {
                bencher.iter_custom(|n_iterations| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..n_iterations {
                            fixture.send_and_wait_for_everyone().await;
                        }
                        start.elapsed()
                    })
                });
            },
        );
        runtime.block_on(fixture.system.shutdown(Duration::from_secs(5)));
    }
    group.finish();
}

// ---- store ----

/// Produces append batches round-robin over `N_STORE_CONVERSATIONS` conversations, each entry
/// with its conversation's next seq (the heads are tracked here, so a store reused across
/// iterations always sees contiguous seqs), a unique client id and a 200-byte text.
struct MessageSource {
    conversation_ids: Vec<ConversationId>,
    heads: [u64; N_STORE_CONVERSATIONS],
    next_conversation: usize,
    n_messages: usize,
    sender_id: UserId,
    words: String,
    random: Xorshift,
}

impl MessageSource {
    fn new() -> Self {
        MessageSource {
            conversation_ids: (0..N_STORE_CONVERSATIONS)
                .map(|index| ConversationId::from_parts(EPOCH_MS, 0x5707e + index as u128))
                .collect(),
            heads: [0; N_STORE_CONVERSATIONS],
            next_conversation: 0,
            n_messages: 0,
            sender_id: user_id("writer"),
            words: random_words(8 * 1024, 0x5eed),
            random: Xorshift(0x0ddba11),
        }
    }

    /// Creates the conversations in `store`, as the server would before any append.
    async fn create_conversations(&self, store: &dyn MessageStore) {
        let created_at = Timestamp(EPOCH_MS);
        for &conversation_id in &self.conversation_ids {
            let conversation = Conversation::new(
                conversation_id,
                tenant_id(),
                ConversationKind::Group,
                None,
                self.sender_id.clone(),
                created_at,
            );
            let owner = Member {
                user_id: self.sender_id.clone(),
                role: Role::Owner,
                joined_at: created_at,
            };
            store
                .create_conversation(&conversation, &[owner])
                .await
                .expect("a fresh store has none of these conversations");
        }
    }

    fn next_entry(&mut self) -> AppendEntry {
        let conversation_index = self.next_conversation;
        self.next_conversation = (self.next_conversation + 1) % N_STORE_CONVERSATIONS;
        self.heads[conversation_index] += 1;
        self.n_messages += 1;
        let seq = self.heads[conversation_index];
        let offset = self.random.below((self.words.len() - TEXT_BYTES) as u64) as usize;
        AppendEntry {
            tenant_id: tenant_id(),
            entry: LogEntry::Message(Message {
                conversation_id: self.conversation_ids[conversation_index],
                seq: Seq(seq),
                message_id: MessageId::from_parts(EPOCH_MS, self.n_messages as u128),
                sender_id: self.sender_id.clone(),
                client_id: client_id(&format!("client-{conversation_index:02}-{seq:012}")),
                text: self.words[offset..offset + TEXT_BYTES].to_owned(),
                reply_to: None,
                thread_root: None,
                forwarded_from: None,
                ts: Timestamp(EPOCH_MS + self.n_messages as u64),
                state: MessageState::default(),
                attachments: Vec::new(),
            }),
        }
    }

    fn next_batch(&mut self, batch_size: usize) -> Vec<AppendEntry> {
        (0..batch_size).map(|_| self.next_entry()).collect()
    }
}

/// Appends one batch and returns how long the append alone took.
async fn timed_append(store: &dyn MessageStore, batch: Vec<AppendEntry>) -> Duration {
    let batch_size = batch.len();
    let start = Instant::now();
    let outcomes = store.append(batch).await.expect("the store appends");
    let elapsed = start.elapsed();
    assert!(
        outcomes.len() == batch_size
            && outcomes
                .iter()
                .all(|outcome| matches!(outcome, AppendOutcome::Stored { .. })),
        "fresh client ids are always stored"
    );
    elapsed
}

fn temporary_directory() -> TempDir {
    TempDir::new().expect("a temporary directory can be created")
}

fn store_appends(criterion: &mut Criterion, runtime: &Runtime) {
    let mut group = criterion.benchmark_group("store");
    for batch_size in [1_usize, 64, 1024] {
        group.throughput(Throughput::Elements(batch_size as u64));

        // One embedded store per batch size, reused across iterations. Building each batch is
        // outside the timed region; the append includes its hop to the blocking pool and the
        // fsync, as in the writer.
        let directory = temporary_directory();
        let embedded =
            EmbeddedMessageStore::open(directory.path()).expect("fjall opens a fresh directory");
        let mut source = MessageSource::new();
        runtime.block_on(source.create_conversations(&embedded));
        group.bench_with_input(
            BenchmarkId::new("embedded_append", batch_size),
            &batch_size,
            |bencher, &batch_size| {
                bencher.iter_custom(|n_iterations| {
                    runtime.block_on(async {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..n_iterations {
                            elapsed += timed_append(&embedded, source.next_batch(batch_size)).await;
                        }
                        elapsed
                    })
                });
            },
        );
        drop(embedded);
        drop(directory);

        let mut memory = MemoryMessageStore::new();
        let mut source = MessageSource::new();
        runtime.block_on(source.create_conversations(&memory));
        group.bench_with_input(
            BenchmarkId::new("memory_append", batch_size),
            &batch_size,
            |bencher, &batch_size| {
                bencher.iter_custom(|n_iterations| {
                    runtime.block_on(async {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..n_iterations {
                            if source.n_messages + batch_size > MEMORY_STORE_MAX_MESSAGES {
                                memory = MemoryMessageStore::new();
                                source = MessageSource::new();
                                source.create_conversations(&memory).await;
                            }
                            elapsed += timed_append(&memory, source.next_batch(batch_size)).await;
                        }
                        elapsed
                    })
                });
            },
        );
    }
    group.finish();
}

/// Fills `store` with `n_per_conversation` messages in each conversation, in 1024-message
/// batches.
async fn prefill(store: &dyn MessageStore, n_per_conversation: u64) {
    let mut source = MessageSource::new();
    source.create_conversations(store).await;
    let mut n_left = n_per_conversation as usize * N_STORE_CONVERSATIONS;
    while n_left > 0 {
        let batch_size = n_left.min(1024);
        timed_append(store, source.next_batch(batch_size)).await;
        n_left -= batch_size;
    }
}

fn store_reads(criterion: &mut Criterion, runtime: &Runtime) {
    let n_per_conversation = n_read_prefill_per_conversation();
    let conversation_ids = MessageSource::new().conversation_ids;
    let tenant_id = tenant_id();

    let directory = temporary_directory();
    let embedded =
        EmbeddedMessageStore::open(directory.path()).expect("fjall opens a fresh directory");
    runtime.block_on(prefill(&embedded, n_per_conversation));
    let memory = MemoryMessageStore::new();
    runtime.block_on(prefill(&memory, n_per_conversation));
    let stores: [(&str, &dyn MessageStore); 2] = [("embedded", &embedded), ("memory", &memory)];

    let mut group = criterion.benchmark_group("store");
    group.throughput(Throughput::Elements(READ_PAGE_LENGTH as u64));
    for (store_name, store) in stores {
        let mut random = Xorshift(0xfeed);
        group.bench_function(
            BenchmarkId::new("messages_after_50", store_name),
            |bencher| {
                bencher.iter_custom(|n_iterations| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..n_iterations {
                            let conversation_id = conversation_ids
                                [random.below(N_STORE_CONVERSATIONS as u64) as usize];
                            let after =
                                Seq(random.below(n_per_conversation - READ_PAGE_LENGTH as u64 + 1));
                            let page = store
                                .messages_after(
                                    &tenant_id,
                                    conversation_id,
                                    after,
                                    READ_PAGE_LENGTH,
                                )
                                .await
                                .expect("the store reads");
                            assert_eq!(page.len(), READ_PAGE_LENGTH, "the prefill covers the page");
                            black_box(page);
                        }
                        start.elapsed()
                    })
                });
            },
        );
    }
    group.finish();
}

fn store(criterion: &mut Criterion) {
    let runtime = multi_thread_runtime();
    store_appends(criterion, &runtime);
    store_reads(criterion, &runtime);
}

fn configured_criterion() -> Criterion {
    // Every group is bounded: the slowest iterations (a 1024-message durable commit, a send to
    // 1000 sessions) take milliseconds, so ten samples over a few seconds already give stable
    // figures; with `CI` set a full run takes well under a minute.
    bounded_criterion(Duration::from_secs(3))
}

criterion_group! {
    name = micro;
    config = configured_criterion();
    targets = codec, engine, fanout, store
}
criterion_main!(micro);
