//! The `SearchIndex` conformance suite: every adapter applies changes with their checkpoint,
//! finds exactly what the query and the scope allow (never another tenant's, an unreadable
//! conversation's or a hidden message), pages without gaps or repeats, and suggests only
//! words of the scope; and every kind of generations copies a generation without one tenant
//! (where that tenant's rebuild starts) exactly.

use std::sync::Arc;

use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::{
    IndexChange, IndexGeneration, ReadableConversation, SearchCursor, SearchDocument, SearchIndex,
    SearchIndexGenerations, SearchRequest, SearchSort,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{
    EmbeddedSearchGenerations, EmbeddedSearchIndex, MemorySearchGenerations, MemorySearchIndex,
    OpenedGeneration,
};

const BASE: u64 = 1_767_355_200_000;

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid")
}

fn conversation(number: u128) -> ConversationId {
    ConversationId::from_parts(1, number)
}

fn message(number: u128) -> MessageId {
    MessageId::from_parts(2, number)
}

fn document(
    tenant_name: &str,
    conversation_number: u128,
    number: u128,
    text: &str,
) -> SearchDocument {
    SearchDocument {
        tenant_id: tenant(tenant_name),
        conversation_id: conversation(conversation_number),
        message_id: message(number),
        seq: Seq(number as u64),
        sender_id: UserId::parse(if number.is_multiple_of(2) {
            "alice"
        } else {
            "bob"
        })
        .expect("valid"),
        sent_at: Timestamp(BASE + number as u64 * 1_000),
        text: text.to_owned(),
        has_attachment: number.is_multiple_of(3),
    }
}

fn readable(numbers: &[u128]) -> Vec<ReadableConversation> {
    numbers
        .iter()
        .map(|number| ReadableConversation {
            conversation_id: conversation(*number),
            hidden: Vec::new(),
        })
        .collect()
}

fn request(query: &str, scope: Vec<ReadableConversation>) -> SearchRequest {
    SearchRequest {
        tenant_id: tenant("acme"),
        query: SearchQuery::parse(query).expect("parses"),
        scope,
        sort: SearchSort::Newest,
        limit: 100,
        cursor: None,
    }
}

/// The message numbers found, in order.
async fn found(index: &Arc<dyn SearchIndex>, request: &SearchRequest) -> Vec<u128> {
    index
        .search(request)
        .await
        .expect("searched")
        .hits
        .into_iter()
        .map(|hit| {
            (1..=1_000)
                .find(|number| message(*number) == hit.document.message_id)
                .expect("a known message")
        })
        .collect()
}

async fn puts_replace_removes_and_the_checkpoint_goes_with_them(index: Arc<dyn SearchIndex>) {
    assert_eq!(index.checkpoint().await.expect("read"), LogCursor::START);
    index
        .apply(
            vec![
                IndexChange::Put(document("acme", 1, 1, "the launch plan")),
                IndexChange::Put(document("acme", 1, 2, "lunch at noon")),
            ],
            LogCursor(2),
        )
        .await
        .expect("applied");
    assert_eq!(index.checkpoint().await.expect("read"), LogCursor(2));
    assert_eq!(found(&index, &request("launch", readable(&[1]))).await, [1]);
    // An edit replaces the text; a delete removes the message.
    index
        .apply(
            vec![
                IndexChange::Put(document("acme", 1, 1, "the final plan")),
                IndexChange::Remove {
                    tenant_id: tenant("acme"),
                    conversation_id: conversation(1),
                    message_id: message(2),
                },
                IndexChange::Remove {
                    tenant_id: tenant("acme"),
                    conversation_id: conversation(1),
                    message_id: message(99),
                },
            ],
            LogCursor(5),
        )
        .await
        .expect("applied");
    assert_eq!(index.checkpoint().await.expect("read"), LogCursor(5));
    assert!(
        found(&index, &request("launch", readable(&[1])))
            .await
            .is_empty()
    );
    assert_eq!(found(&index, &request("final", readable(&[1]))).await, [1]);
    assert!(
        found(&index, &request("lunch", readable(&[1])))
            .await
            .is_empty()
    );
}

