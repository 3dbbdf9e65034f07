//! The embedded store's reads: one consistent fjall snapshot per call, and the decoding of what
//! a scan returns.

use fjall::{Iter, Keyspace, Readable, Snapshot};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId};
use switchboard_engine::model::{Conversation, ConversationSnapshot, Member, Message};
use switchboard_engine::operations::LogEntry;

use switchboard_engine::ports::{LogCursor, TailEntry, TailScope};

use super::event_log::{EventRun, cursor, split_cursor};
use super::*;
use crate::Result;
use crate::codec;
use crate::keys;

impl EmbeddedTables {
    pub(super) fn reader(&self) -> EmbeddedReader<'_> {
        EmbeddedReader {
            tables: self,
            snapshot: self.database.snapshot(),
        }
    }
}

/// Reads from one consistent snapshot of the tables: only published (and so durable) batches,
/// each either entirely or not at all.
pub(super) struct EmbeddedReader<'tables> {
    pub(super) tables: &'tables EmbeddedTables,
    pub(super) snapshot: Snapshot,
}

impl EmbeddedReader<'_> {
    /// A conversation and its members, in user id order.
    pub(super) fn snapshot_of(
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

    /// The position of the event log's last record (0 when it is empty).
    pub(super) fn event_log_head(&self) -> Result<u64, StoreError> {
        let Some(last) = self.snapshot.iter(&self.tables.event_log).next_back() else {
            return Ok(0);
        };
        let key = last
            .key()
            .map_err(|error| unavailable("could not read the event log", error))?;
        position_from_key(&key)
    }

    /// The entries of `scope` after `from` in the event log, at most `limit`.
    pub(super) fn tail(
        &self,
        scope: &TailScope,
        from: LogCursor,
        limit: usize,
    ) -> Result<Vec<TailEntry>, StoreError> {
        let mut tail = Vec::new();
        let (from_position, from_offset) = split_cursor(from);
        for guard in self
            .snapshot
            .range(&self.tables.event_log, from_position.to_be_bytes()..)
        {
            let (key, value) = guard
                .into_inner()
                .map_err(|error| unavailable("could not read the event log", error))?;
            let position = position_from_key(&key)?;
            let runs = codec::decode::<Vec<EventRun>>(EVENT_LOG, &value)?;
            let entries = runs
                .iter()
                .flat_map(|run| run.seqs().map(move |seq| (run, seq)))
                .enumerate()
                .filter(|(offset, _)| position > from_position || *offset > from_offset);
            for (offset, (run, seq)) in entries {
                if tail.len() >= limit {
                    return Ok(tail);
                }
                if !scope.covers(&run.tenant_id) {
                    continue;
                }
                let entry = self
                    .entry_at(&run.tenant_id, run.conversation_id, seq)?
                    .ok_or_else(|| {
                        StoreError::Corrupt("an event log entry names no entry".to_owned())
                    })?;
                tail.push(TailEntry {
                    cursor: cursor(position, offset),
                    tenant_id: run.tenant_id.clone(),
                    entry,
                });
            }
        }
        Ok(tail)
    }

    /// The highest stored seq of a conversation, from its last messages key.
    pub(super) fn load_head(
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

    pub(super) fn entry_at(
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

    pub(super) fn message_seq(
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
    pub(super) fn message_at(
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
    pub(super) fn entry_from_index(
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

/// Decodes log entries from a scan, in the scan's direction.
pub(super) fn decode_entries(
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
pub(super) fn collect_messages(
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
pub(super) fn collect_conversation_ids(
    scan: Iter,
    limit: usize,
) -> Result<Vec<ConversationId>, StoreError> {
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

/// The position an event log key holds.
pub(super) fn position_from_key(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("an event log key is not 8 bytes".to_owned()))
}
