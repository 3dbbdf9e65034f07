//! The [`MessageStore`] impl of the embedded store: each method a read on a snapshot, inline on
//! the calling task, or a write on the blocking pool.

use std::collections::BTreeSet;
use std::ops::Bound;

use async_trait::async_trait;
use fjall::{PersistMode, Readable};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, LogEntry};
use switchboard_engine::ports::{
    AppendEntry, AppendOutcome, EventLog, LogCursor, MessageStore, TailEntry, TailScope,
};
use switchboard_engine::unread::counts_as_unread;

use super::*;
use crate::Result;
use crate::codec;
use crate::keys::{self, ULID_BYTES};
use switchboard_engine::direct::ordered;

// Every read below runs inline on the calling task: each is a point lookup or a scan bounded by
// `limit`, served from fjall's memtables and block cache, and never waits for the writer mutex.
// Only the writes, which fsync, go to the blocking pool.
#[async_trait]
impl EventLog for EmbeddedMessageStore {
    async fn tail(
        &self,
        scope: &TailScope,
        from: LogCursor,
        limit: usize,
    ) -> Result<Vec<TailEntry>, StoreError> {
        self.reader().tail(scope, from, limit)
    }
}

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
