//! Port traits: what the engine needs from the outside world, stated as Rust traits.
//!
//! Storage adapters (the `storage` crate: embedded, in-memory, MongoDB) implement [`MessageStore`]
//! and its store-wide [`EventLog`]; the `storage` crate also implements [`ClusterBus`] (in memory
//! and over Redis), through which the engine nodes of a scale-out deployment tell each other what
//! they stored; the `actors` crate implements [`Clock`]. Every method is tenant-scoped: there is no
//! way to name a conversation without its tenant, which is how the "a client of
//! tenant A can never reach tenant B's data" rule is enforced at the bottom of the stack.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use crate::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, MessageRef, ReadCursors,
};
use crate::operations::{ConversationEvent, LogEntry};
use crate::rate_limit::{ActionClass, RateLimit};
use crate::time::Timestamp;
use crate::{Error, StoreError};

/// A log entry (message or event) to append, with its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntry {
    /// The tenant that owns the conversation.
    pub tenant_id: TenantId,
    /// The entry. Its seq is ignored: storage assigns it.
    pub entry: LogEntry,
}

/// What happened to one entry of an append batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored and durable, at this seq: the conversation's head plus one (earlier stored entries
    /// of the same batch count).
    Stored {
        /// The seq storage assigned.
        seq: Seq,
        /// The entry as stored, when storage completed more than its seq: an event's resulting
        /// state (the reaction count), a thread reply's position. `None` for a plain message,
        /// which is stored exactly as given.
        completed: Option<Box<LogEntry>>,
        /// Earlier entries of the conversation this one changed, as storage now holds them:
        /// the message an event applies to, a thread's root, the edits whose text a delete
        /// scrubbed. A cache of recent entries replaces its copies with these, so that a replay
        /// from it shows every entry as it is now, exactly as a replay from storage does.
        rewritten: Vec<LogEntry>,
    },
    /// Not stored: the entry's author already has an entry with this `client_id` in the
    /// conversation (stored earlier, or earlier in the same batch), made by a request of the
    /// same shape ([`crate::idempotency::RequestShape::repeats`]): a retry, answered with the
    /// original. A key its author used for a different request is [`AppendOutcome::Refused`]
    /// with [`Error::Conflict`] instead.
    DuplicateClientId {
        /// The entry already stored under that key.
        existing: MessageRef,
    },
    /// Not stored, and no seq consumed: the current state of the message it targets refuses it
    /// (see [`crate::operations::apply_event`] and [`crate::operations::apply_thread_reply`]),
    /// or that message does not exist in the conversation.
    Refused {
        /// Why, as the client will see it.
        error: Error,
    },
}

/// A position in a store's event log: what [`EventLog::tail`] resumes after. Positions grow
/// in store order; [`LogCursor::START`] is before the first entry. A caller persists the
/// cursor of the last entry it handled and passes it back to resume.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct LogCursor(pub u64);

impl LogCursor {
    /// Before the first entry: a tail from here reads the whole log.
    pub const START: LogCursor = LogCursor(0);
}

/// Which part of the event log a tail reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailScope {
    /// Every tenant's entries.
    AllTenants,
    /// One tenant's entries only.
    Tenant(TenantId),
}

impl TailScope {
    /// Whether an entry of `tenant_id` is in this scope.
    pub fn covers(&self, tenant_id: &TenantId) -> bool {
        match self {
            TailScope::AllTenants => true,
            TailScope::Tenant(scope) => scope == tenant_id,
        }
    }
}

/// One entry of the event log, as [`EventLog::tail`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEntry {
    /// Its position: pass it to [`EventLog::tail`] to read what follows.
    pub cursor: LogCursor,
    /// The tenant that owns its conversation.
    pub tenant_id: TenantId,
    /// The entry (a message in its current state, or an event), with its seq.
    pub entry: LogEntry,
}

/// The store-wide log of every stored entry, across conversations and tenants, in the order
/// the store stored them: what followers (the search indexer, webhooks) read to learn of every
/// entry once.
///
/// # Contract (checked by the conformance suite in `storage/tests/conformance.rs`)
/// - Every entry an append reports `Stored` gets the next position of the log, atomically with
///   the append; entries of one conversation are in seq order. Nothing else (duplicates,
///   refusals) is in the log.
/// - [`EventLog::tail`] returns the entries after a cursor in log order, with no gap and no
///   repeat: reading on from the last entry's cursor, however the reads are cut, gives each
///   entry exactly once. The log is durable (it survives a restart) like the entries.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// The entries of `scope` after `from`, in log order, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn tail(
        &self,
        scope: &TailScope,
        from: LogCursor,
        limit: usize,
    ) -> Result<Vec<TailEntry>, StoreError>;
}

