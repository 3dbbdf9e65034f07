//! The MongoDB store's writes: transactions retried on conflict, and the append that stages a
//! batch over what the transaction fetched.
//! Staging's reads are synchronous, so an attempt stages over a cache of what it has fetched
//! ([`CachedView`]), records what was missing, fetches it and stages again; then it writes the
//! entries and moves each touched head with a compare-and-set.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use mongodb::ClientSession;
use mongodb::bson::{Document, doc};
use mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT;
use mongodb::options::ReturnDocument;
use mongodb::options::{Acknowledgment, ReadConcern, TransactionOptions, WriteConcern};
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{Conversation, ConversationSnapshot, Member};
use switchboard_engine::operations::LogEntry;
use switchboard_engine::ports::{AppendEntry, AppendOutcome};

use super::*;
use crate::log::staging::{LogView, StageError, repeat_outcome, stage_entry};
use switchboard_engine::direct::direct_pair;

impl MongoMessageStore {
    pub(crate) async fn start_transaction(&self) -> Result<ClientSession, AttemptError> {
        let mut session = self.client.start_session().await?;
        let options = TransactionOptions::builder()
            .read_concern(ReadConcern::snapshot())
            .write_concern(
                WriteConcern::builder()
                    .w(Acknowledgment::Majority)
                    .journal(true)
                    .build(),
            )
            .build();
        session.start_transaction().with_options(options).await?;
        Ok(session)
    }

