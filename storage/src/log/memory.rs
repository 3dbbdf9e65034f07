//! The in-memory [`MessageStore`]: ordered maps behind one mutex.
//!
//! This is the test double every other crate uses by default, so it implements the whole
//! contract (tenant scoping, seq assignment, idempotency checks, ordering, applying events through
//! [`crate::log::staging`]) exactly like the embedded
//! store, only without durability: everything is gone when the store is dropped.
//! All state sits behind one `std::sync::Mutex`. Every method takes the lock, works on plain
//! maps and releases it without awaiting anything, so a blocking mutex is both correct and
//! cheaper than an async one; holding the lock across the whole of `append` is what makes the
//! client-id check and the seq assignment atomic with the write.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::ports::{
    AppendEntry, AppendOutcome, EventLog, LogCursor, MessageStore, TailEntry, TailScope,
};
use switchboard_engine::unread::counts_as_unread;

use crate::log::staging::{LogView, StageError, repeat_outcome, stage_entry};
use switchboard_engine::direct::{direct_pair, ordered};

/// A conversation and its members, keyed by user id so they come out in user id order.
struct ConversationRecord {
    conversation: Conversation,
    members: BTreeMap<UserId, Member>,
}

/// The log of one conversation and its lookup indexes.
#[derive(Default)]
struct MessageLog {
    /// Entries by seq; the last key is the conversation's head.
    entries: BTreeMap<Seq, LogEntry>,
    /// Every entry's idempotency key, scoped by its author.
    seq_by_client_id: BTreeMap<(UserId, ClientId), Seq>,
    /// Messages only.
    seq_by_message_id: BTreeMap<MessageId, Seq>,
    /// Replies by thread root.
    thread_replies: BTreeSet<(MessageId, Seq)>,
    /// The seqs of moderation events.
    moderation_seqs: BTreeSet<Seq>,
}

impl MessageLog {
    fn head(&self) -> Seq {
        self.entries
            .last_key_value()
            .map_or(Seq::ZERO, |(seq, _)| *seq)
    }

    fn message_at(&self, seq: Seq) -> Option<&Message> {
        self.entries.get(&seq).and_then(LogEntry::as_message)
    }

    fn write(&mut self, entry: LogEntry) {
        self.entries.insert(entry.seq(), entry);
    }
}

/// One conversation's log and record, as staging reads them.
struct MemoryView<'tables> {
    log: &'tables MessageLog,
    record: Option<&'tables ConversationRecord>,
}

impl LogView for MemoryView<'_> {
    fn entry_at(&self, seq: Seq) -> Result<Option<LogEntry>, StoreError> {
        Ok(self.log.entries.get(&seq).cloned())
    }

    fn message_seq(&self, message_id: MessageId) -> Result<Option<Seq>, StoreError> {
        Ok(self.log.seq_by_message_id.get(&message_id).copied())
    }

    fn conversation(&self) -> Result<Option<ConversationSnapshot>, StoreError> {
        Ok(self.record.map(ConversationRecord::snapshot))
    }
}

impl ConversationRecord {
    fn snapshot(&self) -> ConversationSnapshot {
        ConversationSnapshot {
            conversation: self.conversation.clone(),
            members: self.members.values().cloned().collect(),
        }
    }
}

/// Every table, each keyed by tenant first like the embedded store's keys.
#[derive(Default)]
struct MemoryTables {
    conversations: BTreeMap<(TenantId, ConversationId), ConversationRecord>,
    user_conversations: BTreeSet<(TenantId, UserId, ConversationId)>,
    message_logs: BTreeMap<(TenantId, ConversationId), MessageLog>,
    /// The event log: every stored entry's place, in store order; an entry's cursor is its
    /// index plus one.
    event_log: Vec<(TenantId, ConversationId, Seq)>,
    read_cursors: BTreeMap<(TenantId, ConversationId, UserId), ReadCursors>,
    member_settings: BTreeMap<(TenantId, ConversationId, UserId), MemberSettings>,
    hidden: BTreeSet<(TenantId, ConversationId, UserId, MessageId)>,
    /// Direct conversations by their pair of members, lower user id first.
    direct_pairs: BTreeMap<(TenantId, UserId, UserId), ConversationId>,
}

