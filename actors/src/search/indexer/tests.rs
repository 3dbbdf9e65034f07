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
use switchboard_engine::ports::{AppendEntry, LogCursor, MessageStore};
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
    Message {
        conversation_id: conversation(),
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
    let entries = entries
        .into_iter()
        .map(|entry| AppendEntry {
            tenant_id: acme(),
            entry,
        })
        .collect();
    store.append(entries).await.expect("appended");
}

async fn found(index: &Arc<dyn SearchIndex>, query: &str) -> Vec<String> {
    let request = SearchRequest {
        tenant_id: acme(),
        query: SearchQuery::parse(query).expect("parses"),
        scope: vec![ReadableConversation {
            conversation_id: conversation(),
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
    }
}

#[tokio::test]
async fn messages_edits_and_deletes_reach_the_index_and_a_restart_resumes_at_the_checkpoint() {
    let store: Arc<dyn MessageStore> = Arc::new(MemoryMessageStore::new());
    let owner = Member {
        user_id: alice(),
        role: Role::Owner,
        joined_at: Timestamp(1),
    };
    store
        .create_conversation(
            &Conversation::new(
                conversation(),
                acme(),
                ConversationKind::Group,
                None,
                alice(),
                Timestamp(1),
            ),
            &[owner],
        )
        .await
        .expect("created");
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
            .rebuild_progress(TIMEOUT)
            .await
            .expect("answered")
            .is_none()
    );
    let started = second.reindex(TIMEOUT).await.expect("started");
    assert_eq!(started.generation, 2);
    let done = eventually_done(&second).await;
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

/// Polls the rebuild's progress until it is done (or the deadline passes).
async fn eventually_done(indexer: &SearchIndexerHandle) -> RebuildProgress {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(progress) = indexer.rebuild_progress(TIMEOUT).await.expect("answered")
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