    /// Commits, retrying a commit whose outcome the driver could not learn (committing twice
    /// is harmless; giving up after a commit that succeeded would report a stored entry as
    /// failed).
    pub(crate) async fn commit(session: &mut ClientSession) -> Result<(), AttemptError> {
        let mut attempts = 0;
        loop {
            match session.commit_transaction().await {
                Ok(()) => return Ok(()),
                Err(error)
                    if error.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT)
                        && attempts < MAX_COMMIT_ATTEMPTS =>
                {
                    attempts += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Runs `attempt` until it commits, backing off (with jitter) while it conflicts.
    pub(crate) async fn retrying<Output, Attempt, Future>(
        &self,
        what: &str,
        mut attempt: Attempt,
    ) -> Result<Output, StoreError>
    where
        Attempt: FnMut() -> Future,
        Future: std::future::Future<Output = Result<Output, AttemptError>>,
    {
        for attempt_number in 0..MAX_APPEND_ATTEMPTS {
            match attempt().await {
                Ok(output) => return Ok(output),
                Err(AttemptError::Store(error)) => return Err(error),
                Err(AttemptError::Conflict) => {
                    // Writers that collided do not collide again in step.
                    tokio::time::sleep(
                        CONFLICT_BACKOFF.delay(attempt_number, crate::supervise::jitter()),
                    )
                    .await;
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{what} conflicted with other writers {MAX_APPEND_ATTEMPTS} times in a row"
        )))
    }

    pub(super) async fn try_create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<Result<(), StoreError>, AttemptError> {
        let tenant_id = &conversation.tenant_id;
        let mut session = self.start_transaction().await?;
        if let Some((first, second)) = direct_pair(conversation.kind, members) {
            let pair = doc! {
                "_id": format!("{tenant_id}/{first}/{second}"),
                "conversation": conversation.conversation_id.to_string(),
            };
            if let Err(error) = self
                .direct_pairs
                .insert_one(pair)
                .session(&mut session)
                .await
            {
                if is_duplicate_key(&error) {
                    return Ok(Err(StoreError::AlreadyExists));
                }
                return Err(error.into());
            }
        }
        let mut sorted = members.to_vec();
        sorted.sort_by(|left, right| left.user_id.cmp(&right.user_id));
        let document = conversation_document(
            tenant_id,
            &ConversationSnapshot {
                conversation: conversation.clone(),
                members: sorted,
            },
        )?;
        if let Err(error) = self
            .conversations
            .insert_one(document)
            .session(&mut session)
            .await
        {
            if is_duplicate_key(&error) {
                return Ok(Err(StoreError::AlreadyExists));
            }
            return Err(error.into());
        }
        Self::commit(&mut session).await?;
        Ok(Ok(()))
    }

    pub(super) async fn try_append(
        &self,
        entries: &[AppendEntry],
    ) -> Result<Vec<AppendOutcome>, AttemptError> {
        let mut session = self.start_transaction().await?;
        let mut logs: HashMap<(TenantId, ConversationId), StagedLog> = HashMap::new();
        // Every Stored entry, in store order: each gets the event log's next position.
        let mut stored_order: Vec<((TenantId, ConversationId), Seq)> = Vec::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for AppendEntry { tenant_id, entry } in entries {
            let conversation_id = entry.conversation_id();
            let key = (tenant_id.clone(), conversation_id);
            if !logs.contains_key(&key) {
                let head = self
                    .logs
                    .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
                    .session(&mut session)
                    .await?
                    .map(|document| document.get_i64("head").unwrap_or(0))
                    .unwrap_or(0);
                let head = Seq(u64::try_from(head).unwrap_or(0));
                let mut log = StagedLog::new(head);
                // One query for every client id this call has for the conversation, instead of
                // one per entry: the ones already stored are duplicates.
                let client_ids: Vec<&str> = entries
                    .iter()
                    .filter(|other| {
                        other.tenant_id == *tenant_id
                            && other.entry.conversation_id() == conversation_id
                    })
                    .map(|other| other.entry.client_id().as_str())
                    .collect();
                let mut stored = self
                    .entries
                    .find(doc! {
                        "tenant": tenant_id.as_str(),
                        "conversation": conversation_id.to_string(),
                        "client_id": {"$in": client_ids},
                    })
                    .session(&mut session)
                    .await?;
                while let Some(document) = stored.next(&mut session).await.transpose()? {
                    let stored_entry = decode_entry(&document)?;
                    log.client_ids.insert(
                        (
                            stored_entry.author().clone(),
                            stored_entry.client_id().clone(),
                        ),
                        stored_entry,
                    );
                }
                logs.insert(key.clone(), log);
            }
            let log = logs.get_mut(&key).ok_or_else(|| {
                AttemptError::Store(StoreError::Unavailable("staged log vanished".to_owned()))
            })?;

            let client_key = (entry.author().clone(), entry.client_id().clone());
            if let Some(stored) = log.client_ids.get(&client_key) {
                outcomes.push(repeat_outcome(stored, entry));
                continue;
            }

            let seq = log.head.next();
            let (staged_entry, staged) = loop {
                let mut candidate = entry.clone();
                candidate.set_seq(seq);
                let view = CachedView {
                    log,
                    misses: RefCell::new(Vec::new()),
                };
                let result = stage_entry(&view, &mut candidate);
                let misses = view.misses.into_inner();
                if misses.is_empty() {
                    break (candidate, result);
                }
                for miss in misses {
                    self.fetch(&mut session, tenant_id, conversation_id, log, miss)
                        .await?;
                }
            };
            let staged = match staged {
                Ok(staged) => staged,
                Err(StageError::Refused(error)) => {
                    outcomes.push(AppendOutcome::Refused { error });
                    continue;
                }
                Err(StageError::Store(error)) => return Err(error.into()),
            };
            log.head = seq;
            log.client_ids.insert(client_key, staged_entry.clone());
            if let LogEntry::Message(message) = &staged_entry {
                log.message_seqs.insert(message.message_id, Some(seq));
            }
            if let Some(snapshot) = staged.conversation {
                log.conversation = Some(Some(snapshot));
                log.conversation_changed = true;
            }
            for rewrite in &staged.rewrites {
                if !log.new_seqs.contains(&rewrite.seq()) {
                    log.rewritten.insert(rewrite.seq());
                }
                log.entries.insert(rewrite.seq(), Some(rewrite.clone()));
            }
            let completed = staged.completed.then(|| Box::new(staged_entry.clone()));
            stored_order.push((key.clone(), seq));
            log.new_seqs.insert(seq);
            log.entries.insert(seq, Some(staged_entry));
            outcomes.push(AppendOutcome::Stored {
                seq,
                completed,
                rewritten: staged.rewrites,
            });
        }

        if !stored_order.is_empty() {
            let n_stored = i64::try_from(stored_order.len()).unwrap_or(i64::MAX);
            let last = self
                .counters
                .find_one_and_update(
                    doc! {"_id": EVENT_LOG_COUNTER},
                    doc! {"$inc": {"head": n_stored}},
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .session(&mut session)
                .await?
                .and_then(|document| document.get_i64("head").ok())
                .ok_or_else(|| {
                    StoreError::Corrupt("the event log counter has no head".to_owned())
                })?;
            for (offset, (key, seq)) in (1..).zip(stored_order) {
                if let Some(log) = logs.get_mut(&key) {
                    log.positions.insert(seq, last - n_stored + offset);
                }
            }
        }
        for ((tenant_id, conversation_id), log) in &logs {
            self.write_staged(&mut session, tenant_id, *conversation_id, log)
                .await?;
        }
        Self::commit(&mut session).await?;
        Ok(outcomes)
    }

    /// Fetches, inside the transaction, what staging found missing.
    pub(super) async fn fetch(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        log: &mut StagedLog,
        miss: Miss,
    ) -> Result<(), AttemptError> {
        match miss {
            Miss::Entry(seq) => {
                let entry = self
                    .entries
                    .find_one(doc! {"_id": entry_key(tenant_id, conversation_id, seq)})
                    .session(session)
                    .await?
                    .map(|document| decode_entry(&document))
                    .transpose()?;
                log.entries.insert(seq, entry);
            }
            Miss::MessageSeq(message_id) => {
                let document = self
                    .entries
                    .find_one(doc! {
                        "tenant": tenant_id.as_str(),
                        "conversation": conversation_id.to_string(),
                        "entry_id": message_id.to_string(),
                        "kind": "message",
                    })
                    .session(session)
                    .await?;
                let seq = match document {
                    Some(document) => {
                        let entry = decode_entry(&document)?;
                        let seq = entry.seq();
                        log.entries.entry(seq).or_insert(Some(entry));
                        Some(seq)
                    }
                    None => None,
                };
                log.message_seqs.insert(message_id, seq);
            }
            Miss::Conversation => {
                let snapshot = self
                    .conversations
                    .find_one(doc! {"_id": conversation_key(tenant_id, conversation_id)})
                    .session(session)
                    .await?
                    .map(|document| decode_snapshot(&document))
                    .transpose()?;
                log.conversation = Some(snapshot);
            }
        }
        Ok(())
    }

    /// Writes what one conversation's part of the batch staged, and moves its head with a
    /// compare-and-set (a concurrent writer makes this conflict).
    pub(super) async fn write_staged(
        &self,
        session: &mut ClientSession,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        log: &StagedLog,
    ) -> Result<(), AttemptError> {
        if log.head == log.head_before {
            return Ok(());
        }
        let new_entries = log
            .new_seqs
            .iter()
            .filter_map(|seq| log.entries.get(seq).and_then(Option::as_ref))
            .map(|entry| {
                let mut document = entry_document(tenant_id, entry)?;
                if let Some(position) = log.positions.get(&entry.seq()) {
                    document.insert("log_position", position);
                }
                Ok(document)
            })
            .collect::<Result<Vec<Document>, StoreError>>()?;
        self.entries
            .insert_many(new_entries)
            .session(&mut *session)
            .await?;
        for seq in &log.rewritten {
            if let Some(Some(entry)) = log.entries.get(seq) {
                // A $set of every field, not a replacement: the entry keeps its log position.
                let mut document = entry_document(tenant_id, entry)?;
                document.remove("_id");
                self.entries
                    .update_one(
                        doc! {"_id": entry_key(tenant_id, conversation_id, *seq)},
                        doc! {"$set": document},
                    )
                    .session(&mut *session)
                    .await?;
            }
        }
        if log.conversation_changed
            && let Some(Some(snapshot)) = &log.conversation
        {
            let document = conversation_document(tenant_id, snapshot)?;
            self.conversations
                .replace_one(
                    doc! {"_id": document.get_str("_id").unwrap_or_default()},
                    document,
                )
                .session(&mut *session)
                .await?;
        }
        let key = conversation_key(tenant_id, conversation_id);
        if log.head_before == Seq::ZERO {
            // A first append creates the head; a concurrent first append hits the unique _id.
            self.logs
                .insert_one(doc! {"_id": &key, "head": seq_to_bson(log.head)})
                .session(&mut *session)
                .await?;
        } else {
            let moved = self
                .logs
                .update_one(
                    doc! {"_id": &key, "head": seq_to_bson(log.head_before)},
                    doc! {"$set": {"head": seq_to_bson(log.head)}},
                )
                .session(&mut *session)
                .await?;
            if moved.matched_count != 1 {
                return Err(AttemptError::Conflict);
            }
        }
        Ok(())
    }
}

/// One conversation's log as an append transaction has read and staged it.
pub(super) struct StagedLog {
    /// The head when the transaction read it.
    head_before: Seq,
    /// The head after the entries staged so far.
    head: Seq,
    /// Entries read or staged; `None` where a read found nothing.
    entries: BTreeMap<Seq, Option<LogEntry>>,
    /// Message seqs read or staged; `None` where a read found no such message.
    message_seqs: HashMap<MessageId, Option<Seq>>,
    /// The conversation, once read (`Some(None)`: it does not exist).
    conversation: Option<Option<ConversationSnapshot>>,
    /// Whether staging changed the conversation.
    conversation_changed: bool,
    /// The entries already stored under the idempotency keys (author, client id) this call
    /// appends with, or staged in this call.
    client_ids: HashMap<(UserId, ClientId), LogEntry>,
    /// Seqs of the entries this batch adds.
    new_seqs: BTreeSet<Seq>,
    /// Seqs of stored entries this batch rewrites.
    rewritten: BTreeSet<Seq>,
    /// The event log position of each entry this batch adds, once reserved.
    positions: HashMap<Seq, i64>,
}

impl StagedLog {
    pub(super) fn new(head: Seq) -> Self {
        Self {
            head_before: head,
            head,
            entries: BTreeMap::new(),
            message_seqs: HashMap::new(),
            conversation: None,
            conversation_changed: false,
            client_ids: HashMap::new(),
            new_seqs: BTreeSet::new(),
            rewritten: BTreeSet::new(),
            positions: HashMap::new(),
        }
    }
}

/// Something staging needed that the transaction had not read yet.
pub(super) enum Miss {
    Entry(Seq),
    MessageSeq(MessageId),
    Conversation,
}

/// Staging's view of a [`StagedLog`]: answers from what was read, records the rest as misses.
pub(super) struct CachedView<'log> {
    log: &'log StagedLog,
    misses: RefCell<Vec<Miss>>,
}

impl CachedView<'_> {
    pub(super) fn miss(&self, miss: Miss) -> StoreError {
        self.misses.borrow_mut().push(miss);
        StoreError::Unavailable("not read yet".to_owned())
    }
}

impl LogView for CachedView<'_> {
    fn entry_at(&self, seq: Seq) -> Result<Option<LogEntry>, StoreError> {
        match self.log.entries.get(&seq) {
            Some(entry) => Ok(entry.clone()),
            None => Err(self.miss(Miss::Entry(seq))),
        }
    }

    fn message_seq(&self, message_id: MessageId) -> Result<Option<Seq>, StoreError> {
        match self.log.message_seqs.get(&message_id) {
            Some(seq) => Ok(*seq),
            None => Err(self.miss(Miss::MessageSeq(message_id))),
        }
    }

    fn conversation(&self) -> Result<Option<ConversationSnapshot>, StoreError> {
        match &self.log.conversation {
            Some(snapshot) => Ok(snapshot.clone()),
            None => Err(self.miss(Miss::Conversation)),
        }
    }
}