impl MemoryTables {
    /// The log of one conversation, if anything was ever appended to it.
    fn log(&self, tenant_id: &TenantId, conversation_id: ConversationId) -> Option<&MessageLog> {
        self.message_logs.get(&(tenant_id.clone(), conversation_id))
    }
}

/// A [`MessageStore`] that keeps everything in memory.
///
/// It satisfies the same contract as [`EmbeddedMessageStore`](crate::EmbeddedMessageStore),
/// except that "durable" means "until the store is dropped".
#[derive(Default)]
pub struct MemoryMessageStore {
    /// All tables. Never held across an `.await`; see the module docs.
    tables: Mutex<MemoryTables>,
}

impl MemoryMessageStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryTables> {
        // A panic while the lock was held would come from a bug or an allocation failure. The
        // maps hold plain data, and every method checks before it mutates, so carrying on is
        // better than turning every later call into a panic.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lowest conversation id, used as the start of an unbounded id range.
fn lowest_conversation_id() -> ConversationId {
    ConversationId::from_bytes([0; 16])
}

#[async_trait]
impl EventLog for MemoryMessageStore {
    async fn tail(
        &self,
        scope: &TailScope,
        from: LogCursor,
        limit: usize,
    ) -> Result<Vec<TailEntry>, StoreError> {
        let tables = self.lock();
        let first = usize::try_from(from.0).unwrap_or(usize::MAX);
        Ok(tables
            .event_log
            .iter()
            .enumerate()
            .skip(first)
            .filter(|(_, (tenant_id, _, _))| scope.covers(tenant_id))
            .take(limit)
            .filter_map(|(index, (tenant_id, conversation_id, seq))| {
                let entry = tables.log(tenant_id, *conversation_id)?.entries.get(seq)?;
                Some(TailEntry {
                    cursor: LogCursor(u64::try_from(index).unwrap_or(u64::MAX) + 1),
                    tenant_id: tenant_id.clone(),
                    entry: entry.clone(),
                })
            })
            .collect())
    }
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        let tenant_id = &conversation.tenant_id;
        let conversation_key = (tenant_id.clone(), conversation.conversation_id);
        if tables.conversations.contains_key(&conversation_key) {
            return Err(StoreError::AlreadyExists);
        }
        let pair = direct_pair(conversation.kind, members);
        if let Some((first, second)) = &pair {
            let pair_key = (tenant_id.clone(), first.clone(), second.clone());
            if tables.direct_pairs.contains_key(&pair_key) {
                return Err(StoreError::AlreadyExists);
            }
            tables
                .direct_pairs
                .insert(pair_key, conversation.conversation_id);
        }
        let members_by_user: BTreeMap<UserId, Member> = members
            .iter()
            .map(|member| (member.user_id.clone(), member.clone()))
            .collect();
        for user_id in members_by_user.keys() {
            tables.user_conversations.insert((
                tenant_id.clone(),
                user_id.clone(),
                conversation.conversation_id,
            ));
        }
        tables.conversations.insert(
            conversation_key,
            ConversationRecord {
                conversation: conversation.clone(),
                members: members_by_user,
            },
        );
        Ok(())
    }