async fn only_the_scope_of_the_callers_tenant_is_ever_found(index: Arc<dyn SearchIndex>) {
    index
        .apply(
            vec![
                IndexChange::Put(document("acme", 1, 1, "budget review")),
                IndexChange::Put(document("acme", 1, 2, "budget approved")),
                IndexChange::Put(document("acme", 2, 3, "budget secret")),
                IndexChange::Put(document("other", 1, 4, "budget elsewhere")),
            ],
            LogCursor(4),
        )
        .await
        .expect("applied");
    assert_eq!(
        found(&index, &request("budget", readable(&[1]))).await,
        [2, 1]
    );
    assert_eq!(
        found(&index, &request("budget", readable(&[1, 2]))).await,
        [3, 2, 1]
    );
    assert!(
        found(&index, &request("budget", Vec::new()))
            .await
            .is_empty()
    );
    // A message the caller deleted for themself is not found.
    let mut scope = readable(&[1]);
    scope[0].hidden.push(message(2));
    assert_eq!(found(&index, &request("budget", scope.clone())).await, [1]);
    // in: narrows the scope, never widens it.
    assert!(
        found(
            &index,
            &request(&format!("budget in:{}", conversation(2)), readable(&[1]))
        )
        .await
        .is_empty()
    );
    // Suggestions come from the scope only.
    let suggestions = index
        .suggest(&tenant("acme"), &scope, "bu", 10)
        .await
        .expect("suggested");
    assert_eq!(suggestions, ["budget"]);
    let suggestions = index
        .suggest(&tenant("acme"), &readable(&[1]), "a", 10)
        .await
        .expect("suggested");
    assert_eq!(suggestions, ["approved"]);
    assert!(
        index
            .suggest(&tenant("acme"), &readable(&[1]), "sec", 10)
            .await
            .expect("suggested")
            .is_empty(),
        "conversation 2's words are not suggested"
    );
}

async fn the_query_language_means_the_same_everywhere(index: Arc<dyn SearchIndex>) {
    let texts = [
        "Deploying the release notes today",
        "release notes draft",
        "notes about the release",
        "e-mail the café",
        "東京都に住む",
        "deployed yesterday",
    ];
    let changes = texts
        .iter()
        .enumerate()
        .map(|(index, text)| IndexChange::Put(document("acme", 1, index as u128 + 1, text)))
        .collect();
    index.apply(changes, LogCursor(6)).await.expect("applied");
    let cases: &[(&str, &[u128])] = &[
        ("release", &[3, 2, 1]),
        (r#""release notes""#, &[2, 1]),
        (r#""release notes" -draft"#, &[1]),
        ("deploy", &[6, 1]),
        ("deplo*", &[6, 1]),
        ("EMAIL", &[]),
        ("e-mail cafe", &[4]),
        ("京都", &[5]),
        ("release from:bob", &[3, 1]),
        ("release has:attachment", &[3]),
        ("notes after:2026-01-02", &[]),
        ("from:alice", &[6, 4, 2]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            &found(&index, &request(query, readable(&[1]))).await,
            expected,
            "{query}"
        );
    }
}

async fn pages_in_order_without_gaps_or_repeats(index: Arc<dyn SearchIndex>) {
    let changes = (1..=25)
        .map(|number| {
            IndexChange::Put(document(
                "acme",
                1,
                number,
                &format!("status report {number}"),
            ))
        })
        .collect();
    index.apply(changes, LogCursor(25)).await.expect("applied");
    for sort in [SearchSort::Newest, SearchSort::Relevance] {
        let mut seen = Vec::new();
        let mut cursor: Option<SearchCursor> = None;
        for _ in 0..10 {
            let mut page_request = request("report", readable(&[1]));
            page_request.sort = sort;
            page_request.limit = 7;
            page_request.cursor = cursor;
            let page = index.search(&page_request).await.expect("searched");
            assert!(page.hits.len() <= 7);
            seen.extend(page.hits.iter().map(|hit| hit.document.message_id));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (25, 25), "{sort:?}");
        if sort == SearchSort::Newest {
            let expected: Vec<MessageId> = (1..=25).rev().map(message).collect();
            assert_eq!(seen, expected);
        }
    }
    // Each hit says where the words are.
    let page = index
        .search(&request("status", readable(&[1])))
        .await
        .expect("searched");
    assert_eq!(page.hits[0].matches, vec![0..6]);
}

async fn hits_of_one_millisecond_page_by_message_id(index: Arc<dyn SearchIndex>) {
    // Twelve messages in one millisecond between two others, in two conversations.
    let changes = (1..=14)
        .map(|number| {
            let mut put = document("acme", 1 + number % 2, number, "tied report");
            put.sent_at = Timestamp(match number {
                1 => BASE,
                14 => BASE + 2_000,
                _ => BASE + 1_000,
            });
            IndexChange::Put(put)
        })
        .collect();
    index.apply(changes, LogCursor(14)).await.expect("applied");
    let mut seen = Vec::new();
    let mut cursor: Option<SearchCursor> = None;
    for _ in 0..10 {
        let mut page_request = request("tied", readable(&[1, 2]));
        page_request.limit = 5;
        page_request.cursor = cursor;
        let page = index.search(&page_request).await.expect("searched");
        seen.extend(page.hits.iter().map(|hit| hit.document.message_id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let mut expected = vec![message(14)];
    expected.extend((2..=13).rev().map(message));
    expected.push(message(1));
    assert_eq!(
        seen, expected,
        "newest first, ties by message id, no gap or repeat"
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let directory = tempfile::tempdir().expect("a temporary directory");
                    let index = super::EmbeddedSearchIndex::open(directory.path())
                        .expect("the index opens");
                    super::$test(std::sync::Arc::new(index)).await;
                }
            )*
        }

        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(std::sync::Arc::new(super::MemorySearchIndex::new())).await;
                }
            )*
        }
    };
}

