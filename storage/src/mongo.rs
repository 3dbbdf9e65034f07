//! The MongoDB [`MessageStore`]: the shared store of scale-out deployments, where several
//! engine nodes read and write the same conversations.
//!
//! Collections (all keyed by tenant first, so a query can never cross tenants):
//! - `conversations`: one document per conversation, `_id` `"<tenant>/<conversation>"`, with
//!   the member ids as an indexed array (for "my conversations") and the conversation and its
//!   members as records.
//! - `logs`: one document per conversation log holding its `head`, the highest stored seq.
//!   Every append moves it with a compare-and-set inside the append's transaction; this, and the
//!   unique indexes on `entries`, are what keep seqs gapless and unique when several nodes
//!   append to one conversation at once: a loser of the race conflicts, aborts, re-reads the
//!   head and stages again.
//! - `entries`: the log, one document per entry, `_id` `"<tenant>/<conversation>/<seq>"`,
//!   unique on `(tenant, conversation, author, client_id)` (idempotency keys are scoped by
//!   author) and `(tenant, conversation, entry_id)` so a replayed write can never store an entry
//!   twice, plus the fields queries filter on (kind, sender, deleted, thread root, moderation).
//!   Entries written before keys were scoped by author have no `author` field; the first
//!   operation that reaches the server fills it in from the entry before the new unique index is
//!   built and the old `(tenant, conversation, client_id)` one is dropped. The entry itself is the `body`: the same
//!   versioned postcard record the embedded store writes ([`crate::codec`]), so both stores
//!   read and write one format and the engine's types need no second (BSON) mapping.
//! - `read_cursors`, `member_settings`, `hidden`, `direct_pairs`: small per-member records.
//!
//! An append is one multi-document transaction with majority, journaled write concern: when it
//! commits, every `Stored` entry is durable on the replica set's majority. Staging uses the
//! shared rules of [`crate::staging`], whose reads are synchronous; this adapter runs staging
//! over what it has already fetched, records what was missing, fetches that inside the
//! transaction and stages again (staging is pure, so a retry is exact).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use mongodb::error::{
    ErrorKind, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT, WriteFailure,
};
use mongodb::options::{
    Acknowledgment, ClientOptions, IndexOptions, ReadConcern, TransactionOptions, WriteConcern,
};
use mongodb::{Client, ClientSession, Collection, Cursor, Database, IndexModel};
use switchboard_engine::StoreError;
use switchboard_engine::backoff::Backoff;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};
use tokio::sync::OnceCell;

use crate::codec;
use crate::staging::{LogView, StageError, direct_pair, ordered, repeat_outcome, stage_entry};

const CONVERSATIONS: &str = "conversations";
const LOGS: &str = "logs";
const ENTRIES: &str = "entries";
const READ_CURSORS: &str = "read_cursors";
const MEMBER_SETTINGS: &str = "member_settings";
const HIDDEN: &str = "hidden";
const DIRECT_PAIRS: &str = "direct_pairs";

mod recordings;
pub use recordings::MongoRecordingStore;

/// MongoDB's code for a unique index violation.
const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's code for two transactions writing one document.
const WRITE_CONFLICT: i32 = 112;

/// How often one append is attempted before it gives up on conflicting writers.
const MAX_APPEND_ATTEMPTS: u32 = 64;
/// How long an append waits before trying again after a conflict: 1 ms, doubling up to 64 ms.
const CONFLICT_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(1),
    max: Duration::from_millis(64),
};
/// How often a commit whose result is unknown is retried.
const MAX_COMMIT_ATTEMPTS: u32 = 8;

/// A [`MessageStore`] over a MongoDB database, shared by every engine node of a deployment.
#[derive(Clone)]
pub struct MongoMessageStore {
    client: Client,
    database: Database,
    conversations: Collection<Document>,
    logs: Collection<Document>,
    entries: Collection<Document>,
    read_cursors: Collection<Document>,
    member_settings: Collection<Document>,
    hidden: Collection<Document>,
    direct_pairs: Collection<Document>,
    /// Set once the indexes exist.
    indexes: Arc<OnceCell<()>>,
}

/// Why one attempt at a transaction did not commit.
enum AttemptError {
    /// Another writer got there first; the whole attempt is retried from fresh reads.
    Conflict,
    /// The backend failed; reported to the caller.
    Store(StoreError),
}

impl From<StoreError> for AttemptError {
    fn from(error: StoreError) -> Self {
        AttemptError::Store(error)
    }
}

impl From<mongodb::error::Error> for AttemptError {
    fn from(error: mongodb::error::Error) -> Self {
        if is_conflict(&error) {
            AttemptError::Conflict
        } else {
            AttemptError::Store(unavailable("a transaction failed", &error))
        }
    }
}

fn unavailable(action: &str, error: &mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(format!("{action}: {error}"))
}