    async fn direct_conversation(
        &self,
        tenant_id: &TenantId,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationId>, StoreError> {
        let (first, second) = ordered(first, second);
        let tables = self.lock();
        Ok(tables
            .direct_pairs
            .get(&(tenant_id.clone(), first.clone(), second.clone()))
            .copied())
    }

    async fn load_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError> {
        let tables = self.lock();
        Ok(tables
            .conversations
            .get(&(tenant_id.clone(), conversation_id))
            .map(ConversationRecord::snapshot))
    }

    async fn conversations_of_user(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        let tables = self.lock();
        let start = match after {
            Some(after) => Bound::Excluded((tenant_id.clone(), user_id.clone(), after)),
            None => Bound::Included((tenant_id.clone(), user_id.clone(), lowest_conversation_id())),
        };
        Ok(tables
            .user_conversations
            .range((start, Bound::Unbounded))
            .take_while(|(entry_tenant_id, entry_user_id, _)| {
                entry_tenant_id == tenant_id && entry_user_id == user_id
            })
            .take(limit)
            .map(|(_, _, conversation_id)| *conversation_id)
            .collect())
    }

    async fn head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError> {
        let tables = self.lock();
        Ok(tables
            .log(tenant_id, conversation_id)
            .map_or(Seq::ZERO, MessageLog::head))
    }

    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        let mut tables = self.lock();
        let MemoryTables {
            conversations,
            user_conversations,
            message_logs,
            event_log,
            ..
        } = &mut *tables;
        let mut outcomes = Vec::with_capacity(entries.len());
        // Nothing below can fail, so each Stored entry is applied at once; later entries of the
        // batch then see it exactly as the embedded store's pending state lets them see it.
        for AppendEntry {
            tenant_id,
            mut entry,
        } in entries
        {
            let key = (tenant_id, entry.conversation_id());
            let log = message_logs.entry(key.clone()).or_default();
            let client_key = (entry.author().clone(), entry.client_id().clone());
            if let Some(stored) = log
                .seq_by_client_id
                .get(&client_key)
                .and_then(|seq| log.entries.get(seq))
            {
                outcomes.push(repeat_outcome(stored, &entry));
                continue;
            }
            // Seqs are assigned here, next after the head, as the embedded store does.
            let seq = log.head().next();
            entry.set_seq(seq);
            let view = MemoryView {
                log,
                record: conversations.get(&key),
            };
            let staged = match stage_entry(&view, &mut entry) {
                Ok(staged) => staged,
                Err(StageError::Refused(error)) => {
                    outcomes.push(AppendOutcome::Refused { error });
                    continue;
                }
                Err(StageError::Store(error)) => return Err(error),
            };
            log.seq_by_client_id.insert(client_key, seq);
            if let LogEntry::Message(message) = &entry {
                log.seq_by_message_id.insert(message.message_id, seq);
                if let Some(root) = message.thread_root {
                    log.thread_replies.insert((root, seq));
                }
            }
            if let LogEntry::Event(event) = &entry
                && matches!(event.body, ConversationEventBody::Moderated { .. })
            {
                log.moderation_seqs.insert(seq);
            }
            if let (Some(snapshot), Some(record)) =
                (staged.conversation, conversations.get_mut(&key))
            {
                let (tenant_id, conversation_id) = &key;
                for user_id in record.members.keys() {
                    user_conversations.remove(&(
                        tenant_id.clone(),
                        user_id.clone(),
                        *conversation_id,
                    ));
                }
                for member in &snapshot.members {
                    user_conversations.insert((
                        tenant_id.clone(),
                        member.user_id.clone(),
                        *conversation_id,
                    ));
                }
                record.conversation = snapshot.conversation;
                record.members = snapshot
                    .members
                    .into_iter()
                    .map(|member| (member.user_id.clone(), member))
                    .collect();
            }
            let completed = staged.completed.then(|| Box::new(entry.clone()));
            log.write(entry);
            event_log.push((key.0.clone(), key.1, seq));
            for rewrite in &staged.rewrites {
                log.write(rewrite.clone());
            }
            outcomes.push(AppendOutcome::Stored {
                seq,
                completed,
                rewritten: staged.rewrites,
            });
        }
        Ok(outcomes)
    }

    async fn entry_by_client_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        author: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<LogEntry>, StoreError> {
        let tables = self.lock();
        Ok(tables.log(tenant_id, conversation_id).and_then(|log| {
            log.seq_by_client_id
                .get(&(author.clone(), client_id.clone()))
                .and_then(|seq| log.entries.get(seq))
                .cloned()
        }))
    }