conformance!(
    puts_replace_removes_and_the_checkpoint_goes_with_them,
    only_the_scope_of_the_callers_tenant_is_ever_found,
    the_query_language_means_the_same_everywhere,
    pages_in_order_without_gaps_or_repeats,
    hits_of_one_millisecond_page_by_message_id,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_index_keeps_its_documents_and_checkpoint_across_a_reopen() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    {
        let index = EmbeddedSearchIndex::open(directory.path()).expect("opens");
        index
            .apply(
                vec![IndexChange::Put(document(
                    "acme",
                    1,
                    1,
                    "kept across restarts",
                ))],
                LogCursor(7),
            )
            .await
            .expect("applied");
    }
    let index: Arc<dyn SearchIndex> =
        Arc::new(EmbeddedSearchIndex::open(directory.path()).expect("reopens"));
    assert_eq!(index.checkpoint().await.expect("read"), LogCursor(7));
    assert_eq!(
        found(&index, &request("restarts", readable(&[1]))).await,
        [1]
    );
}

/// The message numbers of `tenant_name`'s conversation 1 that `query` finds in `index`.
async fn found_of(index: &Arc<dyn SearchIndex>, tenant_name: &str, query: &str) -> Vec<u128> {
    let mut request = request(query, readable(&[1]));
    request.tenant_id = tenant(tenant_name);
    found(index, &request).await
}

async fn put(index: &Arc<dyn SearchIndex>, tenant_name: &str, number: u128, checkpoint: u64) {
    index
        .apply(
            vec![IndexChange::Put(document(
                tenant_name,
                1,
                number,
                "apples and pears",
            ))],
            LogCursor(checkpoint),
        )
        .await
        .expect("applied");
}

