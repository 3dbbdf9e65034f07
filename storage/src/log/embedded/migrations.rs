//! Migrations of data an earlier version of the embedded store wrote, run when the store opens.
//!
//! Each moves a legacy table into its current one in fsynced batches that insert the new
//! records and remove the old ones together, so an interrupted migration resumes where it
//! stopped; the emptied legacy table is then deleted.

use std::path::Path;

use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode, Slice};
use switchboard_engine::ids::{ConversationId, Seq, TenantId};
use switchboard_engine::operations::LogEntry;

use super::event_log::EventLogBatch;
use super::*;
use crate::Result;
use crate::codec;
use crate::keys;

/// How many legacy records one migration batch moves.
const LEGACY_RECORDS_PER_BATCH: usize = 10_000;

/// Runs every migration, logging those that moved anything.
pub(super) fn migrate(tables: &EmbeddedTables, path: &Path) -> Result<(), fjall::Error> {
    let migrations: [(&str, &Keyspace, &str, Rewrite<'_>); 2] = [
        (
            LEGACY_CLIENT_IDS,
            &tables.client_ids,
            "scoped the idempotency keys written by an earlier version by author",
            &|key, value| author_client_id_key(tables, key, value).map(|key| (key, value.to_vec())),
        ),
        (
            LEGACY_EVENT_LOG,
            &tables.event_log,
            "moved the event log an earlier version wrote to one record per append",
            &|key, value| one_entry_event_record(value).map(|record| (key.to_vec(), record)),
        ),
    ];
    for (legacy_table, target, what, rewrite) in migrations {
        let n_migrated = move_legacy_table(tables, legacy_table, target, rewrite)?;
        if n_migrated > 0 {
            tracing::info!(path = %path.display(), n_migrated, "{what}");
        }
    }
    Ok(())
}

/// How a legacy record becomes a current one: its new key and value, or `None` if it cannot be
/// read (it is then dropped with a warning).
type Rewrite<'tables> = &'tables dyn Fn(&[u8], &[u8]) -> Option<(Vec<u8>, Vec<u8>)>;

/// Moves every record of `legacy_table`, rewritten, into `target`, then deletes the legacy
/// table. Returns how many records moved.
fn move_legacy_table(
    tables: &EmbeddedTables,
    legacy_table: &str,
    target: &Keyspace,
    rewrite: Rewrite<'_>,
) -> Result<usize, fjall::Error> {
    let database = &tables.database;
    if !database.keyspace_exists(legacy_table) {
        return Ok(0);
    }
    let legacy = database.keyspace(legacy_table, KeyspaceCreateOptions::default)?;
    let mut n_migrated = 0;
    loop {
        let moves = legacy
            .iter()
            .take(LEGACY_RECORDS_PER_BATCH)
            .map(|guard| guard.into_inner())
            .collect::<Result<Vec<(Slice, Slice)>, fjall::Error>>()?;
        if moves.is_empty() {
            break;
        }
        let mut batch = database.batch().durability(Some(PersistMode::SyncAll));
        for (legacy_key, value) in &moves {
            batch.remove(&legacy, legacy_key.clone());
            match rewrite(legacy_key, value) {
                Some((key, value)) => batch.insert(target, key, value),
                None => tracing::warn!(
                    table = legacy_table,
                    key = ?legacy_key.as_ref(),
                    "dropped a legacy record that could not be read"
                ),
            }
        }
        batch.commit()?;
        n_migrated += moves.len();
    }
    database.delete_keyspace(legacy)?;
    Ok(n_migrated)
}

/// The idempotency keys an earlier version wrote, before keys were scoped by author (the
/// legacy `client_ids` table, `[tenant][conversation][client id]` -> seq), move to
/// `author_client_ids`, reading each entry's author from the log. Keys of the legacy table were
/// unique per conversation, so each names exactly one entry and moves to exactly one author's key.
///
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

/// The event log an earlier version wrote, one record per entry (`event_log`: position ->
/// tenant, conversation and seq), moves into one-entry records of `event_log_records` at the
/// same positions, so the order is kept and new appends go on after it. Cursors of the old
/// layout do not carry over (a tail from one reads from the start); nothing followed the log
/// when it had that layout.
fn one_entry_event_record(value: &[u8]) -> Option<Vec<u8>> {
    let (tenant_id, conversation_id, seq) =
        codec::decode::<(TenantId, ConversationId, Seq)>(LEGACY_EVENT_LOG, value).ok()?;
    let mut record = EventLogBatch::default();
    record.push(&tenant_id, conversation_id, seq);
    record.into_records().ok()?.pop()
}
