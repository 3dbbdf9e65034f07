//! Key encoding for the embedded store's tables.
//!
//! Every key starts with the tenant, written as one length byte followed by the tenant id's
//! bytes, and then (for conversation-scoped tables) the conversation id's 16 big-endian bytes.
//! The length prefix is what keeps tenants apart: without it, tenant `a` with a conversation id
//! starting with byte `b` would share a prefix with tenant `ab`, and a prefix scan of one could
//! return the other's rows.
//! Variable-length parts after the conversation (user ids, client ids) are length-prefixed for
//! the same reason; sequence numbers are 8 big-endian bytes so that byte order is numeric order.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | conversations | `[tenant][conversation]` | `Conversation` |
//! | members | `[tenant][conversation][user]` | `Member` |
//! | user_conversations | `[tenant][user][conversation]` | empty |
//! | messages (the log) | `[tenant][conversation][seq]` | `LogEntry` (a message in its current state, or an event) |
//! | author_client_ids | `[tenant][conversation][author][client id]` | `Seq` (of any entry) |
//! | message_ids | `[tenant][conversation][message id]` | `Seq` (of a message) |
//! | threads | `[tenant][conversation][root message id][seq]` | empty |
//! | moderation | `[tenant][conversation][seq]` | empty |
//! | read_cursors | `[tenant][conversation][user]` | `ReadCursors` |
//! | member_settings | `[tenant][conversation][user]` | `MemberSettings` |
//! | hidden | `[tenant][conversation][user][message id]` | empty |
//! | direct_pairs | `[tenant][lower user][higher user]` | `ConversationId` |
//!
//! The recording store (`recordings::embedded`) keeps its own database with these tables:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | recordings | `[tenant][recording]` | `RecordingRecord` |
//! | recordings_by_conversation | `[tenant][conversation][recording]` | empty |
//! | audit | `[tenant][audit id]` | `AuditRecord` |

use switchboard_engine::ids::{
    ClientId, ConversationId, MAX_CLIENT_ID_BYTES, MAX_NAME_ID_BYTES, MessageId, Seq, TenantId,
    UserId,
};

/// The width of an encoded conversation or message id.
pub(crate) const ULID_BYTES: usize = 16;
/// The width of an encoded sequence number.
pub(crate) const SEQ_BYTES: usize = 8;

// The length prefix is one byte; the engine validates every string id to at most this many
// bytes when it is parsed or deserialized, so the prefix can always hold the length.
const _: () = assert!(MAX_NAME_ID_BYTES <= u8::MAX as usize);
const _: () = assert!(MAX_CLIENT_ID_BYTES <= u8::MAX as usize);

fn push_length_prefixed(key: &mut Vec<u8>, bytes: &[u8]) {
    let length = u8::try_from(bytes.len())
        .expect("string ids are validated to at most 128 bytes, which fits the length byte");
    key.push(length);
    key.extend_from_slice(bytes);
}

fn tenant_key_with_capacity(tenant_id: &TenantId, n_extra_bytes: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + tenant_id.as_str().len() + n_extra_bytes);
    push_length_prefixed(&mut key, tenant_id.as_str().as_bytes());
    key
}

/// The prefix of every key of a tenant in a tenant-first table.
pub(crate) fn tenant_prefix(tenant_id: &TenantId) -> Vec<u8> {
    tenant_key_with_capacity(tenant_id, 0)
}

/// A tenant's prefix followed by a 16-byte id (a recording, an audit record): the key of a
/// record in a table keyed by tenant and id.
pub(crate) fn tenant_id_key(tenant_id: &TenantId, id: [u8; ULID_BYTES]) -> Vec<u8> {
    let mut key = tenant_key_with_capacity(tenant_id, ULID_BYTES);
    key.extend_from_slice(&id);
    key
}

/// The key of a conversation record, which is also the prefix of every key that belongs to the
/// conversation in the members, messages, client_ids and message_ids tables.
pub(crate) fn conversation_key(tenant_id: &TenantId, conversation_id: ConversationId) -> Vec<u8> {
    let mut key = tenant_key_with_capacity(tenant_id, ULID_BYTES + 1 + SEQ_BYTES);
    key.extend_from_slice(&conversation_id.to_bytes());
    key
}

/// The key of one membership in the members table.
pub(crate) fn member_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    user_id: &UserId,
) -> Vec<u8> {
    let mut key = conversation_key(tenant_id, conversation_id);
    push_length_prefixed(&mut key, user_id.as_str().as_bytes());
    key
}