/// Durable storage of conversations, members and each conversation's log (messages and events).
///
/// The store-wide event log is its supertrait, [`EventLog`]: every store offers the tail.
///
/// # Contract (checked by the conformance suite in `storage/tests/conformance.rs`)
/// - Every method is scoped by tenant; data of one tenant is invisible to every other.
/// - [`MessageStore::append`] stores an entry only if its `client_id` is new among its
///   author's entries in the conversation (idempotency keys are scoped by author: two members
///   may use the same `client_id`, see [`crate::idempotency`]), and assigns it the seq after the
///   conversation's head (earlier entries of the same batch count), atomically with the
///   duplicate check; so a conversation's seqs have no gap and no reuse whatever its callers do.
///   A key the author already used is a duplicate when the stored entry repeats the same
///   request, and refused with [`Error::Conflict`] when it does not. It reports an
/// [`AppendOutcome`] per entry, in input
///   order. When it returns `Ok`, every `Stored` entry is durable: it survives a crash of the
///   process. The `Stored` entries of one call become visible together.
/// - An event that changes the conversation itself (members, roles, profile, archive,
///   moderation) is applied to the stored conversation with
///   [`crate::membership::apply_change`] in the same atomic write, and moderation events are
///   indexed for [`MessageStore::moderation_log`].
/// - An event entry about a message is applied to the message it targets with
///   [`crate::operations::apply_event`], and a message posted in a thread to the thread's root
///   with [`crate::operations::apply_thread_reply`], in the same atomic write; the log's copy of
///   a message is kept in its current state. When the message is deleted, the text of its
///   earlier `MessageEdited` events is scrubbed ([`crate::operations::scrub_edited_text`]) in
///   that same write. A target that does not exist, or whose state refuses the entry, gives
///   [`AppendOutcome::Refused`]. Earlier entries of the same batch count.
/// - Reads see only durable data.
#[async_trait]
pub trait MessageStore: EventLog + Send + Sync + 'static {
    /// Creates a conversation with its initial members. A direct conversation is also indexed
    /// by its pair of members, atomically with its creation.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] if the id is taken in this tenant, or, for a direct
    /// conversation, if the pair already has one (see [`MessageStore::direct_conversation`]).
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError>;

    /// The direct conversation of two users (in either order), if they have one.
    async fn direct_conversation(
        &self,
        tenant_id: &TenantId,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationId>, StoreError>;

    /// Loads a conversation and its members; `None` if it does not exist in this tenant.
    async fn load_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError>;

    /// Ids of the conversations `user_id` is a member of, in id order, at most `limit`, strictly
    /// after `after` when given.
    async fn conversations_of_user(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError>;

    /// The highest stored seq of a conversation ([`Seq::ZERO`] if it has no messages).
    async fn head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError>;

    /// Appends a batch of messages, possibly for many conversations, with one durable commit.
    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError>;

    /// Resolves `author`'s idempotency key to the entry (message, in its current state, or
    /// event) stored under it.
    async fn entry_by_client_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        author: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<LogEntry>, StoreError>;

    /// A message of a conversation, in its current state.
    async fn message_by_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError>;

    /// Log entries (messages in their current state, and events) with seq strictly greater
    /// than `after`, oldest first, at most `limit`.
    async fn entries_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError>;

    /// Replies posted in the thread under `root`, oldest first, with seq strictly greater than
    /// `after`, at most `limit`.
    async fn thread_replies(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Messages (not events) with seq strictly greater than `after`, oldest first, at most
    /// `limit`.
    async fn messages_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Messages (not events) with seq strictly less than `before` (or all, when `None`), newest
    /// first, at most `limit`.
    async fn messages_before(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// The moderation log: the conversation's moderation events (kick, ban, unban, mute,
    /// unmute) with seq strictly less than `before` (or all, when `None`), newest first, at
    /// most `limit`.
    async fn moderation_log(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, StoreError>;

    /// Hides a message for one member only (deleted "for me"), durably. Hiding it again changes
    /// nothing.
    async fn hide_message(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        message_id: MessageId,
    ) -> Result<(), StoreError>;

    /// The messages a member hid for themself in a conversation.
    async fn hidden_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<BTreeSet<MessageId>, StoreError>;

    /// A member's own settings for a conversation ([`MemberSettings::default`] if none were
    /// stored).
    async fn member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<MemberSettings, StoreError>;

    /// Stores a member's own settings for a conversation, durably.
    async fn set_member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        settings: MemberSettings,
    ) -> Result<(), StoreError>;

    /// A member's receipt cursors ([`ReadCursors::default`] if none were stored).
    async fn read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<ReadCursors, StoreError>;

    /// Stores a member's receipt cursors. Cursors are not acknowledged state: an adapter may
    /// persist them without waiting for the disk, so after a crash a cursor may be found a few
    /// updates behind (never ahead).
    async fn set_read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        cursors: ReadCursors,
    ) -> Result<(), StoreError>;

    /// How many messages with seq greater than `after` a member has not read: the entries
    /// that [`crate::unread::counts_as_unread`] counts for `user_id` (messages, not events, that
    /// are not deleted and not sent by them); counting stops at `limit`.
    async fn count_unread(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        after: Seq,
        limit: usize,
    ) -> Result<usize, StoreError>;

    /// Checks that the backend answers (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// What a WebRTC caller needs to reach its peers: TURN credentials and the servers they work
/// on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceServers {
    /// The TURN username (`<expiry unix seconds>:<opaque user id>`).
    pub username: String,
    /// The TURN password.
    pub password: String,
    /// How long the credential is valid, in seconds.
    pub ttl_secs: u64,
    /// When it stops being valid.
    pub expires_at: Timestamp,
    /// TURN servers (`turn:` and `turns:` URIs) that accept the credential.
    pub turn_uris: Vec<String>,
    /// STUN servers (`stun:` URIs), which need no credential.
    pub stun_uris: Vec<String>,
}

/// Hands out TURN credentials and the ICE servers they work on. Implemented by the `turn`
/// crate.
pub trait IceServerProvider: Send + Sync + 'static {
    /// Credentials for `user_id` of `tenant_id`, valid from `now` for `ttl_secs` (the
    /// configured default when `None`; clamped to the configured maximum).
    fn ice_servers(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: Timestamp,
        ttl_secs: Option<u64>,
    ) -> IceServers;
}

/// What one engine node tells the others about a conversation, in a deployment where several
/// nodes share one store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ClusterNotice {
    /// Entries up to `head` are durable in the shared store: a node serving the conversation
    /// reads what it has not seen from there.
    Stored {
        /// The conversation's stored head as the publishing node saw it.
        head: Seq,
    },
    /// A member started or stopped typing (already checked and coalesced by the node the
    /// member is connected to).
    Typing {
        /// Who.
        user_id: UserId,
        /// Started (true) or stopped.
        started: bool,
    },
    /// Something happened to one of the conversation's recordings outside the seq stream.
    Recording(crate::recording::RecordingNotice),
}