/// The codes of the write errors an error carries.
fn error_codes(error: &mongodb::error::Error) -> Vec<i32> {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(write)) => vec![write.code],
        ErrorKind::InsertMany(insert) => insert
            .write_errors
            .iter()
            .flatten()
            .map(|write| write.code)
            .collect(),
        ErrorKind::Command(command) => vec![command.code],
        _ => Vec::new(),
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    error_codes(error).contains(&DUPLICATE_KEY)
}

/// Whether the server could not be reached at all (as opposed to answering with an error).
fn is_unreachable(error: &mongodb::error::Error) -> bool {
    matches!(
        *error.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

/// Whether another writer got there first, so retrying the whole transaction from fresh reads
/// is the right answer. A server that cannot be reached is not a conflict, even though the
/// driver labels a transaction's network errors transient: retrying would only keep the caller
/// waiting (the circuit breaker in front of the store decides when to try again).
fn is_conflict(error: &mongodb::error::Error) -> bool {
    if is_unreachable(error) {
        return false;
    }
    error.contains_label(TRANSIENT_TRANSACTION_ERROR)
        || error_codes(error)
            .iter()
            .any(|code| *code == DUPLICATE_KEY || *code == WRITE_CONFLICT)
}

/// Seqs are stored as BSON 64-bit integers; a seq beyond `i64::MAX` cannot exist in the store.
fn seq_to_bson(seq: Seq) -> i64 {
    i64::try_from(seq.get()).unwrap_or(i64::MAX)
}

fn conversation_key(tenant_id: &TenantId, conversation_id: ConversationId) -> String {
    format!("{tenant_id}/{conversation_id}")
}

fn entry_key(tenant_id: &TenantId, conversation_id: ConversationId, seq: Seq) -> String {
    // Zero-padded so that the keys of one conversation sort like their seqs.
    format!("{tenant_id}/{conversation_id}/{:020}", seq.get())
}

fn member_key(tenant_id: &TenantId, conversation_id: ConversationId, user_id: &UserId) -> String {
    format!("{tenant_id}/{conversation_id}/{user_id}")
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

/// Decodes the postcard record in `field` of a document of `table`.
fn decode_field<Record: serde::de::DeserializeOwned>(
    table: &'static str,
    document: &Document,
    field: &str,
) -> Result<Record, StoreError> {
    match document.get(field) {
        Some(Bson::Binary(value)) => codec::decode(table, &value.bytes),
        _ => Err(StoreError::Corrupt(format!(
            "a document in {table} has no binary {field}"
        ))),
    }
}

/// The stored form of one log entry: the fields queries filter on, and the entry itself.
fn entry_document(tenant_id: &TenantId, entry: &LogEntry) -> Result<Document, StoreError> {
    let conversation_id = entry.conversation_id();
    let mut document = doc! {
        "_id": entry_key(tenant_id, conversation_id, entry.seq()),
        "tenant": tenant_id.as_str(),
        "conversation": conversation_id.to_string(),
        "seq": seq_to_bson(entry.seq()),
        "author": entry.author().as_str(),
        "client_id": entry.client_id().as_str(),
        "entry_id": entry.entry_id().to_string(),
        "body": binary(codec::encode(entry)?),
    };
    match entry {
        LogEntry::Message(message) => {
            document.insert("kind", "message");
            document.insert("sender", message.sender_id.as_str());
            document.insert("deleted", message.state.deleted.is_some());
            if let Some(root) = message.thread_root {
                document.insert("thread_root", root.to_string());
            }
        }
        LogEntry::Event(event) => {
            let moderation = matches!(event.body, ConversationEventBody::Moderated { .. });
            document.insert("kind", if moderation { "moderation" } else { "event" });
        }
    }
    Ok(document)
}

fn decode_entry(document: &Document) -> Result<LogEntry, StoreError> {
    decode_field(ENTRIES, document, "body")
}

fn conversation_document(
    tenant_id: &TenantId,
    snapshot: &ConversationSnapshot,
) -> Result<Document, StoreError> {
    let conversation_id = snapshot.conversation.conversation_id;
    let member_ids: Vec<&str> = snapshot
        .members
        .iter()
        .map(|member| member.user_id.as_str())
        .collect();
    Ok(doc! {
        "_id": conversation_key(tenant_id, conversation_id),
        "tenant": tenant_id.as_str(),
        "conversation": conversation_id.to_string(),
        "member_ids": member_ids,
        "record": binary(codec::encode(&snapshot.conversation)?),
        "members": binary(codec::encode(&snapshot.members)?),
    })
}

fn decode_snapshot(document: &Document) -> Result<ConversationSnapshot, StoreError> {
    let conversation: Conversation = decode_field(CONVERSATIONS, document, "record")?;
    let mut members: Vec<Member> = decode_field(CONVERSATIONS, document, "members")?;
    members.sort_by(|left, right| left.user_id.cmp(&right.user_id));
    Ok(ConversationSnapshot {
        conversation,
        members,
    })
}

/// Reads every document of a cursor.
async fn collect(mut cursor: Cursor<Document>) -> Result<Vec<Document>, StoreError> {
    let mut documents = Vec::new();
    while cursor
        .advance()
        .await
        .map_err(|error| unavailable("could not read a result", &error))?
    {
        documents.push(
            cursor
                .deserialize_current()
                .map_err(|error| StoreError::Corrupt(format!("unreadable document: {error}")))?,
        );
    }
    Ok(documents)
}

fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl MongoMessageStore {
    /// A store over `database` of the MongoDB deployment at `uri`. Nothing is sent to the
    /// server yet, so a server that is late or down does not stop the engine from starting:
    /// each operation waits at most `server_selection_timeout` for a server and then fails
    /// with [`StoreError::Unavailable`], and the indexes are created by the first operation
    /// that finds the server (an existing index with the same definition is left as it is).
    /// Until they exist, every operation fails, so nothing is ever written without the unique
    /// indexes that make replays harmless.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URI is malformed (or, for `mongodb+srv:`, its DNS
    /// records cannot be resolved).
    pub async fn open(
        uri: &str,
        database: &str,
        server_selection_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|error| unavailable("could not parse the MongoDB URI", &error))?;
        options.server_selection_timeout = Some(server_selection_timeout);
        options.app_name = Some("switchboard".to_owned());
        let client = Client::with_options(options)
            .map_err(|error| unavailable("could not configure the MongoDB client", &error))?;
        Ok(Self::with_client(client, database))
    }

    /// [`Self::open`], then waits until the server answers and the indexes exist.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the URI is malformed, the server does not answer within
    /// the default server selection timeout (5 s), or an index cannot be created.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        let store = Self::open(uri, database, Duration::from_secs(5)).await?;
        store.ping().await?;
        Ok(store)
    }

    /// A store over `database` of an existing client (no I/O happens here).
    pub fn with_client(client: Client, database: &str) -> Self {
        let database = client.database(database);
        Self {
            conversations: database.collection(CONVERSATIONS),
            logs: database.collection(LOGS),
            entries: database.collection(ENTRIES),
            read_cursors: database.collection(READ_CURSORS),
            member_settings: database.collection(MEMBER_SETTINGS),
            hidden: database.collection(HIDDEN),
            direct_pairs: database.collection(DIRECT_PAIRS),
            indexes: Arc::new(OnceCell::new()),
            client,
            database,
        }
    }

    /// Creates the indexes unless an earlier call did; fails while the server is away.
    async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| self.create_indexes())
            .await
            .map(|_| ())
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Gives every entry written before idempotency keys were scoped by author its `author`
    /// field, read from the entry itself, in pages. Runs before the unique index on the author's
    /// keys is built; entries written meanwhile by this version already carry the field.
    async fn fill_in_authors(&self) -> Result<(), StoreError> {
        const PAGE: i64 = 1000;
        loop {
            let cursor = self
                .entries
                .find(doc! {"author": {"$exists": false}})
                .limit(PAGE)
                .await
                .map_err(|error| unavailable("could not read entries without an author", &error))?;
            let documents = collect(cursor).await?;
            if documents.is_empty() {
                return Ok(());
            }
            for document in &documents {
                let entry = decode_entry(document)?;
                let id = document.get("_id").cloned().unwrap_or(Bson::Null);
                self.entries
                    .update_one(
                        doc! {"_id": id},
                        doc! {"$set": {"author": entry.author().as_str()}},
                    )
                    .await
                    .map_err(|error| unavailable("could not fill in an entry's author", &error))?;
            }
        }
    }

    async fn create_indexes(&self) -> Result<(), StoreError> {
        self.fill_in_authors().await?;
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .unique(true)
                        .name(name.to_owned())
                        .build(),
                )
                .build()
        };
        let plain = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        self.entries
            .create_indexes([
                unique(
                    doc! {"tenant": 1, "conversation": 1, "seq": 1},
                    "conversation_seq",
                ),
                unique(
                    doc! {"tenant": 1, "conversation": 1, "author": 1, "client_id": 1},
                    "conversation_author_client_id",
                ),
                unique(
                    doc! {"tenant": 1, "conversation": 1, "entry_id": 1},
                    "conversation_entry_id",
                ),
                plain(
                    doc! {"tenant": 1, "conversation": 1, "kind": 1, "seq": 1},
                    "conversation_kind_seq",
                ),
                plain(
                    doc! {"tenant": 1, "conversation": 1, "thread_root": 1, "seq": 1},
                    "conversation_thread_seq",
                ),
            ])
            .await
            .map_err(|error| unavailable("could not create the entries indexes", &error))?;
        // Idempotency keys were unique per conversation before they were scoped by author.
        const LEGACY_CLIENT_ID_INDEX: &str = "conversation_client_id";
        let index_names = self
            .entries
            .list_index_names()
            .await
            .map_err(|error| unavailable("could not list the entries indexes", &error))?;
        if index_names
            .iter()
            .any(|name| name == LEGACY_CLIENT_ID_INDEX)
        {
            self.entries
                .drop_index(LEGACY_CLIENT_ID_INDEX)
                .await
                .map_err(|error| {
                    unavailable("could not drop the legacy client id index", &error)
                })?;
        }
        self.conversations
            .create_indexes([plain(
                doc! {"tenant": 1, "member_ids": 1, "conversation": 1},
                "membership_by_user",
            )])
            .await
            .map_err(|error| unavailable("could not create the conversations indexes", &error))?;
        self.hidden
            .create_indexes([plain(
                doc! {"tenant": 1, "conversation": 1, "user": 1},
                "hidden_by_member",
            )])
            .await
            .map_err(|error| unavailable("could not create the hidden indexes", &error))?;
        Ok(())
    }

    async fn start_transaction(&self) -> Result<ClientSession, AttemptError> {
        let mut session = self.client.start_session().await?;
        let options = TransactionOptions::builder()
            .read_concern(ReadConcern::snapshot())
            .write_concern(
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build(),
            )
            .build();
        session.start_transaction().with_options(options).await?;
        Ok(session)
    }

    /// Commits, retrying a commit whose outcome the driver could not learn (committing twice
    /// is harmless; giving up after a commit that succeeded would report a stored entry as
    /// failed).
    async fn commit(session: &mut ClientSession) -> Result<(), AttemptError> {
        let mut attempts = 0;
        loop {
            match session.commit_transaction().await {
                Ok(()) => return Ok(()),
                Err(error)
                    if error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                        && attempts < MAX_COMMIT_ATTEMPTS =>
                {
                    attempts += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Runs `attempt` until it commits, backing off (with jitter) while it conflicts.
    async fn retrying<Output, Attempt, Future>(
        &self,
        what: &str,
        mut attempt: Attempt,
    ) -> Result<Output, StoreError>
    where
        Attempt: FnMut() -> Future,
        Future: std::future::Future<Output = Result<Output, AttemptError>>,
    {
        for attempt_number in 0..MAX_APPEND_ATTEMPTS {
            match attempt().await {
                Ok(output) => return Ok(output),
                Err(AttemptError::Store(error)) => return Err(error),
                Err(AttemptError::Conflict) => {
                    // Writers that collided do not collide again in step.
                    tokio::time::sleep(
                        CONFLICT_BACKOFF.delay(attempt_number, crate::supervise::jitter()),
                    )
                    .await;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{what} conflicted with other writers {MAX_APPEND_ATTEMPTS} times in a row"
        )))
    }

    async fn try_create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<Result<(), StoreError>, AttemptError> {
        let tenant_id = &conversation.tenant_id;
        let mut session = self.start_transaction().await?;
        if let Some((first, second)) = direct_pair(conversation, members) {
            let pair = doc! {
                "_id": format!("{tenant_id}/{first}/{second}"),
                "conversation": conversation.conversation_id.to_string(),
            };
            if let Err(error) = self
                .direct_pairs
                .insert_one(pair)
                .session(&mut session)
                .await
            {
                if is_duplicate_key(&error) {
                    return Ok(Err(StoreError::AlreadyExists));
                }
                return Err(error.into());
            }
        }
        let mut sorted = members.to_vec();
        sorted.sort_by(|left, right| left.user_id.cmp(&right.user_id));
        let document = conversation_document(
            tenant_id,
            &ConversationSnapshot {
                conversation: conversation.clone(),
                members: sorted,
            },
        )?;
        if let Err(error) = self
            .conversations
            .insert_one(document)
            .session(&mut session)
            .await
        {
            if is_duplicate_key(&error) {
                return Ok(Err(StoreError::AlreadyExists));
            }
            return Err(error.into());
        }
        Self::commit(&mut session).await?;
        Ok(Ok(()))
    }

    async fn try_append(
        &self,
        entries: &[AppendEntry],
    ) -> Result<Vec<AppendOutcome>, AttemptError> {
        let mut session = self.start_transaction().await?;
        let mut logs: HashMap<(TenantId, ConversationId), StagedLog> = HashMap::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for AppendEntry { tenant_id, entry } in entries {
            let conversation_id = entry.conversation_id();
            let key = (tenant_id.clone(), conversation_id);
            if !logs.contains_key(&key) {
                let head = self
                    .logs
                    .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
                    .session(&mut session)
                    .await?
                    .map(|document| document.get_i64("head").unwrap_or(0))
                    .unwrap_or(0);
                let head = Seq(u64::try_from(head).unwrap_or(0));
                let mut log = StagedLog::new(head);
                // One query for every client id this call has for the conversation, instead of
                // one per entry: the ones already stored are duplicates.
                let client_ids: Vec<&str> = entries
                    .iter()
                    .filter(|other| {
                        other.tenant_id == *tenant_id
                            && other.entry.conversation_id() == conversation_id
                    })
                    .map(|other| other.entry.client_id().as_str())
                    .collect();
                let mut stored = self
                    .entries
                    .find(doc! {
                        "tenant": tenant_id.as_str(),
                        "conversation": conversation_id.to_string(),
                        "client_id": {"$in": client_ids},
                    })
                    .session(&mut session)
                    .await?;
                while let Some(document) = stored.next(&mut session).await.transpose()? {
                    let stored_entry = decode_entry(&document)?;
                    log.client_ids.insert(
                        (
                            stored_entry.author().clone(),
                            stored_entry.client_id().clone(),
                        ),
                        stored_entry,
                    );
                }
                logs.insert(key.clone(), log);
            }
            let log = logs.get_mut(&key).ok_or_else(|| {
                AttemptError::Store(StoreError::Unavailable("staged log vanished".to_owned()))
            })?;

            let client_key = (entry.author().clone(), entry.client_id().clone());
            if let Some(stored) = log.client_ids.get(&client_key) {
                outcomes.push(repeat_outcome(stored, entry));
                continue;
            }

            let seq = log.head.next();
            let (staged_entry, staged) = loop {
                let mut candidate = entry.clone();
                candidate.set_seq(seq);
                let view = CachedView {
                    log,
                    misses: RefCell::new(Vec::new()),
                };
                let result = stage_entry(&view, &mut candidate);
                let misses = view.misses.into_inner();
                if misses.is_empty() {
                    break (candidate, result);
                }
                for miss in misses {
                    self.fetch(&mut session, tenant_id, conversation_id, log, miss)
                        .await?;
                }
            };
            let staged = match staged {
                Ok(staged) => staged,
                Err(StageError::Refused(error)) => {
                    outcomes.push(AppendOutcome::Refused { error });
                    continue;
                }
                Err(StageError::Store(error)) => return Err(error.into()),
            };
            log.head = seq;
            log.client_ids.insert(client_key, staged_entry.clone());
            if let LogEntry::Message(message) = &staged_entry {
                log.message_seqs.insert(message.message_id, Some(seq));
            }
            if let Some(snapshot) = staged.conversation {
                log.conversation = Some(Some(snapshot));
                log.conversation_changed = true;
            }
            for rewrite in &staged.rewrites {
                if !log.new_seqs.contains(&rewrite.seq()) {
                    log.rewritten.insert(rewrite.seq());
                }
                log.entries.insert(rewrite.seq(), Some(rewrite.clone()));
            }
            let completed = staged.completed.then(|| Box::new(staged_entry.clone()));
            log.new_seqs.insert(seq);
            log.entries.insert(seq, Some(staged_entry));
            outcomes.push(AppendOutcome::Stored {
                seq,
                completed,
                rewritten: staged.rewrites,
            });
        }

        for ((tenant_id, conversation_id), log) in &logs {
            self.write_staged(&mut session, tenant_id, *conversation_id, log)
                .await?;
        }
        Self::commit(&mut session).await?;
        Ok(outcomes)
    }

    /// Fetches, inside the transaction, what staging found missing.
    async fn fetch(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        log: &mut StagedLog,
        miss: Miss,
    ) -> Result<(), AttemptError> {
        match miss {
            Miss::Entry(seq) => {
                let entry = self
                    .entries
                    .find_one(doc! {"_id": entry_key(tenant_id, conversation_id, seq)})
                    .session(session)
                    .await?
                    .map(|document| decode_entry(&document))
                    .transpose()?;
                log.entries.insert(seq, entry);
            }
            Miss::MessageSeq(message_id) => {
                let document = self
                    .entries
                    .find_one(doc! {
                        "tenant": tenant_id.as_str(),
                        "conversation": conversation_id.to_string(),
                        "entry_id": message_id.to_string(),
                        "kind": "message",
                    })
                    .session(session)
                    .await?;
                let seq = match document {
                    Some(document) => {
                        let entry = decode_entry(&document)?;
                        let seq = entry.seq();
                        log.entries.entry(seq).or_insert(Some(entry));
                        Some(seq)
                    }
                    None => None,
                };
                log.message_seqs.insert(message_id, seq);
            }
            Miss::Conversation => {
                let snapshot = self
                    .conversations
                    .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
                    .session(session)
                    .await?
                    .map(|document| decode_snapshot(&document))
                    .transpose()?;
                log.conversation = Some(snapshot);
            }
        }
        Ok(())
    }

    /// Writes what one conversation's part of the batch staged, and moves its head with a
    /// compare-and-set (a concurrent writer makes this conflict).
    async fn write_staged(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        log: &StagedLog,
    ) -> Result<(), AttemptError> {
        if log.head == log.head_before {
            return Ok(());
        }
        let new_entries = log
            .new_seqs
            .iter()
            .filter_map(|seq| log.entries.get(seq).and_then(Option::as_ref))
            .map(|entry| entry_document(tenant_id, entry))
            .collect::<Result<Vec<Document>, StoreError>>()?;
        self.entries
            .insert_many(new_entries)
            .session(&mut *session)
            .await?;
        for seq in &log.rewritten {
            if let Some(Some(entry)) = log.entries.get(seq) {
                let document = entry_document(tenant_id, entry)?;
                self.entries
                    .replace_one(
                        doc! {"_id": entry_key(tenant_id, conversation_id, *seq)},
                        document,
                    )
                    .session(&mut *session)
                    .await?;
            }
        }
        if log.conversation_changed
            && let Some(Some(snapshot)) = &log.conversation
        {
            let document = conversation_document(tenant_id, snapshot)?;
            self.conversations
                .replace_one(
                    doc! {"_id": document.get_str("_id").unwrap_or_default()},
                    document,
                )
                .session(&mut *session)
                .await?;
        }
        let key = conversation_key(tenant_id, conversation_id);
        if log.head_before == Seq::ZERO {
            // A first append creates the head; a concurrent first append hits the unique _id.
            self.logs
                .insert_one(doc! {"_id": &key, "head": seq_to_bson(log.head)})
                .session(&mut *session)
                .await?;
        } else {
            let moved = self
                .logs
                .update_one(
                    doc! {"_id": &key, "head": seq_to_bson(log.head_before)},
                    doc! {"$set": {"head": seq_to_bson(log.head)}},
                )
                .session(&mut *session)
                .await?;
            if moved.matched_count != 1 {
                return Err(AttemptError::Conflict);
            }
        }
        Ok(())
    }

    async fn read_record<Record: serde::de::DeserializeOwned + Default>(
        &self,
        collection: &Collection<Document>,
        table: &'static str,
        key: String,
    ) -> Result<Record, StoreError> {
        match collection
            .find_one(doc! {"_id": key})
            .await
            .map_err(|error| unavailable("could not read a member record", &error))?
        {
            Some(document) => decode_field(table, &document, "record"),
            None => Ok(Record::default()),
        }
    }

    async fn write_record(
        &self,
        collection: &Collection<Document>,
        key: String,
        record: &impl serde::Serialize,
    ) -> Result<(), StoreError> {
        collection
            .replace_one(
                doc! {"_id": &key},
                doc! {"_id": &key, "record": binary(codec::encode(record)?)},
            )
            .upsert(true)
            .await
            .map_err(|error| unavailable("could not write a member record", &error))?;
        Ok(())
    }

    /// Entries of one conversation matching `filter` (tenant and conversation are added), in
    /// seq order (`ascending` or not), at most `limit`.
    async fn find_entries(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        mut filter: Document,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        filter.insert("tenant", tenant_id.as_str());
        filter.insert("conversation", conversation_id.to_string());
        let cursor = self
            .entries
            .find(filter)
            .sort(doc! {"seq": if ascending { 1 } else { -1 }})
            .limit(limit_of(limit))
            .await
            .map_err(|error| unavailable("could not read the log", &error))?;
        collect(cursor).await?.iter().map(decode_entry).collect()
    }

    async fn find_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        filter: Document,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.find_entries(tenant_id, conversation_id, filter, ascending, limit)
            .await?
            .into_iter()
            .map(|entry| match entry {
                LogEntry::Message(message) => Ok(message),
                LogEntry::Event(_) => Err(StoreError::Corrupt(
                    "an entry indexed as a message holds an event".to_owned(),
                )),
            })
            .collect()
    }
}

/// One conversation's log as an append transaction has read and staged it.
struct StagedLog {
    /// The head when the transaction read it.
    head_before: Seq,
    /// The head after the entries staged so far.
    head: Seq,
    /// Entries read or staged; `None` where a read found nothing.
    entries: BTreeMap<Seq, Option<LogEntry>>,
    /// Message seqs read or staged; `None` where a read found no such message.
    message_seqs: HashMap<MessageId, Option<Seq>>,
    /// The conversation, once read (`Some(None)`: it does not exist).
    conversation: Option<Option<ConversationSnapshot>>,
    /// Whether staging changed the conversation.
    conversation_changed: bool,
    /// The entries already stored under the idempotency keys (author, client id) this call
    /// appends with, or staged in this call.
    client_ids: HashMap<(UserId, ClientId), LogEntry>,
    /// Seqs of the entries this batch adds.
    new_seqs: BTreeSet<Seq>,
    /// Seqs of stored entries this batch rewrites.
    rewritten: BTreeSet<Seq>,
}

impl StagedLog {
    fn new(head: Seq) -> Self {
        Self {
            head_before: head,
            head,
            entries: BTreeMap::new(),
            message_seqs: HashMap::new(),
            conversation: None,
            conversation_changed: false,
            client_ids: HashMap::new(),
            new_seqs: BTreeSet::new(),
            rewritten: BTreeSet::new(),
        }
    }
}

/// Something staging needed that the transaction had not read yet.
enum Miss {
    Entry(Seq),
    MessageSeq(MessageId),
    Conversation,
}

/// Staging's view of a [`StagedLog`]: answers from what was read, records the rest as misses.
struct CachedView<'log> {
    log: &'log StagedLog,
    misses: RefCell<Vec<Miss>>,
}

impl CachedView<'_> {
    fn miss(&self, miss: Miss) -> StoreError {
        self.misses.borrow_mut().push(miss);
        StoreError::Unavailable("not read yet".to_owned())
    }
}

