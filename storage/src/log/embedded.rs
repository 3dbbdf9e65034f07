//! The embedded, durable [`MessageStore`](switchboard_engine::ports::MessageStore): fjall keyspaces in a local directory.
//!
//! Each table of [`crate::keys`] is one fjall keyspace, plus a small `meta` keyspace that records
//! the storage format version so that a build never misreads a directory written by another.
//! Writes go through one fjall write batch per call, committed with [`PersistMode::SyncAll`]:
//! fjall appends the batch to its journal, fsyncs it, and only then applies it to the memtables
//! and publishes it, so nothing is visible before it is durable.
//! Every read goes through a fjall [`Snapshot`](fjall::Snapshot), which sees only published batches, so the
//! entries of one batch (a message and its two index rows, or a whole append) become visible
//! together; plain keyspace reads would also see a batch that is halfway applied.
//!
//! Writes (`create_conversation`, `append`) are serialized by the writer mutex, which is held
//! across check, write and fsync so that the existence and client-id checks and the seq
//! assignment are atomic with the write. Because that work blocks on an fsync it runs in `tokio::task::spawn_blocking`.
//! Reads run inline on the async task: they are point lookups or scans bounded by a limit over
//! data that is almost always in memory, and they never wait for the writer mutex.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ConversationId, Seq, TenantId};

use crate::codec::{self, FORMAT_VERSION};
use crate::{Error, Result};

mod append;
mod event_log;
mod migrations;
mod port;
mod read;

use read::{EmbeddedReader, collect_conversation_ids, collect_messages, decode_entries};

const META: &str = "meta";
const CONVERSATIONS: &str = "conversations";
const MEMBERS: &str = "members";
const USER_CONVERSATIONS: &str = "user_conversations";
const MESSAGES: &str = "messages";
const CLIENT_IDS: &str = "author_client_ids";
/// The idempotency keys written before they were scoped by author; migrated at open.
const LEGACY_CLIENT_IDS: &str = "client_ids";
const MESSAGE_IDS: &str = "message_ids";
const THREADS: &str = "threads";
const READ_CURSORS: &str = "read_cursors";
const MODERATION: &str = "moderation";
const DIRECT_PAIRS: &str = "direct_pairs";
const MEMBER_SETTINGS: &str = "member_settings";
const HIDDEN: &str = "hidden";
/// The event log: one record per append batch, keyed by its position, holding where the
/// batch's entries are (see [`event_log`]). It starts empty in a directory written before the
/// log existed.
const EVENT_LOG: &str = "event_log_records";
/// The event log as it was first written, one record per entry; migrated at open.
const LEGACY_EVENT_LOG: &str = "event_log";

/// The key, in the meta keyspace, of the directory's format version.
const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// The open database and one handle per table.
struct EmbeddedTables {
    database: Database,
    meta: Keyspace,
    conversations: Keyspace,
    members: Keyspace,
    user_conversations: Keyspace,
    messages: Keyspace,
    client_ids: Keyspace,
    message_ids: Keyspace,
    threads: Keyspace,
    read_cursors: Keyspace,
    moderation: Keyspace,
    direct_pairs: Keyspace,
    member_settings: Keyspace,
    hidden: Keyspace,
    event_log: Keyspace,
}

/// State owned by whoever holds the writer mutex.
#[derive(Default)]
struct WriterState {
    /// The stored head of every conversation an append has touched since the store opened.
    /// Loaded lazily from the last messages key, advanced only after a successful commit, and
    /// forgotten for a batch's conversations when its commit fails (the disk state is then
    /// unknown). It is only a cache: emptying it is always safe.
    heads: HashMap<(TenantId, ConversationId), Seq>,
    /// The position of the event log's last record, loaded lazily from its last key like the
    /// heads, and forgotten when a commit fails.
    event_log_head: Option<u64>,
}

struct EmbeddedShared {
    tables: EmbeddedTables,
    /// Serializes every write. Held across check, write and fsync, and only ever taken inside
    /// `spawn_blocking`, never across an `.await`.
    writer: Mutex<WriterState>,
}

/// A durable [`MessageStore`](switchboard_engine::ports::MessageStore) backed by an embedded fjall database in one directory.
///
/// Cloning is cheap and every clone shares the same database. A directory can be open only
/// once at a time; the database is closed (and its journal synced) when the last clone is
/// dropped.
#[derive(Clone)]
pub struct EmbeddedMessageStore {
    shared: Arc<EmbeddedShared>,
}

pub(crate) fn unavailable(action: &str, error: fjall::Error) -> StoreError {
    StoreError::Unavailable(format!("{action}: {error}"))
}

/// Opens (or creates) the fjall database in `path`, for a store of its own.
///
/// # Errors
/// [`Error::Open`] if it cannot be opened (for example because it is already open).
pub(crate) fn open_database(path: &Path) -> Result<Database> {
    Database::builder(path)
        .open()
        .map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })
}

