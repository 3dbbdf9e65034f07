//! Raw fjall 3 against raw redb 4 on Switchboard's storage workload, to choose the engine
//! behind the embedded message store.
//!
//! The workload is the one `EmbeddedMessageStore` puts on its engine: chat messages of about
//! 200 bytes under keys `[conversation 16][seq 8, big-endian]`, each with a client-id index
//! entry, appended across 16 conversations in batches of 1, 64 and 1024, every batch committed
//! durably (fjall: one write batch persisted with `PersistMode::SyncAll`; redb: one write
//! transaction with its default, immediate durability).
//! Reads are a point lookup in the client-id index and a range read of 50 messages.
//! Both engines are used directly, without Switchboard's key prefixes, checks or codec, so the
//! figures compare the engines and not our code; `docs/PERFORMANCE.md` records a run.
//! Run it with `cargo bench --bench store_engines`; with `CI` set every measurement is shorter.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode};
use redb::{ReadableDatabase, TableDefinition};
use tempfile::TempDir;

#[path = "shared/bench_support.rs"]
mod bench_support;
use bench_support::{Xorshift, bounded_criterion, is_ci};

const N_CONVERSATIONS: usize = 16;
const MESSAGE_VALUE_BYTES: usize = 200;
const APPEND_BATCH_SIZES: [usize; 3] = [1, 64, 1024];
const RANGE_READ_LENGTH: u64 = 50;

const REDB_MESSAGES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("messages");
const REDB_CLIENT_IDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("client_ids");

/// Messages per conversation stored before the read benchmarks run.
fn n_prefill_messages_per_conversation() -> u64 {
    if is_ci() { 200 } else { 2_000 }
}

fn conversation_bytes(conversation_index: usize) -> [u8; 16] {
    let mut bytes = [0x01_u8; 16];
    bytes[8..].copy_from_slice(&(conversation_index as u64).to_be_bytes());
    bytes
}

