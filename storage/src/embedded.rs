//! The embedded, durable [`MessageStore`]: fjall keyspaces in a local directory.
//!
//! Each table of [`crate::keys`] is one fjall keyspace, plus a small `meta` keyspace that records
//! the storage format version so that a build never misreads a directory written by another.
//! Writes go through one fjall write batch per call, committed with [`PersistMode::SyncAll`]:
//! fjall appends the batch to its journal, fsyncs it, and only then applies it to the memtables
//! and publishes it, so nothing is visible before it is durable.
//! Every read goes through a fjall [`Snapshot`], which sees only published batches, so the
//! entries of one batch (a message and its two index rows, or a whole append) become visible
//! together; plain keyspace reads would also see a batch that is halfway applied.
//!
//! Writes (`create_conversation`, `append`) are serialized by the writer mutex, which is held
//! across check, write and fsync so that the existence and client-id checks and the seq
//! assignment are atomic with the write. Because that work blocks on an fsync it runs in `tokio::task::spawn_blocking`.
//! Reads run inline on the async task: they are point lookups or scans bounded by a limit over
//! data that is almost always in memory, and they never wait for the writer mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use fjall::{Database, Iter, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};

use crate::codec::{self, FORMAT_VERSION};
use crate::keys::{self, ULID_BYTES};
use crate::staging::{
    LogView, StageError, counts_as_unread, direct_pair, ordered, repeat_outcome, stage_entry,
};
use crate::{Error, Result};

const META: &str = "meta";
const CONVERSATIONS: &str = "conversations";
const MEMBERS: &str = "members";
const USER_CONVERSATIONS: &str = "user_conversations";
const MESSAGES: &str = "messages";
const CLIENT_IDS: &str = "author_client_ids";
/// The idempotency keys written before they were scoped by author; migrated at open.
const LEGACY_CLIENT_IDS: &str = "client_ids";
/// How many legacy idempotency keys one migration batch moves.
const LEGACY_CLIENT_IDS_PER_BATCH: usize = 10_000;
const MESSAGE_IDS: &str = "message_ids";
const THREADS: &str = "threads";
const READ_CURSORS: &str = "read_cursors";
const MODERATION: &str = "moderation";
const DIRECT_PAIRS: &str = "direct_pairs";
const MEMBER_SETTINGS: &str = "member_settings";
const HIDDEN: &str = "hidden";

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
}

/// State owned by whoever holds the writer mutex.
#[derive(Default)]
struct WriterState {
    /// The stored head of every conversation an append has touched since the store opened.
    /// Loaded lazily from the last messages key, advanced only after a successful commit, and
    /// forgotten for a batch's conversations when its commit fails (the disk state is then
    /// unknown). It is only a cache: emptying it is always safe.
    heads: HashMap<(TenantId, ConversationId), Seq>,
}

/// What one append batch has staged for one conversation but not yet committed.
struct PendingConversation {
    /// The head after the batch's Stored entries for this conversation.
    head: Seq,
    /// The idempotency keys (author, client id) those entries claimed, with their seqs.
    client_ids: HashMap<(UserId, ClientId), Seq>,
    /// Every log record the batch writes, new or rewritten, by seq: written to the batch once
    /// each at the end (a batch must not hold two writes of one key).
    entries: BTreeMap<Seq, LogEntry>,
    /// The seqs of the messages the batch adds.
    message_seqs: HashMap<MessageId, Seq>,
    /// When the batch changes the conversation itself: the conversation as stored before the
    /// batch, and as the batch leaves it.
    conversation: Option<(ConversationSnapshot, ConversationSnapshot)>,
}

/// One conversation's log as a batch being staged sees it: its own staged records first, then
/// the snapshot.
struct StagingView<'view> {
    reader: &'view EmbeddedReader<'view>,
    tenant_id: &'view TenantId,
    conversation_id: ConversationId,
    pending: Option<&'view PendingConversation>,
}

