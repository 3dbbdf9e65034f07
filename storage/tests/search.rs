//! The `SearchIndex` conformance suite: every adapter applies changes with their checkpoint,
//! finds exactly what the query and the scope allow (never another tenant's, an unreadable
//! conversation's or a hidden message), pages without gaps or repeats, and suggests only
//! words of the scope.

use std::sync::Arc;

use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::SearchQuery;
use switchboard_engine::search::index::{
    IndexChange, ReadableConversation, SearchCursor, SearchDocument, SearchIndex, SearchRequest,
    SearchSort,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{EmbeddedSearchIndex, MemorySearchIndex};

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