pub(crate) fn open_table(database: &Database, table: &'static str) -> Result<Keyspace> {
    database
        .keyspace(table, KeyspaceCreateOptions::default)
        .map_err(|source| Error::OpenTable { table, source })
}

impl EmbeddedMessageStore {
    /// Opens the store in `path`, creating the directory and its tables if they do not exist.
    ///
    /// This blocks on file I/O (journal recovery, possibly an fsync); call it at startup or
    /// from `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::Open`] if the database cannot be opened (for example because it is already
    /// open), [`Error::OpenTable`] if a table cannot be created, [`Error::UnsupportedFormat`] or
    /// [`Error::Corrupt`] if the directory was written in a format this build does not read.
    pub fn open(path: &Path) -> Result<Self> {
        let open_error = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let database = Database::builder(path).open().map_err(open_error)?;
        let tables = EmbeddedTables {
            meta: open_table(&database, META)?,
            conversations: open_table(&database, CONVERSATIONS)?,
            members: open_table(&database, MEMBERS)?,
            user_conversations: open_table(&database, USER_CONVERSATIONS)?,
            messages: open_table(&database, MESSAGES)?,
            client_ids: open_table(&database, CLIENT_IDS)?,
            message_ids: open_table(&database, MESSAGE_IDS)?,
            threads: open_table(&database, THREADS)?,
            read_cursors: open_table(&database, READ_CURSORS)?,
            moderation: open_table(&database, MODERATION)?,
            direct_pairs: open_table(&database, DIRECT_PAIRS)?,
            member_settings: open_table(&database, MEMBER_SETTINGS)?,
            hidden: open_table(&database, HIDDEN)?,
            event_log: open_table(&database, EVENT_LOG)?,
            database,
        };
        match tables.meta.get(FORMAT_VERSION_KEY).map_err(open_error)? {
            Some(marker) => match *marker {
                [FORMAT_VERSION] => {}
                [found] => {
                    return Err(Error::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                _ => {
                    return Err(Error::Corrupt {
                        reason: format!("format marker has {} bytes, expected 1", marker.len()),
                    });
                }
            },
            None => {
                let mut batch = tables
                    .database
                    .batch()
                    .durability(Some(PersistMode::SyncAll));
                batch.insert(&tables.meta, FORMAT_VERSION_KEY, [FORMAT_VERSION]);
                batch.commit().map_err(open_error)?;
            }
        }
        migrations::migrate(&tables, path).map_err(open_error)?;
        tracing::debug!(path = %path.display(), "opened the embedded store");
        Ok(Self {
            shared: Arc::new(EmbeddedShared {
                tables,
                writer: Mutex::new(WriterState::default()),
            }),
        })
    }

    /// Runs work that may block (on the writer mutex or an fsync) on tokio's blocking pool.
    ///
    /// If the caller stops waiting, the work still runs to completion; a write whose outcome
    /// the caller never saw is then found by its client id when the caller retries.
    async fn run_blocking<Output, Work>(&self, work: Work) -> Result<Output, StoreError>
    where
        Output: Send + 'static,
        Work: FnOnce(&EmbeddedShared) -> Result<Output, StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .map_err(|error| StoreError::Unavailable(format!("storage task failed: {error}")))?
    }

    fn reader(&self) -> EmbeddedReader<'_> {
        self.shared.tables.reader()
    }

    /// One record of a side table (cursors, settings), or its default when there is none.
    fn read_record_or_default<Record: serde::de::DeserializeOwned + Default>(
        &self,
        table: fn(&EmbeddedTables) -> &Keyspace,
        name: &'static str,
        key: Vec<u8>,
    ) -> Result<Record, StoreError> {
        let reader = self.reader();
        reader
            .snapshot
            .get(table(reader.tables), key)
            .map_err(|error| unavailable("could not read a side table", error))?
            .map_or(Ok(Record::default()), |value| {
                codec::decode::<Record>(name, &value)
            })
    }

    /// Writes one record of a side table on its own: on the blocking pool when it waits for
    /// an fsync, inline when it only reaches the journal's buffer.
    async fn write_record(
        &self,
        table: fn(&EmbeddedTables) -> &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
        mode: PersistMode,
    ) -> Result<(), StoreError> {
        let write = move |shared: &EmbeddedShared| {
            let tables = &shared.tables;
            let mut batch = tables.database.batch().durability(Some(mode));
            batch.insert(table(tables), key, value);
            batch
                .commit()
                .map_err(|error| unavailable("could not write a side table", error))
        };
        match mode {
            PersistMode::Buffer => write(&self.shared),
            _ => self.run_blocking(write).await,
        }
    }
}