/// A copy without one tenant holds the source's other documents (deletes included) at its
/// checkpoint and none of the tenant's, and the two go their own ways afterwards.
async fn a_copy_without_a_tenant_holds_everything_else_and_parts_ways(
    generations: Arc<dyn SearchIndexGenerations>,
    first: IndexGeneration,
) {
    // Several commits, so several segments, and deletes in both tenants.
    for (number, tenant_name) in [(1, "acme"), (2, "acme"), (3, "globex")] {
        put(&first.index, tenant_name, number, 2 + number as u64).await;
    }
    for (number, tenant_name) in [(4, "globex"), (5, "acme"), (6, "globex")] {
        put(&first.index, tenant_name, number, 2 + number as u64).await;
    }
    first
        .index
        .apply(
            vec![
                IndexChange::Remove {
                    tenant_id: tenant("acme"),
                    conversation_id: conversation(1),
                    message_id: message(2),
                },
                IndexChange::Remove {
                    tenant_id: tenant("globex"),
                    conversation_id: conversation(1),
                    message_id: message(4),
                },
            ],
            LogCursor(9),
        )
        .await
        .expect("applied");

    let copy = generations
        .create_without_tenant(first.number, &tenant("acme"))
        .await
        .expect("copied");
    assert!(copy.number > first.number, "a new generation");
    assert_eq!(
        copy.index.checkpoint().await.expect("read"),
        LogCursor(9),
        "the source's checkpoint"
    );
    assert_eq!(
        found_of(&copy.index, "acme", "apples").await,
        Vec::<u128>::new()
    );
    assert_eq!(
        found_of(&copy.index, "globex", "apples").await,
        [6, 3],
        "the other tenant's documents, its delete kept"
    );
    assert_eq!(found_of(&first.index, "acme", "apples").await, [5, 1]);

    put(&first.index, "globex", 7, 10).await;
    put(&copy.index, "acme", 8, 11).await;
    assert_eq!(found_of(&copy.index, "globex", "apples").await, [6, 3]);
    assert_eq!(found_of(&copy.index, "acme", "apples").await, [8]);
    assert_eq!(found_of(&first.index, "globex", "apples").await, [7, 6, 3]);
    assert_eq!(found_of(&first.index, "acme", "apples").await, [5, 1]);
    assert_eq!(first.index.checkpoint().await.expect("read"), LogCursor(10));
    assert_eq!(copy.index.checkpoint().await.expect("read"), LogCursor(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_copy_without_a_tenant_holds_everything_else_and_parts_ways() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let (generations, first, _) =
        EmbeddedSearchGenerations::open(directory.path(), 0).expect("opens");
    a_copy_without_a_tenant_holds_everything_else_and_parts_ways(Arc::new(generations), first)
        .await;
}

#[tokio::test]
async fn memory_a_copy_without_a_tenant_holds_everything_else_and_parts_ways() {
    let (generations, first) = MemorySearchGenerations::new();
    a_copy_without_a_tenant_holds_everything_else_and_parts_ways(Arc::new(generations), first)
        .await;
}

/// A promoted copy is whole on its own: it survives a restart that removes the generation it
/// was copied from, and its writer's merges remove the files it no longer needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_embedded_copy_outlives_its_source() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let copy_number = {
        let (generations, first, _) =
            EmbeddedSearchGenerations::open(directory.path(), 0).expect("opens");
        for number in 1..=12 {
            let tenant_name = if number % 3 == 0 { "acme" } else { "globex" };
            put(&first.index, tenant_name, number, number as u64).await;
        }
        let copy = generations
            .create_without_tenant(first.number, &tenant("acme"))
            .await
            .expect("copied");
        for number in 13..=30 {
            put(&copy.index, "acme", number, number as u64).await;
        }
        generations.promote(copy.number).await.expect("promoted");
        copy.number
    };
    let (_, reopened, opened) =
        EmbeddedSearchGenerations::open(directory.path(), 0).expect("reopens");
    assert_eq!(opened, OpenedGeneration::Current);
    assert_eq!(reopened.number, copy_number);
    let generation_directories: Vec<String> = file_names(directory.path())
        .filter(|name| name.starts_with('v'))
        .collect();
    assert_eq!(
        generation_directories.len(),
        1,
        "the source is gone: {generation_directories:?}"
    );
    assert_eq!(
        reopened.index.checkpoint().await.expect("read"),
        LogCursor(30)
    );
    let generation_directory = directory.path().join(&generation_directories[0]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (named, on_disk) = segments_named_and_on_disk(&generation_directory);
        if on_disk.is_subset(&named) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "segments no commit names stay on disk: {:?}",
            on_disk.difference(&named)
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        found_of(&reopened.index, "globex", "apples").await,
        [11, 10, 8, 7, 5, 4, 2, 1]
    );
    assert_eq!(
        found_of(&reopened.index, "acme", "apples").await,
        (13..=30).rev().collect::<Vec<u128>>()
    );
}

/// The segments the last commit in `directory` names, and those with files there.
fn segments_named_and_on_disk(
    directory: &std::path::Path,
) -> (
    std::collections::HashSet<String>,
    std::collections::HashSet<String>,
) {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(directory.join("meta.json")).expect("meta.json is there"),
    )
    .expect("meta.json is JSON");
    let named = meta["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|segment| {
            segment["segment_id"]
                .as_str()
                .expect("an id")
                .replace('-', "")
        })
        .collect();
    let on_disk = file_names(directory)
        .filter(|name| name.ends_with(".idx"))
        .map(|name| name.trim_end_matches(".idx").to_owned())
        .collect();
    (named, on_disk)
}

/// The names of the entries of `directory`.
fn file_names(directory: &std::path::Path) -> impl Iterator<Item = String> {
    std::fs::read_dir(directory).expect("listed").map(|entry| {
        entry
            .expect("listed")
            .file_name()
            .to_string_lossy()
            .into_owned()
    })
}