impl LogView for StagingView<'_> {
    fn entry_at(&self, seq: Seq) -> Result<Option<LogEntry>, StoreError> {
        if let Some(entry) = self.pending.and_then(|pending| pending.entries.get(&seq)) {
            return Ok(Some(entry.clone()));
        }
        self.reader
            .entry_at(self.tenant_id, self.conversation_id, seq)
    }

    fn message_seq(&self, message_id: MessageId) -> Result<Option<Seq>, StoreError> {
        if let Some(seq) = self
            .pending
            .and_then(|pending| pending.message_seqs.get(&message_id))
        {
            return Ok(Some(*seq));
        }
        self.reader
            .message_seq(self.tenant_id, self.conversation_id, message_id)
    }

    fn conversation(&self) -> Result<Option<ConversationSnapshot>, StoreError> {
        if let Some((_, current)) = self
            .pending
            .and_then(|pending| pending.conversation.as_ref())
        {
            return Ok(Some(current.clone()));
        }
        self.reader
            .snapshot_of(self.tenant_id, self.conversation_id)
    }
}

struct EmbeddedShared {
    tables: EmbeddedTables,
    /// Serializes every write. Held across check, write and fsync, and only ever taken inside
    /// `spawn_blocking`, never across an `.await`.
    writer: Mutex<WriterState>,
}

/// A durable [`MessageStore`] backed by an embedded fjall database in one directory.
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
        let n_migrated = migrate_legacy_client_ids(&tables).map_err(open_error)?;
        if n_migrated > 0 {
            tracing::info!(
                path = %path.display(),
                n_migrated,
                "scoped the idempotency keys written by an earlier version by author"
            );
        }
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

