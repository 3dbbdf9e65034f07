//! The embedded store's event log: one record per append batch, not one per entry.
//!
//! A fjall entry costs a journal record, two key copies and a memtable skip-list insert, which
//! made a per-entry log the most expensive part of a message's durable write after the message
//! itself (docs/PERFORMANCE.md, "Before and after the restructure"). So each committed append
//! batch writes one record under the next position (a big-endian `u64`, so keys sort like
//! positions): the batch's Stored entries in store order, as runs of consecutive seqs of one
//! conversation. A busy conversation's 64 entries in one batch are one run of one record.
//!
//! A [`LogCursor`] names one entry: the record's position in the high 48 bits, the entry's
//! offset within the record in the low 16. A record therefore holds at most
//! [`ENTRIES_PER_RECORD`] entries; a larger batch writes several records, still in the one
//! commit. Position 0 is never written, so [`LogCursor::START`] is before every entry.

use serde::{Deserialize, Serialize};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ConversationId, Seq, TenantId};
use switchboard_engine::ports::LogCursor;

use crate::codec;

/// The most entries one record holds: the offsets the low 16 bits of a cursor can name.
pub(super) const ENTRIES_PER_RECORD: usize = 1 << OFFSET_BITS;

const OFFSET_BITS: u32 = 16;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// Consecutive entries of one conversation: `first` and the `n_more` seqs after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct EventRun {
    pub(super) tenant_id: TenantId,
    pub(super) conversation_id: ConversationId,
    pub(super) first: Seq,
    pub(super) n_more: u32,
}

impl EventRun {
    /// The seqs of the run, in order.
    pub(super) fn seqs(&self) -> impl Iterator<Item = Seq> + '_ {
        (0..=u64::from(self.n_more)).map(|step| Seq(self.first.get() + step))
    }
}

/// The entries one append batch stores, in store order, cut into records of at most
/// [`ENTRIES_PER_RECORD`] entries.
#[derive(Debug, Default)]
pub(super) struct EventLogBatch {
    /// Full records first, the one being filled last.
    records: Vec<Vec<EventRun>>,
    /// How many entries the last record holds.
    n_in_last: usize,
}

impl EventLogBatch {
    /// Adds the next Stored entry of the batch.
    pub(super) fn push(&mut self, tenant_id: &TenantId, conversation_id: ConversationId, seq: Seq) {
        if self.records.is_empty() || self.n_in_last == ENTRIES_PER_RECORD {
            self.records.push(Vec::new());
            self.n_in_last = 0;
        }
        self.n_in_last += 1;
        let runs = self.records.last_mut().expect("a record was just ensured");
        if let Some(run) = runs.last_mut()
            && run.conversation_id == conversation_id
            && run.tenant_id == *tenant_id
            && run.first.get() + u64::from(run.n_more) + 1 == seq.get()
        {
            run.n_more += 1;
            return;
        }
        runs.push(EventRun {
            tenant_id: tenant_id.clone(),
            conversation_id,
            first: seq,
            n_more: 0,
        });
    }

    /// The records to write, each with its encoded value, in order; positions follow `head`.
    pub(super) fn into_records(self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.records.iter().map(codec::encode).collect()
    }
}

/// The cursor of the entry at `offset` in the record at `position`.
pub(super) fn cursor(position: u64, offset: usize) -> LogCursor {
    LogCursor((position << OFFSET_BITS) | u64::try_from(offset).unwrap_or(OFFSET_MASK))
}

/// The record position and the offset in it that a cursor names.
pub(super) fn split_cursor(cursor: LogCursor) -> (u64, usize) {
    let offset = usize::try_from(cursor.0 & OFFSET_MASK).unwrap_or(usize::MAX);
    (cursor.0 >> OFFSET_BITS, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("test tenant ids are valid")
    }

    #[test]
    fn consecutive_seqs_of_one_conversation_make_one_run() {
        let conversation = ConversationId::from_parts(1, 1);
        let mut batch = EventLogBatch::default();
        for seq in 4..=9 {
            batch.push(&tenant("acme"), conversation, Seq(seq));
        }
        let records = batch.records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].len(), 1);
        assert_eq!(
            records[0][0].seqs().map(Seq::get).collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn another_conversation_tenant_or_a_gap_starts_a_run() {
        let first = ConversationId::from_parts(1, 1);
        let second = ConversationId::from_parts(1, 2);
        let mut batch = EventLogBatch::default();
        batch.push(&tenant("acme"), first, Seq(1));
        batch.push(&tenant("acme"), second, Seq(2));
        batch.push(&tenant("acme"), first, Seq(2));
        batch.push(&tenant("other"), first, Seq(3));
        batch.push(&tenant("other"), first, Seq(5));
        let runs = &batch.records[0];
        assert_eq!(runs.len(), 5, "{runs:?}");
        assert!(runs.iter().all(|run| run.n_more == 0));
    }

    #[test]
    fn a_batch_larger_than_a_record_is_cut_into_records() {
        let conversation = ConversationId::from_parts(1, 1);
        let mut batch = EventLogBatch::default();
        for seq in 1..=(ENTRIES_PER_RECORD as u64 + 3) {
            batch.push(&tenant("acme"), conversation, Seq(seq));
        }
        let sizes: Vec<usize> = batch
            .records
            .iter()
            .map(|runs| runs.iter().map(|run| run.seqs().count()).sum())
            .collect();
        assert_eq!(sizes, vec![ENTRIES_PER_RECORD, 3]);
        assert_eq!(
            batch.records[1][0].first.get(),
            ENTRIES_PER_RECORD as u64 + 1
        );
    }

    #[test]
    fn cursors_order_like_positions_then_offsets_and_split_back() {
        let cursors = [cursor(1, 0), cursor(1, 1), cursor(1, 65_535), cursor(2, 0)];
        assert!(cursors.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(LogCursor::START < cursors[0]);
        assert_eq!(split_cursor(cursor(7, 42)), (7, 42));
        assert_eq!(split_cursor(LogCursor::START), (0, 0));
    }
}
