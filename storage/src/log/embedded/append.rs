//! The embedded store's writes: creating a conversation and appending a batch, under the writer
//! mutex.
//! Each call checks, stages (through the shared staging rules) and writes in one fjall batch
//! committed with an fsync, so the checks, the seq assignment and the write are atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use fjall::{PersistMode, Readable};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{Conversation, ConversationSnapshot, Member};
use switchboard_engine::operations::{ConversationEventBody, LogEntry};
use switchboard_engine::ports::{AppendEntry, AppendOutcome};

use super::event_log::EventLogBatch;
use super::*;
use crate::Result;
use crate::codec;
use crate::keys;
use crate::log::staging::{LogView, StageError, repeat_outcome, stage_entry};
use switchboard_engine::direct::direct_pair;

/// What one append batch has staged for one conversation but not yet committed.
pub(super) struct PendingConversation {
    /// The head after the batch's Stored entries for this conversation.
    pub(super) head: Seq,
    /// The idempotency keys (author, client id) those entries claimed, with their seqs.
    pub(super) client_ids: HashMap<(UserId, ClientId), Seq>,
    /// Every log record the batch writes, new or rewritten, by seq: written to the batch once
    /// each at the end (a batch must not hold two writes of one key).
    pub(super) entries: BTreeMap<Seq, LogEntry>,
    /// The seqs of the messages the batch adds.
    pub(super) message_seqs: HashMap<MessageId, Seq>,
    /// When the batch changes the conversation itself: the conversation as stored before the
    /// batch, and as the batch leaves it.
    pub(super) conversation: Option<(ConversationSnapshot, ConversationSnapshot)>,
}

/// One conversation's log as a batch being staged sees it: its own staged records first, then
/// the snapshot.
pub(super) struct StagingView<'view> {
    pub(super) reader: &'view EmbeddedReader<'view>,
    pub(super) tenant_id: &'view TenantId,
    pub(super) conversation_id: ConversationId,
    pub(super) pending: Option<&'view PendingConversation>,
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

impl EmbeddedShared {
    pub(super) fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(|poisoned| {
            // A writer panicked, possibly between its commit and its cache update, so the head
            // cache may disagree with the disk. It is only a cache: empty it and reload lazily.
            let mut writer = poisoned.into_inner();
            writer.heads.clear();
            self.writer.clear_poison();
            writer
        })
    }

    pub(super) fn create_conversation(
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
        if let Some((first, second)) = direct_pair(conversation.kind, members) {
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
            insert_member(tables, &mut batch, tenant_id, conversation_id, member)?;
        }
        batch
            .commit()
            .map_err(|error| unavailable("could not commit a new conversation", error))
    }

    pub(super) fn append(
        &self,
        entries: Vec<AppendEntry>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
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
        let mut event_log = EventLogBatch::default();

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
            event_log.push(&tenant_id, conversation_id, seq);
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
        let mut event_log_head = match writer.event_log_head {
            Some(position) => position,
            None => reader.event_log_head()?,
        };
        for record in event_log.into_records()? {
            event_log_head += 1;
            batch.insert(&tables.event_log, event_log_head.to_be_bytes(), record);
        }
        match batch.commit() {
            Ok(()) => {
                writer.event_log_head = Some(event_log_head);
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
                writer.event_log_head = None;
                tracing::error!(%error, n_conversations = pending.len(), "append commit failed");
                Err(unavailable("could not commit an append batch", error))
            }
        }
    }

    pub(super) fn ping(&self) -> Result<(), StoreError> {
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

/// Writes a conversation record and the difference between two member lists (and the
/// user_conversations index with them) into a batch.
pub(super) fn write_conversation_change(
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
        insert_member(tables, batch, tenant_id, conversation_id, member)?;
    }
    Ok(())
}

/// Writes a member record and its entry in the user_conversations index into a batch.
fn insert_member(
    tables: &EmbeddedTables,
    batch: &mut fjall::OwnedWriteBatch,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    member: &Member,
) -> Result<(), StoreError> {
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
    Ok(())
}