impl EmbeddedShared {
    fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            // A writer panicked, possibly between its commit and its cache update, so the head
            // cache may disagree with the disk. It is only a cache: empty it and reload lazily.
            let mut writer = poisoned.into_inner();
            writer.heads.clear();
            self.writer.clear_poison();
            writer
        })
    }

    fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError> {
        let tables = &self.tables;
        let _writer = self.lock_writer();
        // Taken after the writer lock, so it sees every committed write.
        let reader = tables.reader();
        let tenant_id = &conversation.tenant_id;
        let conversation_id = conversation.conversation_id;
        let conversation_key = keys::conversation_key(tenant_id, conversation_id);
        let exists = reader
            .snapshot
            .contains_key(&tables.conversations, &conversation_key)
            .map_err(|error| unavailable("could not read conversations", error))?;
        if exists {
            return Err(StoreError::AlreadyExists);
        }
        let mut batch = tables
            .database
            .batch()
            .durability(Some(PersistMode::SyncAll));
        if let Some((first, second)) = direct_pair(conversation, members) {
            let pair_key = keys::direct_pair_key(tenant_id, &first, &second);
            let taken = reader
                .snapshot
                .contains_key(&tables.direct_pairs, &pair_key)
                .map_err(|error| unavailable("could not read direct_pairs", error))?;
            if taken {
                return Err(StoreError::AlreadyExists);
            }
            batch.insert(
                &tables.direct_pairs,
                pair_key,
                codec::encode(&conversation_id)?,
            );
        }
        batch.insert(
            &tables.conversations,
            conversation_key,
            codec::encode(conversation)?,
        );
        for member in members {
            batch.insert(
                &tables.members,
                keys::member_key(tenant_id, conversation_id, &member.user_id),
                codec::encode(member)?,
            );
            batch.insert(
                &tables.user_conversations,
                keys::user_conversation_key(tenant_id, &member.user_id, conversation_id),
                [],
            );
        }
        batch
            .commit()
            .map_err(|error| unavailable("could not commit a new conversation", error))
    }

    fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        let tables = &self.tables;
        let mut writer = self.lock_writer();
        // Taken after the writer lock, so it sees every committed write.
        let reader = tables.reader();
        let mut batch = tables
            .database
            .batch()
            .durability(Some(PersistMode::SyncAll));
        let mut outcomes = Vec::with_capacity(entries.len());
        // What this batch has staged so far, per conversation. Checks consult it before the
        // durable state, so entries see the Stored entries before them.
        let mut pending: HashMap<(TenantId, ConversationId), PendingConversation> = HashMap::new();

        for AppendEntry {
            tenant_id,
            mut entry,
        } in entries
        {
            let conversation_id = entry.conversation_id();
            let pending_key = (tenant_id.clone(), conversation_id);
            let pending_conversation = pending.get(&pending_key);
            let client_key = (entry.author().clone(), entry.client_id().clone());
            if let Some(stored) = pending_conversation.and_then(|staged| {
                staged
                    .client_ids
                    .get(&client_key)
                    .and_then(|seq| staged.entries.get(seq))
            }) {
                outcomes.push(repeat_outcome(stored, &entry));
                continue;
            }
            let client_id_key = keys::client_id_key(
                &tenant_id,
                conversation_id,
                entry.author(),
                entry.client_id(),
            );
            if let Some(stored) = reader.entry_from_index(
                &tables.client_ids,
                CLIENT_IDS,
                &tenant_id,
                conversation_id,
                &client_id_key,
            )? {
                outcomes.push(repeat_outcome(&stored, &entry));
                continue;
            }

            let head = match pending_conversation {
                Some(staged) => staged.head,
                None => match writer.heads.get(&pending_key) {
                    Some(head) => *head,
                    None => {
                        let head = reader.load_head(&tenant_id, conversation_id)?;
                        writer.heads.insert(pending_key.clone(), head);
                        head
                    }
                },
            };
            // The store, holding the writer lock, is the one place that assigns seqs: the next
            // after the head, so the log can have no gap and no reuse whatever happens upstream.
            let seq = head.next();
            entry.set_seq(seq);
            let view = StagingView {
                reader: &reader,
                tenant_id: &tenant_id,
                conversation_id,
                pending: pending_conversation,
            };
            let staged_entry = match stage_entry(&view, &mut entry) {
                Ok(staged_entry) => staged_entry,
                Err(StageError::Refused(error)) => {
                    outcomes.push(AppendOutcome::Refused { error });
                    continue;
                }
                Err(StageError::Store(error)) => return Err(error),
            };

            batch.insert(&tables.client_ids, client_id_key, codec::encode(&seq)?);
            let staged = pending
                .entry(pending_key)
                .or_insert_with(|| PendingConversation {
                    head,
                    client_ids: HashMap::new(),
                    entries: BTreeMap::new(),
                    message_seqs: HashMap::new(),
                    conversation: None,
                });
            if let Some(changed) = staged_entry.conversation {
                let original = match staged.conversation.take() {
                    Some((original, _)) => original,
                    None => reader
                        .snapshot_of(&tenant_id, conversation_id)?
                        .ok_or_else(|| {
                            StoreError::Corrupt("a changed conversation vanished".to_owned())
                        })?,
                };
                staged.conversation = Some((original, changed));
            }
            if let LogEntry::Event(event) = &entry
                && matches!(event.body, ConversationEventBody::Moderated { .. })
            {
                batch.insert(
                    &tables.moderation,
                    keys::message_key(&tenant_id, conversation_id, seq),
                    [],
                );
            }
            if let LogEntry::Message(message) = &entry {
                batch.insert(
                    &tables.message_ids,
                    keys::message_id_key(&tenant_id, conversation_id, message.message_id),
                    codec::encode(&seq)?,
                );
                staged.message_seqs.insert(message.message_id, seq);
                if let Some(root) = message.thread_root {
                    batch.insert(
                        &tables.threads,
                        keys::thread_key(&tenant_id, conversation_id, root, seq),
                        [],
                    );
                }
            }
            staged.head = seq;
            staged.client_ids.insert(client_key, seq);
            let completed = staged_entry.completed.then(|| Box::new(entry.clone()));
            staged.entries.insert(seq, entry);
            for rewrite in &staged_entry.rewrites {
                staged.entries.insert(rewrite.seq(), rewrite.clone());
            }
            outcomes.push(AppendOutcome::Stored {
                seq,
                completed,
                rewritten: staged_entry.rewrites,
            });
        }

        for ((tenant_id, conversation_id), staged) in &pending {
            for (seq, entry) in &staged.entries {
                batch.insert(
                    &tables.messages,
                    keys::message_key(tenant_id, *conversation_id, *seq),
                    codec::encode(entry)?,
                );
            }
            if let Some((original, changed)) = &staged.conversation {
                write_conversation_change(tables, &mut batch, original, changed)?;
            }
        }
        if batch.is_empty() {
            return Ok(outcomes);
        }
        match batch.commit() {
            Ok(()) => {
                writer.heads.extend(
                    pending
                        .into_iter()
                        .map(|(pending_key, staged)| (pending_key, staged.head)),
                );
                Ok(outcomes)
            }
            Err(error) => {
                // The journal may or may not hold the batch now, so the cached heads of its
                // conversations can no longer be trusted; they reload from disk on next use.
                // Retrying senders stay safe either way: their client ids make a retry
                // idempotent.
                for pending_key in pending.keys() {
                    writer.heads.remove(pending_key);
                }
                tracing::error!(%error, n_conversations = pending.len(), "append commit failed");
                Err(unavailable("could not commit an append batch", error))
            }
        }
    }

    fn ping(&self) -> Result<(), StoreError> {
        // A buffer-only persist is cheap, and it fails once fjall has poisoned the database
        // after a failed fsync, which no read would notice.
        self.tables
            .database
            .persist(PersistMode::Buffer)
            .map_err(|error| unavailable("the database refuses writes", error))?;
        match self
            .tables
            .reader()
            .snapshot
            .get(&self.tables.meta, FORMAT_VERSION_KEY)
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(StoreError::Corrupt(
                "the format marker is missing".to_owned(),
            )),
            Err(error) => Err(unavailable("could not read the format marker", error)),
        }
    }
}

