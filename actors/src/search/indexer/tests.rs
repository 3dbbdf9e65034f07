//! The indexer over the in-memory store and index: messages, edits and deletes reach the
//! index; a new indexer on the same index resumes from its checkpoint with nothing missed or
//! applied twice.

use std::sync::Arc;
use std::time::Duration;

use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationKind, Member, Message, MessageState, Role,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::ports::{AppendEntry, LogCursor, MessageStore, TailScope};
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::IndexGeneration;
use switchboard_engine::search::index::{
    ReadableConversation, SearchIndex, SearchRequest, SearchSort,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{MemoryMessageStore, MemorySearchGenerations, MemorySearchIndex};

use super::super::live::LiveSearchIndex;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn acme() -> TenantId {
    TenantId::parse("acme").expect("valid")
}

fn alice() -> UserId {
    UserId::parse("alice").expect("valid")
}

fn conversation() -> ConversationId {
    ConversationId::from_parts(1, 1)
}

fn message(number: u128, text: &str) -> Message {
    message_in(conversation(), number, text)
}

fn message_in(conversation_id: ConversationId, number: u128, text: &str) -> Message {
    Message {
        conversation_id,
        seq: Seq(0),
        message_id: MessageId::from_parts(2, number),
        sender_id: alice(),
        client_id: ClientId::parse(&format!("m{number}")).expect("valid"),
        text: text.to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: Timestamp(1_000 + number as u64),
        state: MessageState::default(),
        attachments: Vec::new(),
    }
}

fn event(number: u128, body: ConversationEventBody) -> LogEntry {
    LogEntry::Event(ConversationEvent::new(
        conversation(),
        MessageId::from_parts(3, number),
        alice(),
        ClientId::parse(&format!("e{number}")).expect("valid"),
        Timestamp(2_000 + number as u64),
        body,
    ))
}

async fn append(store: &Arc<dyn MessageStore>, entries: Vec<LogEntry>) {
    append_for(store, &acme(), entries).await;
}

async fn append_for(store: &Arc<dyn MessageStore>, tenant_id: &TenantId, entries: Vec<LogEntry>) {
    let entries = entries
        .into_iter()
        .map(|entry| AppendEntry {
            tenant_id: tenant_id.clone(),
            entry,
        })
        .collect();
    store.append(entries).await.expect("appended");
}

async fn found(index: &Arc<dyn SearchIndex>, query: &str) -> Vec<String> {
    found_in(index, &acme(), conversation(), query).await
}

async fn found_in(
    index: &Arc<dyn SearchIndex>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
    query: &str,
) -> Vec<String> {
    let request = SearchRequest {
        tenant_id: tenant_id.clone(),
        query: SearchQuery::parse(query).expect("parses"),
        scope: vec![ReadableConversation {
            conversation_id,
            hidden: Vec::new(),
        }],
        sort: SearchSort::Newest,
        limit: 100,
        cursor: None,
    };
    index
        .search(&request)
        .await
        .expect("searched")
        .hits
        .into_iter()
        .map(|hit| hit.document.text)
        .collect()
}

fn live(index: &Arc<dyn SearchIndex>) -> Arc<LiveSearchIndex> {
    Arc::new(LiveSearchIndex::new(IndexGeneration {
        number: 1,
        index: Arc::clone(index),
    }))
}

fn indexer(store: &Arc<dyn MessageStore>, live: &Arc<LiveSearchIndex>) -> IndexerArgs {
    IndexerArgs {
        store: Arc::clone(store),
        index: Arc::clone(live),
        generations: Arc::new(MemorySearchGenerations::new().0),
        clock: Arc::new(crate::clock::SystemClock),
        batch: 2,
        // Long: the test drives it with catch_up.
        interval: Duration::from_secs(3_600),
        stats: Arc::default(),
        nice: 0,
    }
}

#[tokio::test]
async fn messages_edits_and_deletes_reach_the_index_and_a_restart_resumes_at_the_checkpoint() {
    let store: Arc<dyn MessageStore> = Arc::new(MemoryMessageStore::new());
    create_conversation(&store, &acme(), conversation()).await;
    let memory = Arc::new(MemorySearchIndex::new());
    let index: Arc<dyn SearchIndex> = Arc::clone(&memory) as Arc<dyn SearchIndex>;
    append(
        &store,
        vec![
            LogEntry::Message(message(1, "launch plan")),
            LogEntry::Message(message(2, "lunch menu")),
            LogEntry::Message(message(3, "launch party")),
        ],
    )
    .await;
    let live = live(&index);
    let first = SearchIndexerHandle::start(indexer(&store, &live))
        .await
        .expect("started");
    let reached = first.catch_up(TIMEOUT).await.expect("caught up");
    assert_eq!(reached, LogCursor(3));
    assert_eq!(
        found(&index, "launch").await,
        ["launch party", "launch plan"]
    );

    // An edit is indexed as the message is now; a delete removes it.
    append(
        &store,
        vec![
            event(
                1,
                ConversationEventBody::MessageEdited {
                    message_id: MessageId::from_parts(2, 1),
                    text: Some("final plan".to_owned()),
                },
            ),
            event(
                2,
                ConversationEventBody::MessageDeleted {
                    message_id: MessageId::from_parts(2, 3),
                    mode: switchboard_engine::model::DeleteMode::ForEveryone,
                },
            ),
        ],
    )
    .await;
    assert_eq!(
        first.catch_up(TIMEOUT).await.expect("caught up"),
        LogCursor(5)
    );
    assert!(found(&index, "launch").await.is_empty());
    assert_eq!(found(&index, "plan").await, ["final plan"]);
    assert_eq!(memory.n_documents(), 2);
    first.stop();

    // A new indexer (a restart) starts where the index stands.
    append(&store, vec![LogEntry::Message(message(4, "launch again"))]).await;
    let second = SearchIndexerHandle::start(indexer(&store, &live))
        .await
        .expect("started");
    assert_eq!(
        second.catch_up(TIMEOUT).await.expect("caught up"),
        LogCursor(6)
    );
    assert_eq!(found(&index, "launch").await, ["launch again"]);
    assert_eq!(memory.n_documents(), 3, "nothing indexed twice");

    // A rebuild fills a new generation from the start of the log, then makes it live; the old
    // one answers until then and takes nothing after.
    assert!(
        second
            .rebuild_progress(TailScope::AllTenants, TIMEOUT)
            .await
            .expect("answered")
            .is_none()
    );
    let started = second
        .reindex(TailScope::AllTenants, TIMEOUT)
        .await
        .expect("started");
    assert_eq!(started.generation, 2);
    let done = eventually_done(&second, TailScope::AllTenants).await;
    assert_eq!(done.checkpoint, LogCursor(6));
    assert_eq!(done.entries, 6, "every entry of the log, once");
    assert_eq!(live.generation(), 2);
    let rebuilt = live.current().index;
    assert_eq!(found(&rebuilt, "launch").await, ["launch again"]);
    assert_eq!(found(&rebuilt, "plan").await, ["final plan"]);
    append(&store, vec![LogEntry::Message(message(5, "launch after"))]).await;
    second.catch_up(TIMEOUT).await.expect("caught up");
    assert_eq!(
        found(&rebuilt, "launch").await,
        ["launch after", "launch again"]
    );
    assert_eq!(
        memory.n_documents(),
        3,
        "the old generation takes nothing more"
    );
    second.stop();
}

/// Polls the progress of the rebuild of `scope` until it is done (or the deadline passes).
async fn eventually_done(indexer: &SearchIndexerHandle, scope: TailScope) -> RebuildProgress {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(progress) = indexer
            .rebuild_progress(scope.clone(), TIMEOUT)
            .await
            .expect("answered")
            && progress.state == RebuildState::Done
        {
            return progress;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rebuild did not finish"
        );
        tokio::task::yield_now().await;
    }
}