/// Receives the notices about one conversation that other nodes publish.
///
/// Both methods are called from the bus's own task and must not block: an implementation
/// hands the notice on (to an actor's mailbox) and returns.
pub trait ClusterListener: Send + Sync + 'static {
    /// A notice another node published.
    fn notice(&self, notice: ClusterNotice);

    /// The bus lost its connection and has it again: notices published meanwhile are lost, so
    /// the listener must catch up from the store.
    fn reconnected(&self);
}

/// Keeps a [`ClusterBus::subscribe`] registration alive; dropping it unsubscribes.
pub struct ClusterSubscription {
    _guard: Box<dyn Send + Sync>,
}

impl ClusterSubscription {
    /// A subscription that ends when `guard` is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for ClusterSubscription {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ClusterSubscription")
    }
}

/// Hears that a user's presence may have changed on another node.
pub trait PresenceListener: Send + Sync + 'static {
    /// The user's presence may have changed; the directory has the current state. Called from
    /// the bus's own task: an implementation must not block.
    fn presence_changed(&self, tenant_id: &TenantId, user_id: &UserId);

    /// The bus lost its connection and has it again: changes published meanwhile (this node's
    /// and the others') are lost, so the listener reports its own state again and refreshes
    /// what it watches.
    fn reconnected(&self);
}