impl LogView for CachedView<'_> {
    fn entry_at(&self, seq: Seq) -> Result<Option<LogEntry>, StoreError> {
        match self.log.entries.get(&seq) {
            Some(entry) => Ok(entry.clone()),
            None => Err(self.miss(Miss::Entry(seq))),
        }
    }

    fn message_seq(&self, message_id: MessageId) -> Result<Option<Seq>, StoreError> {
        match self.log.message_seqs.get(&message_id) {
            Some(seq) => Ok(*seq),
            None => Err(self.miss(Miss::MessageSeq(message_id))),
        }
    }

    fn conversation(&self) -> Result<Option<ConversationSnapshot>, StoreError> {
        match &self.log.conversation {
            Some(snapshot) => Ok(snapshot.clone()),
            None => Err(self.miss(Miss::Conversation)),
        }
    }
}

#[async_trait]
impl MessageStore for MongoMessageStore {
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError> {
        self.ready().await?;
        self.retrying("creating a conversation", || {
            self.try_create_conversation(conversation, members)
        })
        .await?
    }

    async fn direct_conversation(
        &self,
        tenant_id: &TenantId,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationId>, StoreError> {
        self.ready().await?;
        let (first, second) = ordered(first, second);
        let Some(document) = self
            .direct_pairs
            .find_one(doc! {"_id": format!("{tenant_id}/{first}/{second}")})
            .await
            .map_err(|error| unavailable("could not read direct pairs", &error))?
        else {
            return Ok(None);
        };
        let id = document
            .get_str("conversation")
            .map_err(|_| StoreError::Corrupt("a direct pair names no conversation".to_owned()))?;
        ConversationId::parse(id)
            .map(Some)
            .map_err(|error| StoreError::Corrupt(format!("a direct pair: {error}")))
    }

    async fn load_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError> {
        self.ready().await?;
        self.conversations
            .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
            .await
            .map_err(|error| unavailable("could not read conversations", &error))?
            .map(|document| decode_snapshot(&document))
            .transpose()
    }

    async fn conversations_of_user(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        self.ready().await?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! {"tenant": tenant_id.as_str(), "member_ids": user_id.as_str()};
        if let Some(after) = after {
            // ULIDs' text form sorts like the ids themselves.
            filter.insert("conversation", doc! {"$gt": after.to_string()});
        }
        let cursor = self
            .conversations
            .find(filter)
            .projection(doc! {"conversation": 1})
            .sort(doc! {"conversation": 1})
            .limit(limit_of(limit))
            .await
            .map_err(|error| unavailable("could not list conversations", &error))?;
        collect(cursor)
            .await?
            .iter()
            .map(|document| {
                let id = document.get_str("conversation").map_err(|_| {
                    StoreError::Corrupt("a conversation document has no id".to_owned())
                })?;
                ConversationId::parse(id)
                    .map_err(|error| StoreError::Corrupt(format!("a conversation id: {error}")))
            })
            .collect()
    }

    async fn head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError> {
        self.ready().await?;
        let head = self
            .logs
            .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
            .await
            .map_err(|error| unavailable("could not read a head", &error))?
            .map_or(0, |document| document.get_i64("head").unwrap_or(0));
        Ok(Seq(u64::try_from(head).unwrap_or(0)))
    }

    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.ready().await?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.retrying("an append", || self.try_append(&entries))
            .await
    }