async fn create_conversation(
    store: &Arc<dyn MessageStore>,
    tenant_id: &TenantId,
    conversation_id: ConversationId,
) {
    let owner = Member {
        user_id: alice(),
        role: Role::Owner,
        joined_at: Timestamp(1),
    };
    store
        .create_conversation(
            &Conversation::new(
                conversation_id,
                tenant_id.clone(),
                ConversationKind::Group,
                None,
                alice(),
                Timestamp(1),
            ),
            &[owner],
        )
        .await
        .expect("created");
}

/// A rebuild of one tenant reads only that tenant's entries again (up to where the live index
/// stood) and keeps every other tenant's documents as they were; entries stored meanwhile
/// reach it; one rebuild runs at a time.
#[tokio::test]
async fn a_rebuild_of_one_tenant_reads_only_its_entries_and_keeps_the_others() {
    let store: Arc<dyn MessageStore> = Arc::new(MemoryMessageStore::new());
    let globex = TenantId::parse("globex").expect("valid");
    let globex_conversation = ConversationId::from_parts(1, 2);
    create_conversation(&store, &acme(), conversation()).await;
    create_conversation(&store, &globex, globex_conversation).await;
    let n_acme = 2 * REBUILD_BATCHES_PER_TICK as u128 + 8;
    append(
        &store,
        (1..=n_acme)
            .map(|number| LogEntry::Message(message(number, &format!("acme note {number}"))))
            .collect(),
    )
    .await;
    append_for(
        &store,
        &globex,
        vec![
            LogEntry::Message(message_in(globex_conversation, 1_001, "globex note one")),
            LogEntry::Message(message_in(globex_conversation, 1_002, "globex note two")),
        ],
    )
    .await;
    let (generations, first) =
        MemorySearchGenerations::starting_with(Arc::new(MemorySearchIndex::new()));
    let live = Arc::new(LiveSearchIndex::new(first));
    let mut args = indexer(&store, &live);
    args.generations = Arc::new(generations);
    let handle = SearchIndexerHandle::start(args).await.expect("started");
    let copied_at = handle.catch_up(TIMEOUT).await.expect("caught up");

    // Documents the log does not hold (an index gone astray), in both tenants.
    let stray = |tenant_id: &TenantId, conversation_id, number| {
        IndexChange::Put(switchboard_engine::search::index::SearchDocument {
            tenant_id: tenant_id.clone(),
            conversation_id,
            message_id: MessageId::from_parts(9, number),
            seq: Seq(99),
            sender_id: alice(),
            sent_at: Timestamp(9),
            text: "stray words".to_owned(),
            has_attachment: false,
        })
    };
    live.current()
        .index
        .apply(
            vec![
                stray(&acme(), conversation(), 1),
                stray(&globex, globex_conversation, 2),
            ],
            copied_at,
        )
        .await
        .expect("applied");

    // Stored after the live index's checkpoint, where the copy is made: the rebuild reads
    // them after acme's entries, with everyone's.
    append_for(
        &store,
        &globex,
        vec![LogEntry::Message(message_in(
            globex_conversation,
            1_003,
            "globex note three",
        ))],
    )
    .await;
    append(
        &store,
        vec![LogEntry::Message(message(500, "acme note later"))],
    )
    .await;

    let acme_scope = TailScope::Tenant(acme());
    // Both requests are in the mailbox before the first tick of the rebuild.
    let (started, refused) = tokio::join!(
        handle.reindex(acme_scope.clone(), TIMEOUT),
        handle.reindex(TailScope::AllTenants, TIMEOUT)
    );
    let started = started.expect("started");
    assert_eq!(started.scope, acme_scope);
    assert_eq!(started.generation, 2);
    assert!(
        matches!(
            refused,
            Err(crate::Error::Domain(
                switchboard_engine::Error::Conflict { .. }
            ))
        ),
        "one rebuild at a time: {refused:?}"
    );
    assert_eq!(
        handle
            .rebuild_progress(TailScope::Tenant(globex.clone()), TIMEOUT)
            .await
            .expect("answered"),
        None,
        "another tenant sees no rebuild of its own"
    );
    let done = eventually_done(&handle, acme_scope).await;
    assert_eq!(
        done.entries,
        n_acme as u64 + 2,
        "acme's entries up to the copy, then the two stored since: globex's were not read again"
    );
    assert_eq!(live.generation(), 2);
    let rebuilt = live.current().index;
    assert!(
        found_in(&rebuilt, &acme(), conversation(), "stray")
            .await
            .is_empty(),
        "acme's documents are the log's"
    );
    assert_eq!(
        found_in(&rebuilt, &acme(), conversation(), "note")
            .await
            .len(),
        n_acme as usize + 1
    );
    assert_eq!(
        found_in(&rebuilt, &globex, globex_conversation, "stray").await,
        ["stray words"],
        "globex's documents were kept as they were, not rebuilt"
    );
    assert_eq!(
        found_in(&rebuilt, &globex, globex_conversation, "note").await,
        ["globex note three", "globex note two", "globex note one"]
    );
    handle.stop();
}