/// A tenant's prefix followed by a user id: the key of a per-user record (media usage), and
/// the prefix of every user_conversations key of the user.
pub(crate) fn tenant_user_key(tenant_id: &TenantId, user_id: &UserId) -> Vec<u8> {
    let mut key = tenant_key_with_capacity(tenant_id, 1 + user_id.as_str().len() + ULID_BYTES);
    push_length_prefixed(&mut key, user_id.as_str().as_bytes());
    key
}

/// The prefix of every user_conversations key of one user.
pub(crate) fn user_conversations_prefix(tenant_id: &TenantId, user_id: &UserId) -> Vec<u8> {
    tenant_user_key(tenant_id, user_id)
}

/// The key of one entry of the user_conversations index.
pub(crate) fn user_conversation_key(
    tenant_id: &TenantId,
    user_id: &UserId,
    conversation_id: ConversationId,
) -> Vec<u8> {
    let mut key = user_conversations_prefix(tenant_id, user_id);
    key.extend_from_slice(&conversation_id.to_bytes());
    key
}

/// The key of a direct conversation's pair in the direct_pairs table (pass the lower user id
/// first).
pub(crate) fn direct_pair_key(tenant_id: &TenantId, first: &UserId, second: &UserId) -> Vec<u8> {
    let mut key = user_conversations_prefix(tenant_id, first);
    push_length_prefixed(&mut key, second.as_str().as_bytes());
    key
}

/// The key of one message in the messages table.
pub(crate) fn message_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    seq: Seq,
) -> Vec<u8> {
    let mut key = conversation_key(tenant_id, conversation_id);
    key.extend_from_slice(&seq.get().to_be_bytes());
    key
}

/// The key of one entry of the author_client_ids index (idempotency keys, scoped by author).
pub(crate) fn client_id_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    author: &UserId,
    client_id: &ClientId,
) -> Vec<u8> {
    let mut key = conversation_key(tenant_id, conversation_id);
    push_length_prefixed(&mut key, author.as_str().as_bytes());
    push_length_prefixed(&mut key, client_id.as_str().as_bytes());
    key
}

/// The conversation key (`[tenant][conversation]`) at the front of any conversation-scoped key,
/// such as a key of the legacy client_ids table (`[tenant][conversation][client id]`, written
/// before idempotency keys were scoped by author); `None` if the key is too short to hold one.
pub(crate) fn conversation_key_prefix(key: &[u8]) -> Option<&[u8]> {
    let tenant_length = usize::from(*key.first()?);
    key.get(..1 + tenant_length + ULID_BYTES)
}

/// The key of one entry of the message_ids index.
pub(crate) fn message_id_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> Vec<u8> {
    let mut key = conversation_key(tenant_id, conversation_id);
    key.extend_from_slice(&message_id.to_bytes());
    key
}

/// The prefix of every threads key of one thread.
pub(crate) fn thread_prefix(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    root: MessageId,
) -> Vec<u8> {
    message_id_key(tenant_id, conversation_id, root)
}

/// The key of one reply in the threads index.
pub(crate) fn thread_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    root: MessageId,
    seq: Seq,
) -> Vec<u8> {
    let mut key = thread_prefix(tenant_id, conversation_id, root);
    key.extend_from_slice(&seq.get().to_be_bytes());
    key
}

/// The key of a message one member hid for themself.
pub(crate) fn hidden_key(
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    user_id: &UserId,
    message_id: MessageId,
) -> Vec<u8> {
    let mut key = member_key(tenant_id, conversation_id, user_id);
    key.extend_from_slice(&message_id.to_bytes());
    key
}

/// The message id at the end of a hidden key; `None` if the key is too short.
pub(crate) fn message_id_from_hidden_key(key: &[u8]) -> Option<MessageId> {
    key.last_chunk::<ULID_BYTES>()
        .map(|bytes| MessageId::from_bytes(*bytes))
}

/// The seq at the end of a messages (or threads) key; `None` if the key is too short to hold one.
pub(crate) fn seq_from_message_key(key: &[u8]) -> Option<Seq> {
    key.last_chunk::<SEQ_BYTES>()
        .map(|bytes| Seq(u64::from_be_bytes(*bytes)))
}

/// The conversation id at the end of a user_conversations key; `None` if the key is too short.
pub(crate) fn conversation_id_from_user_conversation_key(key: &[u8]) -> Option<ConversationId> {
    key.last_chunk::<ULID_BYTES>()
        .map(|bytes| ConversationId::from_bytes(*bytes))
}

#[cfg(test)]
mod tests;
