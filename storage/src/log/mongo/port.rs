//! The [`MessageStore`] impl of the MongoDB store, and the small reads and writes of its side
//! collections.

use std::collections::BTreeSet;

use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, LogEntry};
use switchboard_engine::ports::{
    AppendEntry, AppendOutcome, EventLog, LogCursor, MessageStore, TailEntry, TailScope,
};

use super::*;
use crate::codec;
use switchboard_engine::direct::ordered;

impl MongoMessageStore {
    pub(super) async fn read_record<Record: serde::de::DeserializeOwned + Default>(
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

    pub(super) async fn write_record(
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
    pub(super) async fn find_entries(
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

    pub(super) async fn find_messages(
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

#[async_trait]
impl EventLog for MongoMessageStore {
    async fn tail(
        &self,
        scope: &TailScope,
        from: LogCursor,
        limit: usize,
    ) -> Result<Vec<TailEntry>, StoreError> {
        self.ready().await?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! {
            "log_position": {"$gt": i64::try_from(from.0).unwrap_or(i64::MAX)},
        };
        if let TailScope::Tenant(tenant_id) = scope {
            filter.insert("tenant", tenant_id.as_str());
        }
        let cursor = self
            .entries
            .find(filter)
            .sort(doc! {"log_position": 1})
            .limit(limit_of(limit))
            .await
            .map_err(|error| unavailable("could not read the event log", &error))?;
        collect(cursor)
            .await?
            .iter()
            .map(|document| {
                let position = document.get_i64("log_position").map_err(|_| {
                    StoreError::Corrupt("an entry has a malformed log position".to_owned())
                })?;
                let tenant_id = TenantId::parse(document.get_str("tenant").unwrap_or_default())
                    .map_err(|_| {
                        StoreError::Corrupt("an entry has a malformed tenant".to_owned())
                    })?;
                Ok(TailEntry {
                    cursor: LogCursor(u64::try_from(position).unwrap_or_default()),
                    tenant_id,
                    entry: decode_entry(document)?,
                })
            })
            .collect()
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
            .count_documents({
                let mut filter = doc! {
                    "tenant": tenant_id.as_str(),
                    "conversation": conversation_id.to_string(),
                    "seq": {"$gt": seq_to_bson(after)},
                };
                filter.extend(unread_filter(user_id));
                filter
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
