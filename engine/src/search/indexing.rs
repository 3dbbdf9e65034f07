//! What the search index must do for each entry of the event log: the pure half of the
//! indexer. The log gives each message in its current state, so a message entry is indexed as
//! it is now (or removed, if it has since been deleted for everyone); an edit asks for the
//! message to be read again and indexed as it is then ([`IndexAction::Refresh`]); a delete
//! removes it. Every action is idempotent, so an entry applied twice (a replay after a crash
//! between two batches cannot happen, but a refresh may see a later state) leaves the index as
//! once. Reactions, threads' counters and membership change nothing here: who may read what
//! is decided at query time.

use super::index::{IndexChange, SearchDocument};
use crate::ids::{ConversationId, MessageId, TenantId};
use crate::model::Message;
use crate::operations::{ConversationEventBody, LogEntry};

/// One thing the indexer does for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexAction {
    /// Apply this change.
    Change(IndexChange),
    /// Read the message as it is now and index that ([`change_of`]); nothing if it is gone.
    Refresh {
        /// Its tenant.
        tenant_id: TenantId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// The message.
        message_id: MessageId,
    },
}

/// The actions for one log entry of `tenant_id`.
pub fn actions_of(tenant_id: &TenantId, entry: &LogEntry) -> Vec<IndexAction> {
    match entry {
        LogEntry::Message(message) => vec![IndexAction::Change(change_of(tenant_id, message))],
        LogEntry::Event(event) => match &event.body {
            ConversationEventBody::MessageEdited { message_id, .. } => {
                vec![IndexAction::Refresh {
                    tenant_id: tenant_id.clone(),
                    conversation_id: event.conversation_id,
                    message_id: *message_id,
                }]
            }
            ConversationEventBody::MessageDeleted { message_id, .. } => {
                vec![IndexAction::Change(IndexChange::Remove {
                    tenant_id: tenant_id.clone(),
                    conversation_id: event.conversation_id,
                    message_id: *message_id,
                })]
            }
            _ => Vec::new(),
        },
    }
}

/// A message as the index should have it: its document, or its removal once deleted for
/// everyone.
pub fn change_of(tenant_id: &TenantId, message: &Message) -> IndexChange {
    if message.state.deleted.is_some() {
        return IndexChange::Remove {
            tenant_id: tenant_id.clone(),
            conversation_id: message.conversation_id,
            message_id: message.message_id,
        };
    }
    IndexChange::Put(SearchDocument {
        tenant_id: tenant_id.clone(),
        conversation_id: message.conversation_id,
        message_id: message.message_id,
        seq: message.seq,
        sender_id: message.sender_id.clone(),
        sent_at: message.ts,
        text: message.text.clone(),
        has_attachment: !message.attachments.is_empty(),
    })
}