fn message_key(conversation_index: usize, seq: u64) -> [u8; 24] {
    let mut key = [0_u8; 24];
    key[..16].copy_from_slice(&conversation_bytes(conversation_index));
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn client_id_key(conversation_index: usize, seq: u64) -> Vec<u8> {
    let mut key = conversation_bytes(conversation_index).to_vec();
    key.extend_from_slice(format!("client-{conversation_index:02}-{seq:012}").as_bytes());
    key
}

/// One message as the engines see it: two keys and two values.
struct ChatMessage {
    message_key: [u8; 24],
    client_id_key: Vec<u8>,
    seq_bytes: [u8; 8],
    value: Vec<u8>,
}

/// Produces messages round-robin over the conversations, each with the next seq of its
/// conversation and a value cut from random bytes (so that compression does not flatter
/// either engine).
struct MessageSource {
    next_seqs: [u64; N_CONVERSATIONS],
    next_conversation: usize,
    random_bytes: Vec<u8>,
    random: Xorshift,
}

impl MessageSource {
    fn new() -> Self {
        let mut random = Xorshift(0x5eed_cafe_f00d_d00d);
        let random_bytes = (0..8192).map(|_| random.next() as u8).collect();
        Self {
            next_seqs: [1; N_CONVERSATIONS],
            next_conversation: 0,
            random_bytes,
            random,
        }
    }

    fn next_message(&mut self) -> ChatMessage {
        let conversation_index = self.next_conversation;
        self.next_conversation = (self.next_conversation + 1) % N_CONVERSATIONS;
        let seq = self.next_seqs[conversation_index];
        self.next_seqs[conversation_index] += 1;
        let offset =
            self.random
                .below((self.random_bytes.len() - MESSAGE_VALUE_BYTES) as u64) as usize;
        ChatMessage {
            message_key: message_key(conversation_index, seq),
            client_id_key: client_id_key(conversation_index, seq),
            seq_bytes: seq.to_be_bytes(),
            value: self.random_bytes[offset..offset + MESSAGE_VALUE_BYTES].to_vec(),
        }
    }

    fn next_batch(&mut self, batch_size: usize) -> Vec<ChatMessage> {
        (0..batch_size).map(|_| self.next_message()).collect()
    }
}

/// What the benchmark needs from an engine.
trait Engine {
    /// Writes the batch in one durable commit.
    fn append_durably(&self, batch: &[ChatMessage]);
    /// Looks up a client-id index entry; returns the stored seq bytes' length (0 if absent).
    fn client_id_lookup(&self, key: &[u8]) -> usize;
    /// Reads `RANGE_READ_LENGTH` messages from `first_key` on; returns the bytes read.
    fn range_read(&self, first_key: &[u8; 24], last_key: &[u8; 24]) -> usize;
    /// Makes the read benchmarks read from the engine's on-disk structures.
    fn settle(&self);
}

struct FjallEngine {
    database: fjall::Database,
    messages: Keyspace,
    client_ids: Keyspace,
}

impl FjallEngine {
    fn open(directory: &Path) -> Self {
        let database = fjall::Database::builder(directory)
            .open()
            .expect("fjall opens a fresh directory");
        let messages = database
            .keyspace("messages", KeyspaceCreateOptions::default)
            .expect("fjall creates the messages keyspace");
        let client_ids = database
            .keyspace("client_ids", KeyspaceCreateOptions::default)
            .expect("fjall creates the client_ids keyspace");
        Self {
            database,
            messages,
            client_ids,
        }
    }
}

impl Engine for FjallEngine {
    fn append_durably(&self, batch: &[ChatMessage]) {
        let mut write_batch = self.database.batch().durability(Some(PersistMode::SyncAll));
        for message in batch {
            write_batch.insert(
                &self.messages,
                message.message_key.as_slice(),
                message.value.as_slice(),
            );
            write_batch.insert(
                &self.client_ids,
                message.client_id_key.as_slice(),
                message.seq_bytes.as_slice(),
            );
        }
        write_batch.commit().expect("fjall commits the batch");
    }

    fn client_id_lookup(&self, key: &[u8]) -> usize {
        self.client_ids
            .get(key)
            .expect("fjall reads the index")
            .map_or(0, |value| value.len())
    }

    fn range_read(&self, first_key: &[u8; 24], last_key: &[u8; 24]) -> usize {
        self.messages
            .range(first_key.as_slice()..=last_key.as_slice())
            .map(|guard| guard.value().expect("fjall reads a message").len())
            .sum()
    }

    fn settle(&self) {
        // Move the prefill from the memtables into on-disk tables, as after a restart or a
        // long run; reads then go through the block cache like they would in production.
        for keyspace in [&self.messages, &self.client_ids] {
            keyspace
                .rotate_memtable_and_wait()
                .expect("fjall flushes the memtable");
        }
    }
}

struct RedbEngine {
    database: redb::Database,
}

impl RedbEngine {
    fn open(directory: &Path) -> Self {
        let database = redb::Database::create(directory.join("store.redb"))
            .expect("redb creates a fresh file");
        let transaction = database.begin_write().expect("redb begins a write");
        transaction
            .open_table(REDB_MESSAGES)
            .expect("redb creates the messages table");
        transaction
            .open_table(REDB_CLIENT_IDS)
            .expect("redb creates the client_ids table");
        transaction.commit().expect("redb commits the tables");
        Self { database }
    }
}

impl Engine for RedbEngine {
    fn append_durably(&self, batch: &[ChatMessage]) {
        // The default durability of a redb write transaction is immediate: commit fsyncs.
        let transaction = self.database.begin_write().expect("redb begins a write");
        {
            let mut messages = transaction
                .open_table(REDB_MESSAGES)
                .expect("redb opens the messages table");
            let mut client_ids = transaction
                .open_table(REDB_CLIENT_IDS)
                .expect("redb opens the client_ids table");
            for message in batch {
                messages
                    .insert(message.message_key.as_slice(), message.value.as_slice())
                    .expect("redb inserts a message");
                client_ids
                    .insert(
                        message.client_id_key.as_slice(),
                        message.seq_bytes.as_slice(),
                    )
                    .expect("redb inserts an index entry");
            }
        }
        transaction.commit().expect("redb commits the batch");
    }

    fn client_id_lookup(&self, key: &[u8]) -> usize {
        let transaction = self.database.begin_read().expect("redb begins a read");
        let client_ids = transaction
            .open_table(REDB_CLIENT_IDS)
            .expect("redb opens the client_ids table");
        client_ids
            .get(key)
            .expect("redb reads the index")
            .map_or(0, |value| value.value().len())
    }

    fn range_read(&self, first_key: &[u8; 24], last_key: &[u8; 24]) -> usize {
        let transaction = self.database.begin_read().expect("redb begins a read");
        let messages = transaction
            .open_table(REDB_MESSAGES)
            .expect("redb opens the messages table");
        messages
            .range(first_key.as_slice()..=last_key.as_slice())
            .expect("redb starts a range")
            .map(|entry| {
                let (_key, value) = entry.expect("redb reads a message");
                value.value().len()
            })
            .sum()
    }

    fn settle(&self) {
        // Every commit already went to the file; reads use redb's page cache as they would in
        // production.
    }
}

type EngineFactory = fn(&Path) -> Box<dyn Engine>;

fn engines() -> [(&'static str, EngineFactory); 2] {
    [
        ("fjall", |directory| Box::new(FjallEngine::open(directory))),
        ("redb", |directory| Box::new(RedbEngine::open(directory))),
    ]
}

fn temporary_directory() -> TempDir {
    TempDir::new().expect("a temporary directory can be created")
}

fn durable_appends(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("durable_append");
    for batch_size in APPEND_BATCH_SIZES {
        group.throughput(Throughput::Elements(batch_size as u64));
        for (engine_name, open_engine) in engines() {
            // A fresh store per case, so one case's data does not slow the next.
            let directory = temporary_directory();
            let engine = open_engine(directory.path());
            let mut source = MessageSource::new();
            group.bench_with_input(
                BenchmarkId::new(engine_name, batch_size),
                &batch_size,
                |bencher, &batch_size| {
                    bencher.iter_batched(
                        || source.next_batch(batch_size),
                        |batch| engine.append_durably(&batch),
                        BatchSize::PerIteration,
                    );
                },
            );
        }
    }
    group.finish();
}

fn reads(criterion: &mut Criterion) {
    let n_per_conversation = n_prefill_messages_per_conversation();
    let mut group = criterion.benchmark_group("read");
    for (engine_name, open_engine) in engines() {
        let directory = temporary_directory();
        let engine = open_engine(directory.path());
        let mut source = MessageSource::new();
        let n_messages = n_per_conversation as usize * N_CONVERSATIONS;
        for _ in 0..n_messages.div_ceil(1024) {
            engine.append_durably(&source.next_batch(1024));
        }
        engine.settle();

        let mut random = Xorshift(0x0dd_ba11);
        group.throughput(Throughput::Elements(1));
        group.bench_function(
            BenchmarkId::new("client_id_lookup", engine_name),
            |bencher| {
                bencher.iter(|| {
                    let conversation_index = random.below(N_CONVERSATIONS as u64) as usize;
                    let seq = 1 + random.below(n_per_conversation);
                    let found = engine.client_id_lookup(&client_id_key(conversation_index, seq));
                    assert_eq!(found, 8, "every prefilled client id is indexed");
                    black_box(found)
                });
            },
        );

        group.throughput(Throughput::Elements(RANGE_READ_LENGTH));
        group.bench_function(
            BenchmarkId::new("range_read_50_messages", engine_name),
            |bencher| {
                bencher.iter(|| {
                    let conversation_index = random.below(N_CONVERSATIONS as u64) as usize;
                    let first_seq = 1 + random.below(n_per_conversation - RANGE_READ_LENGTH + 1);
                    let n_bytes = engine.range_read(
                        &message_key(conversation_index, first_seq),
                        &message_key(conversation_index, first_seq + RANGE_READ_LENGTH - 1),
                    );
                    assert_eq!(n_bytes, RANGE_READ_LENGTH as usize * MESSAGE_VALUE_BYTES);
                    black_box(n_bytes)
                });
            },
        );
    }
    group.finish();
}

fn configured_criterion() -> Criterion {
    // Durable commits cost milliseconds each, so small samples already give stable figures;
    // keep the whole run to a few minutes on two cores, and to well under one with `CI` set.
    bounded_criterion(Duration::from_secs(4))
}

criterion_group! {
    name = store_engines;
    config = configured_criterion();
    targets = durable_appends, reads
}
criterion_main!(store_engines);