    async fn entry_by_client_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        author: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<LogEntry>, StoreError> {
        self.ready().await?;
        Ok(self
            .find_entries(
                tenant_id,
                conversation_id,
                doc! {"author": author.as_str(), "client_id": client_id.as_str()},
                true,
                1,
            )
            .await?
            .into_iter()
            .next())
    }

    async fn message_by_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.ready().await?;
        Ok(self
            .find_messages(
                tenant_id,
                conversation_id,
                doc! {"entry_id": message_id.to_string(), "kind": "message"},
                true,
                1,
            )
            .await?
            .pop())
    }

    async fn entries_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.ready().await?;
        self.find_entries(
            tenant_id,
            conversation_id,
            doc! {"seq": {"$gt": seq_to_bson(after)}},
            true,
            limit,
        )
        .await
    }

    async fn thread_replies(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.ready().await?;
        self.find_messages(
            tenant_id,
            conversation_id,
            doc! {"thread_root": root.to_string(), "seq": {"$gt": seq_to_bson(after)}},
            true,
            limit,
        )
        .await
    }

    async fn messages_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.ready().await?;
        self.find_messages(
            tenant_id,
            conversation_id,
            doc! {"kind": "message", "seq": {"$gt": seq_to_bson(after)}},
            true,
            limit,
        )
        .await
    }

    async fn messages_before(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.ready().await?;
        let mut filter = doc! {"kind": "message"};
        if let Some(before) = before {
            filter.insert("seq", doc! {"$lt": seq_to_bson(before)});
        }
        self.find_messages(tenant_id, conversation_id, filter, false, limit)
            .await
    }

    async fn moderation_log(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, StoreError> {
        self.ready().await?;
        let mut filter = doc! {"kind": "moderation"};
        if let Some(before) = before {
            filter.insert("seq", doc! {"$lt": seq_to_bson(before)});
        }
        self.find_entries(tenant_id, conversation_id, filter, false, limit)
            .await?
            .into_iter()
            .map(|entry| match entry {
                LogEntry::Event(event) => Ok(event),
                LogEntry::Message(_) => Err(StoreError::Corrupt(
                    "an entry indexed as a moderation event holds a message".to_owned(),
                )),
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
        self.ready().await?;
        let key = format!(
            "{}/{message_id}",
            member_key(tenant_id, conversation_id, user_id)
        );
        self.hidden
            .replace_one(
                doc! {"_id": &key},
                doc! {
                    "_id": &key,
                    "tenant": tenant_id.as_str(),
                    "conversation": conversation_id.to_string(),
                    "user": user_id.as_str(),
                    "message": message_id.to_string(),
                },
            )
            .upsert(true)
            .await
            .map_err(|error| unavailable("could not hide a message", &error))?;
        Ok(())
    }

    async fn hidden_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<BTreeSet<MessageId>, StoreError> {
        self.ready().await?;
        let cursor = self
            .hidden
            .find(doc! {
                "tenant": tenant_id.as_str(),
                "conversation": conversation_id.to_string(),
                "user": user_id.as_str(),
            })
            .await
            .map_err(|error| unavailable("could not read hidden messages", &error))?;
        collect(cursor)
            .await?
            .iter()
            .map(|document| {
                let id = document.get_str("message").map_err(|_| {
                    StoreError::Corrupt("a hidden record names no message".to_owned())
                })?;
                MessageId::parse(id)
                    .map_err(|error| StoreError::Corrupt(format!("a hidden record: {error}")))
            })
            .collect()
    }

    async fn member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<MemberSettings, StoreError> {
        self.ready().await?;
        self.read_record(
            &self.member_settings,
            MEMBER_SETTINGS,
            member_key(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn set_member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        settings: MemberSettings,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        self.write_record(
            &self.member_settings,
            member_key(tenant_id, conversation_id, user_id),
            &settings,
        )
        .await
    }

    async fn read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<ReadCursors, StoreError> {
        self.ready().await?;
        self.read_record(
            &self.read_cursors,
            READ_CURSORS,
            member_key(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn set_read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        cursors: ReadCursors,
    ) -> Result<(), StoreError> {
        self.ready().await?;
        self.write_record(
            &self.read_cursors,
            member_key(tenant_id, conversation_id, user_id),
            &cursors,
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
        self.ready().await?;
        if limit == 0 {
            return Ok(0);
        }
        let count = self
            .entries
            .count_documents(doc! {
                "tenant": tenant_id.as_str(),
                "conversation": conversation_id.to_string(),
                "kind": "message",
                "deleted": false,
                "sender": {"$ne": user_id.as_str()},
                "seq": {"$gt": seq_to_bson(after)},
            })
            .limit(u64::try_from(limit).unwrap_or(u64::MAX))
            .await
            .map_err(|error| unavailable("could not count unread messages", &error))?;
        Ok(usize::try_from(count).unwrap_or(limit).min(limit))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.database
            .run_command(doc! {"ping": 1})
            .await
            .map_err(|error| unavailable("MongoDB does not answer", &error))?;
        self.ready().await
    }
}
