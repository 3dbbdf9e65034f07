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
//! - `counters`: the event log's last position. An append that stores entries moves it inside
//!   its transaction and gives each stored entry the next position as its `log_position`
//!   field, so the event log ([`EventLog::tail`]) has no gap and no repeat; two appends at once
//!   (to any conversations) conflict on it and one is retried. Entries written before this
//!   field existed have none and are not in the log.
//!
//! An append is one multi-document transaction with majority, journaled write concern: when it
//! commits, every `Stored` entry is durable on the replica set's majority. Staging uses the
//! shared rules of [`crate::log::staging`], whose reads are synchronous; this adapter runs staging
//! over what it has already fetched, records what was missing, fetches that inside the
//! transaction and stages again (staging is pure, so a retry is exact).

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document, doc};
use mongodb::error::{ErrorKind, TRANSIENT_TRANSACTION_ERROR, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Cursor, Database};
use switchboard_engine::StoreError;
use switchboard_engine::backoff::Backoff;
use switchboard_engine::ids::{ConversationId, Seq, TenantId, UserId};
use switchboard_engine::model::{Conversation, ConversationSnapshot, Member};
use switchboard_engine::operations::{ConversationEventBody, LogEntry};
use switchboard_engine::ports::MessageStore;
use tokio::sync::OnceCell;

use crate::codec;

mod append;
mod port;
mod schema;
#[cfg(test)]
mod tests;

const CONVERSATIONS: &str = "conversations";
const LOGS: &str = "logs";
const ENTRIES: &str = "entries";
const READ_CURSORS: &str = "read_cursors";
const MEMBER_SETTINGS: &str = "member_settings";
const HIDDEN: &str = "hidden";
const DIRECT_PAIRS: &str = "direct_pairs";
/// One document, `_id` [`EVENT_LOG_COUNTER`], holding the event log's last position.
const COUNTERS: &str = "counters";
const EVENT_LOG_COUNTER: &str = "event_log";

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
    pub(crate) database: Database,
    conversations: Collection<Document>,
    logs: Collection<Document>,
    entries: Collection<Document>,
    read_cursors: Collection<Document>,
    member_settings: Collection<Document>,
    hidden: Collection<Document>,
    direct_pairs: Collection<Document>,
    counters: Collection<Document>,
    /// Set once the indexes exist.
    indexes: Arc<OnceCell<()>>,
}

/// Why one attempt at a transaction did not commit.
pub(crate) enum AttemptError {
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

pub(crate) fn unavailable(action: &str, error: &mongodb::error::Error) -> StoreError {
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

pub(crate) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
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

pub(crate) fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

/// Decodes the postcard record in `field` of a document of `table`.
pub(crate) fn decode_field<Record: serde::de::DeserializeOwned>(
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

/// The unread rule ([`switchboard_engine::unread::counts_as_unread`]) as a query over the
/// fields [`entry_document`] stores beside each entry: a message, not deleted, whose sender is
/// not `user_id`. `tests.rs` checks it against the rule on a table of entries.
fn unread_filter(user_id: &UserId) -> Document {
    doc! {
        "kind": "message",
        "deleted": false,
        "sender": {"$ne": user_id.as_str()},
    }
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
pub(crate) async fn collect(mut cursor: Cursor<Document>) -> Result<Vec<Document>, StoreError> {
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

pub(crate) fn limit_of(limit: usize) -> i64 {
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
            counters: database.collection(COUNTERS),
            indexes: Arc::new(OnceCell::new()),
            client,
            database,
        }
    }

    /// Creates the indexes unless an earlier call did; fails while the server is away.
    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
        self.indexes
            .get_or_try_init(|| self.create_indexes())
            .await
            .map(|_| ())
    }

    /// The database this store uses.
    pub fn database(&self) -> &Database {
        &self.database
    }
}
