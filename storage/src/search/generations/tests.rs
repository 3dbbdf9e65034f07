//! Generations on disk: the first open starts one, a promotion survives a reopen, a generation
//! of another schema version (or the layout before generations) is replaced by a new empty one,
//! and generations that are not current are removed.

use switchboard_engine::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::ports::LogCursor;
use switchboard_engine::search::index::IndexChange;
use switchboard_engine::search::index::SearchDocument;
use switchboard_engine::time::Timestamp;

use super::*;

fn document(number: u128) -> IndexChange {
    IndexChange::Put(SearchDocument {
        tenant_id: TenantId::parse("acme").expect("valid"),
        conversation_id: ConversationId::from_parts(1, 1),
        message_id: MessageId::from_parts(1, number),
        seq: Seq(u64::try_from(number).expect("small")),
        sender_id: UserId::parse("alice").expect("valid"),
        sent_at: Timestamp(1),
        text: "hello".to_owned(),
        has_attachment: false,
    })
}

#[tokio::test]
async fn a_promoted_generation_is_the_one_a_reopen_finds() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let (generations, first, opened) =
        EmbeddedSearchGenerations::open(root.path(), 0).expect("opens");
    assert!(matches!(opened, OpenedGeneration::Rebuilding(_)));
    first
        .index
        .apply(vec![document(1)], LogCursor(1))
        .await
        .expect("applied");
    let second = generations.create().await.expect("created");
    assert!(second.number > first.number);
    second
        .index
        .apply(vec![document(2)], LogCursor(7))
        .await
        .expect("applied");
    let abandoned = generations.create().await.expect("created");
    generations
        .discard(abandoned.number)
        .await
        .expect("discarded");
    drop(first);

    let (_, reopened, opened) = EmbeddedSearchGenerations::open(root.path(), 0).expect("reopens");
    assert_eq!(opened, OpenedGeneration::Current);
    assert_eq!(
        reopened.number, 1,
        "not promoted: the first is still current"
    );
    assert_eq!(
        reopened.index.checkpoint().await.expect("read"),
        LogCursor(1)
    );
    drop(reopened);

    let (generations, current, _) =
        EmbeddedSearchGenerations::open(root.path(), 0).expect("reopens");
    let next = generations.create().await.expect("created");
    next.index
        .apply(vec![document(3)], LogCursor(9))
        .await
        .expect("applied");
    generations.promote(next.number).await.expect("promoted");
    drop((current, next, generations));
    let (_, reopened, opened) = EmbeddedSearchGenerations::open(root.path(), 0).expect("reopens");
    assert_eq!(opened, OpenedGeneration::Current);
    assert_eq!(
        reopened.index.checkpoint().await.expect("read"),
        LogCursor(9)
    );
    let mut left: Vec<String> = std::fs::read_dir(root.path())
        .expect("listed")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            "CURRENT".to_owned(),
            generation_name(SCHEMA_VERSION, reopened.number)
        ]
    );
}

#[tokio::test]
async fn another_schema_version_or_the_old_layout_starts_a_new_empty_generation() {
    let root = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(root.path().join("v0-g4")).expect("made");
    std::fs::write(root.path().join("CURRENT"), "v0-g4\n").expect("written");
    std::fs::write(root.path().join("meta.json"), "{}").expect("written");
    let (_, generation, opened) = EmbeddedSearchGenerations::open(root.path(), 0).expect("opens");
    let OpenedGeneration::Rebuilding(reason) = opened else {
        panic!("rebuilds");
    };
    assert!(reason.contains("v0-g4"), "{reason}");
    assert_eq!(generation.number, 5);
    assert_eq!(
        generation.index.checkpoint().await.expect("read"),
        LogCursor::START
    );
    assert!(!root.path().join("v0-g4").exists());
    assert!(!root.path().join("meta.json").exists());
    assert_eq!(
        std::fs::read_to_string(root.path().join("CURRENT"))
            .expect("read")
            .trim(),
        generation_name(SCHEMA_VERSION, 5)
    );
}