impl EmbeddedTables {
    fn reader(&self) -> EmbeddedReader<'_> {
        EmbeddedReader {
            tables: self,
            snapshot: self.database.snapshot(),
        }
    }
}

/// Reads from one consistent snapshot of the tables: only published (and so durable) batches,
/// each either entirely or not at all.
struct EmbeddedReader<'tables> {
    tables: &'tables EmbeddedTables,
    snapshot: Snapshot,
}

impl EmbeddedReader<'_> {
    /// A conversation and its members, in user id order.
    fn snapshot_of(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError> {
        let tables = self.tables;
        let conversation_key = keys::conversation_key(tenant_id, conversation_id);
        let Some(value) = self
            .snapshot
            .get(&tables.conversations, &conversation_key)
            .map_err(|error| unavailable("could not read conversations", error))?
        else {
            return Ok(None);
        };
        let conversation = codec::decode::<Conversation>(CONVERSATIONS, &value)?;
        let mut members = self
            .snapshot
            .prefix(&tables.members, &conversation_key)
            .map(|guard| {
                let value = guard
                    .value()
                    .map_err(|error| unavailable("could not read members", error))?;
                codec::decode::<Member>(MEMBERS, &value)
            })
            .collect::<Result<Vec<Member>, StoreError>>()?;
        // Keys order user ids by length first (they are length-prefixed), so sort by id here.
        members.sort_by(|left, right| left.user_id.cmp(&right.user_id));
        Ok(Some(ConversationSnapshot {
            conversation,
            members,
        }))
    }

    /// The highest stored seq of a conversation, from its last messages key.
    fn load_head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError> {
        let Some(last) = self
            .snapshot
            .prefix(
                &self.tables.messages,
                keys::conversation_key(tenant_id, conversation_id),
            )
            .next_back()
        else {
            return Ok(Seq::ZERO);
        };
        let key = last
            .key()
            .map_err(|error| unavailable("could not read messages", error))?;
        keys::seq_from_message_key(&key)
            .ok_or_else(|| StoreError::Corrupt("a messages key is too short".to_owned()))
    }

    fn entry_at(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        seq: Seq,
    ) -> Result<Option<LogEntry>, StoreError> {
        self.snapshot
            .get(
                &self.tables.messages,
                keys::message_key(tenant_id, conversation_id, seq),
            )
            .map_err(|error| unavailable("could not read messages", error))?
            .map(|value| codec::decode::<LogEntry>(MESSAGES, &value))
            .transpose()
    }

    fn message_seq(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Seq>, StoreError> {
        self.snapshot
            .get(
                &self.tables.message_ids,
                keys::message_id_key(tenant_id, conversation_id, message_id),
            )
            .map_err(|error| unavailable("could not read message_ids", error))?
            .map(|value| codec::decode::<Seq>(MESSAGE_IDS, &value))
            .transpose()
    }

    /// The message at `seq`; an index that points at anything else means the store is damaged.
    fn message_at(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        seq: Seq,
        table: &'static str,
    ) -> Result<Message, StoreError> {
        match self.entry_at(tenant_id, conversation_id, seq)? {
            Some(LogEntry::Message(message)) => Ok(message),
            _ => Err(StoreError::Corrupt(format!(
                "{table} points at seq {seq}, which holds no message"
            ))),
        }
    }

    /// Resolves a key of a seq index (author_client_ids) to the entry it names. An index entry
    /// whose entry is missing means the store is damaged.
    fn entry_from_index(
        &self,
        index: &Keyspace,
        table: &'static str,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        key: &[u8],
    ) -> Result<Option<LogEntry>, StoreError> {
        let Some(value) = self
            .snapshot
            .get(index, key)
            .map_err(|error| unavailable("could not read an index", error))?
        else {
            return Ok(None);
        };
        let seq = codec::decode::<Seq>(table, &value)?;
        match self.entry_at(tenant_id, conversation_id, seq)? {
            Some(entry) => Ok(Some(entry)),
            None => Err(StoreError::Corrupt(format!(
                "{table} points at missing entry {seq}"
            ))),
        }
    }
}

/// Moves the idempotency keys an earlier version wrote, before keys were scoped by author
/// (the legacy `client_ids` table, `[tenant][conversation][client id]`), into
/// `author_client_ids`, reading each entry's author from the log. Each batch inserts the new keys
/// and removes the old ones in one fsynced commit, so an interrupted migration resumes where it
/// stopped; the emptied legacy table is then deleted. Keys of the legacy table were unique per
/// conversation, so each names exactly one entry and moves to exactly one author's key.
/// Returns how many keys moved.
fn migrate_legacy_client_ids(tables: &EmbeddedTables) -> Result<usize, fjall::Error> {
    let database = &tables.database;
    if !database.keyspace_exists(LEGACY_CLIENT_IDS) {
        return Ok(0);
    }
    let legacy = database.keyspace(LEGACY_CLIENT_IDS, KeyspaceCreateOptions::default)?;
    let mut n_migrated = 0;
    loop {
        let mut moves = Vec::with_capacity(LEGACY_CLIENT_IDS_PER_BATCH);
        for guard in legacy.iter().take(LEGACY_CLIENT_IDS_PER_BATCH) {
            let (key, value) = guard.into_inner()?;
            moves.push((key, value));
        }
        if moves.is_empty() {
            break;
        }
        let mut batch = database.batch().durability(Some(PersistMode::SyncAll));
        for (legacy_key, value) in &moves {
            batch.remove(&legacy, legacy_key.clone());
            match author_client_id_key(tables, legacy_key, value) {
                Some(key) => batch.insert(&tables.client_ids, key, value.clone()),
                None => tracing::warn!(
                    key = ?legacy_key.as_ref(),
                    "dropped a legacy idempotency key whose entry is missing or unreadable"
                ),
            }
        }
        batch.commit()?;
        n_migrated += moves.len();
    }
    database.delete_keyspace(legacy)?;
    Ok(n_migrated)
}

/// The `author_client_ids` key of a legacy `client_ids` key and its value (the entry's seq):
/// the conversation prefix, then the author read from the entry, then the length-prefixed
/// client id the legacy key ends with. `None` if the key or its entry cannot be read.
fn author_client_id_key(
    tables: &EmbeddedTables,
    legacy_key: &[u8],
    value: &[u8],
) -> Option<Vec<u8>> {
    let prefix = keys::conversation_key_prefix(legacy_key)?;
    let client_id = &legacy_key[prefix.len()..];
    let seq = codec::decode::<Seq>(LEGACY_CLIENT_IDS, value).ok()?;
    let mut message_key = prefix.to_vec();
    message_key.extend_from_slice(&seq.get().to_be_bytes());
    let stored = tables.messages.get(&message_key).ok()??;
    let entry = codec::decode::<LogEntry>(MESSAGES, &stored).ok()?;
    let author = entry.author().as_str().as_bytes();
    let mut key = Vec::with_capacity(prefix.len() + 1 + author.len() + client_id.len());
    key.extend_from_slice(prefix);
    key.push(u8::try_from(author.len()).ok()?);
    key.extend_from_slice(author);
    key.extend_from_slice(client_id);
    Some(key)
}

/// Writes a conversation record and the difference between two member lists (and the
/// user_conversations index with them) into a batch.
fn write_conversation_change(
    tables: &EmbeddedTables,
    batch: &mut fjall::OwnedWriteBatch,
    original: &ConversationSnapshot,
    changed: &ConversationSnapshot,
) -> Result<(), StoreError> {
    let conversation = &changed.conversation;
    let tenant_id = &conversation.tenant_id;
    let conversation_id = conversation.conversation_id;
    batch.insert(
        &tables.conversations,
        keys::conversation_key(tenant_id, conversation_id),
        codec::encode(conversation)?,
    );
    for gone in original
        .members
        .iter()
        .filter(|member| changed.member(&member.user_id).is_none())
    {
        batch.remove(
            &tables.members,
            keys::member_key(tenant_id, conversation_id, &gone.user_id),
        );
        batch.remove(
            &tables.user_conversations,
            keys::user_conversation_key(tenant_id, &gone.user_id, conversation_id),
        );
    }
    for member in &changed.members {
        if original.member(&member.user_id) == Some(member) {
            continue;
        }
        batch.insert(
            &tables.members,
            keys::member_key(tenant_id, conversation_id, &member.user_id),
            codec::encode(member)?,
        );
        batch.insert(
            &tables.user_conversations,
            keys::user_conversation_key(tenant_id, &member.user_id, conversation_id),
            [],
        );
    }
    Ok(())
}

/// Decodes log entries from a scan, in the scan's direction.
fn decode_entries(
    scan: impl Iterator<Item = fjall::Guard>,
) -> impl Iterator<Item = Result<LogEntry, StoreError>> {
    scan.map(|guard| {
        let value = guard
            .value()
            .map_err(|error| unavailable("could not read messages", error))?;
        codec::decode::<LogEntry>(MESSAGES, &value)
    })
}

/// Decodes at most `limit` messages from a scan of the log, skipping events.
fn collect_messages(
    scan: impl Iterator<Item = fjall::Guard>,
    limit: usize,
) -> Result<Vec<Message>, StoreError> {
    decode_entries(scan)
        .filter_map(|entry| match entry {
            Ok(LogEntry::Message(message)) => Some(Ok(message)),
            Ok(LogEntry::Event(_)) => None,
            Err(error) => Some(Err(error)),
        })
        .take(limit)
        .collect()
}

/// Reads the conversation ids at the end of at most `limit` user_conversations keys.
fn collect_conversation_ids(scan: Iter, limit: usize) -> Result<Vec<ConversationId>, StoreError> {
    scan.take(limit)
        .map(|guard| {
            let key = guard
                .key()
                .map_err(|error| unavailable("could not read user_conversations", error))?;
            keys::conversation_id_from_user_conversation_key(&key).ok_or_else(|| {
                StoreError::Corrupt("a user_conversations key is too short".to_owned())
            })
        })
        .collect()
}

// Every read below runs inline on the calling task: each is a point lookup or a scan bounded by
// `limit`, served from fjall's memtables and block cache, and never waits for the writer mutex.
// Only the writes, which fsync, go to the blocking pool.
#[async_trait]
impl MessageStore for EmbeddedMessageStore {
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError> {
        let conversation = conversation.clone();
        let members = members.to_vec();
        self.run_blocking(move |shared| shared.create_conversation(&conversation, &members))
            .await
    }

    async fn direct_conversation(
        &self,
        tenant_id: &TenantId,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationId>, StoreError> {
        let (first, second) = ordered(first, second);
        let reader = self.reader();
        reader
            .snapshot
            .get(
                &reader.tables.direct_pairs,
                keys::direct_pair_key(tenant_id, first, second),
            )
            .map_err(|error| unavailable("could not read direct_pairs", error))?
            .map(|value| codec::decode::<ConversationId>(DIRECT_PAIRS, &value))
            .transpose()
    }

    async fn load_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError> {
        self.reader().snapshot_of(tenant_id, conversation_id)
    }

    async fn conversations_of_user(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let reader = self.reader();
        let user_conversations = &reader.tables.user_conversations;
        let user_prefix = keys::user_conversations_prefix(tenant_id, user_id);
        let scan = match after {
            None => reader.snapshot.prefix(user_conversations, user_prefix),
            Some(after) => {
                let mut last_possible_key = user_prefix;
                last_possible_key.extend_from_slice(&[u8::MAX; ULID_BYTES]);
                reader.snapshot.range::<Vec<u8>, _>(
                    user_conversations,
                    (
                        Bound::Excluded(keys::user_conversation_key(tenant_id, user_id, after)),
                        Bound::Included(last_possible_key),
                    ),
                )
            }
        };
        collect_conversation_ids(scan, limit)
    }

    async fn head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError> {
        // Not from the writer's head cache: that would wait behind an fsync in progress. The
        // last key is one short reverse seek and reflects exactly what is durable.
        self.reader().load_head(tenant_id, conversation_id)
    }

    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.run_blocking(move |shared| shared.append(entries))
            .await
    }

    async fn entry_by_client_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        author: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<LogEntry>, StoreError> {
        let reader = self.reader();
        reader.entry_from_index(
            &reader.tables.client_ids,
            CLIENT_IDS,
            tenant_id,
            conversation_id,
            &keys::client_id_key(tenant_id, conversation_id, author, client_id),
        )
    }

    async fn message_by_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let reader = self.reader();
        let Some(seq) = reader.message_seq(tenant_id, conversation_id, message_id)? else {
            return Ok(None);
        };
        reader
            .message_at(tenant_id, conversation_id, seq, MESSAGE_IDS)
            .map(Some)
    }

    async fn entries_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let Some(first) = after.get().checked_add(1) else {
            return Ok(Vec::new());
        };
        let reader = self.reader();
        let scan = reader.snapshot.range(
            &reader.tables.messages,
            keys::message_key(tenant_id, conversation_id, Seq(first))
                ..=keys::message_key(tenant_id, conversation_id, Seq(u64::MAX)),
        );
        decode_entries(scan.take(limit)).collect()
    }

    async fn thread_replies(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let Some(first) = after.get().checked_add(1) else {
            return Ok(Vec::new());
        };
        let reader = self.reader();
        let scan = reader.snapshot.range(
            &reader.tables.threads,
            keys::thread_key(tenant_id, conversation_id, root, Seq(first))
                ..=keys::thread_key(tenant_id, conversation_id, root, Seq(u64::MAX)),
        );
        scan.take(limit)
            .map(|guard| {
                let key = guard
                    .key()
                    .map_err(|error| unavailable("could not read threads", error))?;
                let seq = keys::seq_from_message_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("a threads key is too short".to_owned()))?;
                reader.message_at(tenant_id, conversation_id, seq, THREADS)
            })
            .collect()
    }

    async fn messages_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let Some(first) = after.get().checked_add(1) else {
            return Ok(Vec::new());
        };
        let reader = self.reader();
        let scan = reader.snapshot.range(
            &reader.tables.messages,
            keys::message_key(tenant_id, conversation_id, Seq(first))
                ..=keys::message_key(tenant_id, conversation_id, Seq(u64::MAX)),
        );
        collect_messages(scan, limit)
    }

    async fn messages_before(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let reader = self.reader();
        let messages = &reader.tables.messages;
        let scan = match before {
            None => reader
                .snapshot
                .prefix(messages, keys::conversation_key(tenant_id, conversation_id)),
            Some(before) => reader.snapshot.range(
                messages,
                keys::message_key(tenant_id, conversation_id, Seq::ZERO)
                    ..keys::message_key(tenant_id, conversation_id, before),
            ),
        };
        collect_messages(scan.rev(), limit)
    }

    async fn moderation_log(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, StoreError> {
        let reader = self.reader();
        let index = &reader.tables.moderation;
        let scan = match before {
            None => reader
                .snapshot
                .prefix(index, keys::conversation_key(tenant_id, conversation_id)),
            Some(before) => reader.snapshot.range(
                index,
                keys::message_key(tenant_id, conversation_id, Seq::ZERO)
                    ..keys::message_key(tenant_id, conversation_id, before),
            ),
        };
        scan.rev()
            .take(limit)
            .map(|guard| {
                let key = guard
                    .key()
                    .map_err(|error| unavailable("could not read moderation", error))?;
                let seq = keys::seq_from_message_key(&key).ok_or_else(|| {
                    StoreError::Corrupt("a moderation key is too short".to_owned())
                })?;
                match reader.entry_at(tenant_id, conversation_id, seq)? {
                    Some(LogEntry::Event(event)) => Ok(event),
                    _ => Err(StoreError::Corrupt(format!(
                        "moderation points at seq {seq}, which holds no event"
                    ))),
                }
            })
            .collect()
    }

    async fn hide_message(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        message_id: MessageId,
    ) -> Result<(), StoreError> {
        let key = keys::hidden_key(tenant_id, conversation_id, user_id, message_id);
        self.write_record(
            |tables| &tables.hidden,
            key,
            Vec::new(),
            PersistMode::SyncAll,
        )
        .await
    }

    async fn hidden_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<BTreeSet<MessageId>, StoreError> {
        let reader = self.reader();
        reader
            .snapshot
            .prefix(
                &reader.tables.hidden,
                keys::member_key(tenant_id, conversation_id, user_id),
            )
            .map(|guard| {
                let key = guard
                    .key()
                    .map_err(|error| unavailable("could not read hidden", error))?;
                keys::message_id_from_hidden_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("a hidden key is too short".to_owned()))
            })
            .collect()
    }

    async fn member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<MemberSettings, StoreError> {
        self.read_record_or_default(
            |tables| &tables.member_settings,
            MEMBER_SETTINGS,
            keys::member_key(tenant_id, conversation_id, user_id),
        )
    }

    async fn set_member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        settings: MemberSettings,
    ) -> Result<(), StoreError> {
        self.write_record(
            |tables| &tables.member_settings,
            keys::member_key(tenant_id, conversation_id, user_id),
            codec::encode(&settings)?,
            PersistMode::SyncAll,
        )
        .await
    }

    async fn read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<ReadCursors, StoreError> {
        self.read_record_or_default(
            |tables| &tables.read_cursors,
            READ_CURSORS,
            keys::member_key(tenant_id, conversation_id, user_id),
        )
    }

    async fn set_read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        cursors: ReadCursors,
    ) -> Result<(), StoreError> {
        // Written to the journal without an fsync: a cursor is not acknowledged state, and one
        // found a few updates behind after a crash only shows a message as unread again.
        self.write_record(
            |tables| &tables.read_cursors,
            keys::member_key(tenant_id, conversation_id, user_id),
            codec::encode(&cursors)?,
            PersistMode::Buffer,
        )
        .await
    }

    async fn count_unread(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        after: Seq,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let Some(first) = after.get().checked_add(1) else {
            return Ok(0);
        };
        let reader = self.reader();
        let scan = reader.snapshot.range(
            &reader.tables.messages,
            keys::message_key(tenant_id, conversation_id, Seq(first))
                ..=keys::message_key(tenant_id, conversation_id, Seq(u64::MAX)),
        );
        let mut unread = 0;
        for entry in decode_entries(scan) {
            if unread >= limit {
                break;
            }
            if counts_as_unread(&entry?, user_id) {
                unread += 1;
            }
        }
        Ok(unread)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run_blocking(EmbeddedShared::ping).await
    }
}