/// Carries [`ClusterNotice`]s between the engine nodes of one deployment.
///
/// # Contract (checked by the conformance suite in `storage/tests/cluster_bus.rs`)
/// - A notice published about a conversation reaches every listener subscribed to that
///   conversation (of that tenant) on every *other* node that is connected, in the order one
///   node published them; a node does not hear its own notices.
/// - Delivery is at most once: a notice published while a node is disconnected is lost to it,
///   and the node's listeners are told with [`ClusterListener::reconnected`] when it is back.
///   Notices are hints: what they announce is in the shared store.
/// - Neither `publish` nor `subscribe` waits on the network; a bus that cannot keep up drops
///   notices (and says so in its logs) rather than buffering without bound.
pub trait ClusterBus: Send + Sync + 'static {
    /// This node's id, unique in the deployment.
    fn node_id(&self) -> &str;

    /// Publishes `notice` about a conversation to the other nodes.
    fn publish(&self, tenant_id: &TenantId, conversation_id: ConversationId, notice: ClusterNotice);

    /// Delivers the other nodes' notices about a conversation to `listener` until the returned
    /// subscription is dropped.
    fn subscribe(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        listener: std::sync::Arc<dyn ClusterListener>,
    ) -> ClusterSubscription;

    /// Tells the other nodes that a user's presence changed on this one (see
    /// [`PresenceDirectory`]).
    fn publish_presence(&self, tenant_id: &TenantId, user_id: &UserId);

    /// Delivers the other nodes' presence changes, for every tenant, to `listener` until the
    /// returned subscription is dropped.
    fn subscribe_presence(
        &self,
        listener: std::sync::Arc<dyn PresenceListener>,
    ) -> ClusterSubscription;

    /// Whether the bus is connected (for readiness probes); the error says what is missing.
    ///
    /// # Errors
    /// A description of why the bus is not connected.
    fn ready(&self) -> Result<(), String>;
}

/// Rate-limit budgets shared by every node of a deployment, so that a user's limits hold
/// across nodes rather than per node.
///
/// # Contract (checked by the conformance suite in `storage/tests/shared_rate_limits.rs`)
/// - A budget is named by tenant, user and action class; budgets never affect one another.
/// - A full budget allows `limit.burst` (at least 1) takes at once, then refuses with the
///   milliseconds until the next token; it refills at `limit.per_minute` tokens a minute.
/// - Every instance connected to the same backend shares the budgets.
/// - A disabled limit (`per_minute == 0`) always allows, without asking the backend.
#[async_trait]
pub trait SharedRateLimiter: Send + Sync + 'static {
    /// Takes one token from the budget: `Ok(Ok(()))` if there was one, `Ok(Err(ms))` with the
    /// time until there is one.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend could not be asked.
    async fn try_take(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        class: ActionClass,
        limit: RateLimit,
    ) -> Result<Result<(), u64>, StoreError>;
}

/// What one node knows of a user's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NodePresence {
    /// The user has sessions on this node.
    Online,
    /// The user has sessions on this node and said they are away.
    Away,
    /// The user's last session on this node closed at this time.
    Gone {
        /// When.
        last_seen: Timestamp,
    },
}

/// Presence across the nodes of a deployment: each node reports what it knows of its own
/// users, and anyone can ask for a user's presence as a whole.
///
/// # Contract (checked by the conformance suite in `storage/tests/presence_directory.rs`)
/// - A user is online if some live node reports them online, else away if some live node
///   reports them away, else offline with the latest `last_seen` any node reported (unknown if
///   none did).
/// - A node that stops (without reporting) stops counting once the directory notices it is
///   gone; how soon is the adapter's to document.
/// - Users of different tenants never affect one another.
#[async_trait]
pub trait PresenceDirectory: Send + Sync + 'static {
    /// Records what this node knows of a user.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend could not be reached.
    async fn report(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        presence: NodePresence,
    ) -> Result<(), StoreError>;

    /// The user's presence across every live node.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend could not be reached.
    async fn lookup(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<crate::event::PresenceEntry, StoreError>;
}

/// The source of the current time and of randomness for ids.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}
