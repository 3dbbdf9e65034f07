//! Migrations of data an earlier version of the embedded store wrote, run when the store opens.

use fjall::{KeyspaceCreateOptions, PersistMode};
use switchboard_engine::ids::Seq;
use switchboard_engine::operations::LogEntry;

use super::*;
use crate::Result;
use crate::codec;
use crate::keys;

/// Moves the idempotency keys an earlier version wrote, before keys were scoped by author
/// (the legacy `client_ids` table, `[tenant][conversation][client id]`), into
/// `author_client_ids`, reading each entry's author from the log. Each batch inserts the new keys
/// and removes the old ones in one fsynced commit, so an interrupted migration resumes where it
/// stopped; the emptied legacy table is then deleted. Keys of the legacy table were unique per
/// conversation, so each names exactly one entry and moves to exactly one author's key.
/// Returns how many keys moved.
pub(super) fn migrate_legacy_client_ids(tables: &EmbeddedTables) -> Result<usize, fjall::Error> {
    let database = &tables.database;
    if !database.keyspace_exists(LEGACY_CLIENT_IDS) {
        return Ok(0);
    }
    let legacy = database.keyspace(LEGACY_CLIENT_IDS, KeyspaceCreateOptions::default)?;
    let mut n_migrated = 0;
    loop {
        let mut moves = Vec::with_capacity(LEGACY_CLIENT_IDS_PER_BATCH);
        for guard in legacy.iter().take(LEGACY_CLIENT_IDS_PER_BATCH) {
            let (key, value) = guard.into_inner()?;
            moves.push((key, value));
        }
        if moves.is_empty() {
            break;
        }
        let mut batch = database.batch().durability(Some(PersistMode::SyncAll));
        for (legacy_key, value) in &moves {
            batch.remove(&legacy, legacy_key.clone());
            match author_client_id_key(tables, legacy_key, value) {
                Some(key) => batch.insert(&tables.client_ids, key, value.clone()),
                None => tracing::warn!(
                    key = ?legacy_key.as_ref(),
                    "dropped a legacy idempotency key whose entry is missing or unreadable"
                ),
            }
        }
        batch.commit()?;
        n_migrated += moves.len();
    }
    database.delete_keyspace(legacy)?;
    Ok(n_migrated)
}

/// The `author_client_ids` key of a legacy `client_ids` key and its value (the entry's seq):
/// the conversation prefix, then the author read from the entry, then the length-prefixed
/// client id the legacy key ends with. `None` if the key or its entry cannot be read.
pub(super) fn author_client_id_key(
    tables: &EmbeddedTables,
    legacy_key: &[u8],
    value: &[u8],
) -> Option<Vec<u8>> {
    let prefix = keys::conversation_key_prefix(legacy_key)?;
    let client_id = &legacy_key[prefix.len()..];
    let seq = codec::decode::<Seq>(LEGACY_CLIENT_IDS, value).ok()?;
    let mut message_key = prefix.to_vec();
    message_key.extend_from_slice(&seq.get().to_be_bytes());
    let stored = tables.messages.get(&message_key).ok()??;
    let entry = codec::decode::<LogEntry>(MESSAGES, &stored).ok()?;
    let author = entry.author().as_str().as_bytes();
    let mut key = Vec::with_capacity(prefix.len() + 1 + author.len() + client_id.len());
    key.extend_from_slice(prefix);
    key.push(u8::try_from(author.len()).ok()?);
    key.extend_from_slice(author);
    key.extend_from_slice(client_id);
    Some(key)
}