    async fn message_by_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let tables = self.lock();
        Ok(tables.log(tenant_id, conversation_id).and_then(|log| {
            log.seq_by_message_id
                .get(&message_id)
                .and_then(|seq| log.message_at(*seq).cloned())
        }))
    }

    async fn entries_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(Vec::new());
        };
        Ok(log
            .entries
            .range((Bound::Excluded(after), Bound::Unbounded))
            .take(limit)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    async fn thread_replies(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(Vec::new());
        };
        Ok(log
            .thread_replies
            .range((Bound::Excluded((root, after)), Bound::Unbounded))
            .take_while(|(entry_root, _)| *entry_root == root)
            .filter_map(|(_, seq)| log.message_at(*seq).cloned())
            .take(limit)
            .collect())
    }

    async fn messages_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(Vec::new());
        };
        Ok(log
            .entries
            .range((Bound::Excluded(after), Bound::Unbounded))
            .filter_map(|(_, entry)| entry.as_message().cloned())
            .take(limit)
            .collect())
    }

    async fn messages_before(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(Vec::new());
        };
        let end = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(log
            .entries
            .range((Bound::Unbounded, end))
            .rev()
            .filter_map(|(_, entry)| entry.as_message().cloned())
            .take(limit)
            .collect())
    }

    async fn moderation_log(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(Vec::new());
        };
        let end = before.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(log
            .moderation_seqs
            .range((Bound::Unbounded, end))
            .rev()
            .filter_map(|seq| match log.entries.get(seq) {
                Some(LogEntry::Event(event)) => Some(event.clone()),
                _ => None,
            })
            .take(limit)
            .collect())
    }

    async fn hide_message(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        message_id: MessageId,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.hidden.insert((
            tenant_id.clone(),
            conversation_id,
            user_id.clone(),
            message_id,
        ));
        Ok(())
    }

    async fn hidden_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<BTreeSet<MessageId>, StoreError> {
        let tables = self.lock();
        let lowest = MessageId::from_bytes([0; 16]);
        Ok(tables
            .hidden
            .range((tenant_id.clone(), conversation_id, user_id.clone(), lowest)..)
            .take_while(|(entry_tenant, entry_conversation, entry_user, _)| {
                entry_tenant == tenant_id
                    && *entry_conversation == conversation_id
                    && entry_user == user_id
            })
            .map(|(_, _, _, message_id)| *message_id)
            .collect())
    }

    async fn member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<MemberSettings, StoreError> {
        let tables = self.lock();
        Ok(tables
            .member_settings
            .get(&(tenant_id.clone(), conversation_id, user_id.clone()))
            .copied()
            .unwrap_or_default())
    }

    async fn set_member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        settings: MemberSettings,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.member_settings.insert(
            (tenant_id.clone(), conversation_id, user_id.clone()),
            settings,
        );
        Ok(())
    }

    async fn read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<ReadCursors, StoreError> {
        let tables = self.lock();
        Ok(tables
            .read_cursors
            .get(&(tenant_id.clone(), conversation_id, user_id.clone()))
            .copied()
            .unwrap_or_default())
    }

    async fn set_read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        cursors: ReadCursors,
    ) -> Result<(), StoreError> {
        let mut tables = self.lock();
        tables.read_cursors.insert(
            (tenant_id.clone(), conversation_id, user_id.clone()),
            cursors,
        );
        Ok(())
    }

    async fn count_unread(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        after: Seq,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let tables = self.lock();
        let Some(log) = tables.log(tenant_id, conversation_id) else {
            return Ok(0);
        };
        Ok(log
            .entries
            .range((Bound::Excluded(after), Bound::Unbounded))
            .filter(|(_, entry)| counts_as_unread(entry, user_id))
            .take(limit)
            .count())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Taking the lock is the only thing that could fail to answer.
        drop(self.lock());
        Ok(())
    }
}
