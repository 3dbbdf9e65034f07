//! The shared conformance suite for every [`MediaStore`] adapter: the in-memory store, the
//! embedded store (in a temporary directory) and, with the `mongodb` feature, the MongoDB store
//! (on the server `scripts/test-services start mongodb` runs; a fresh database per test).
//!
//! It checks the contract of the port: creation once, tenant isolation for every method,
//! quotas checked atomically with creation (concurrent uploads cannot together overrun one),
//! usage kept in step with every change, updates applied with the engine's rule and atomically
//! with their read (of two concurrent writers exactly one wins), and the garbage collector's
//! list. The last test checks what only the durable store can do: records and usage survive a
//! reopen.

use std::sync::Arc;

use switchboard_engine::ids::{ConversationId, MediaId, MessageId};
use switchboard_engine::media::{
    AttachedTo, MediaFamily, MediaFileName, MediaQuotas, MediaRecord, MediaState, MediaStore,
    MediaType, MediaUpdate, MediaUpdateOutcome, MediaUsage, QuotaScope, WriteLease,
};
use switchboard_engine::time::Timestamp;
use switchboard_engine::{Error, StoreError};
use switchboard_storage::{EmbeddedMediaStore, MemoryMediaStore};

mod support;

use support::{BASE_MILLIS, tenant, user};

const NOW: Timestamp = Timestamp(BASE_MILLIS);
const EXPIRES: Timestamp = Timestamp(BASE_MILLIS + 3_600_000);
const NO_QUOTAS: MediaQuotas = MediaQuotas {
    tenant_bytes: None,
    user_bytes: None,
};

fn media_id(number: u64) -> MediaId {
    MediaId::from_parts(BASE_MILLIS + number, u128::from(number))
}

fn declared(number: u64, uploader: &str, size_bytes: u64) -> MediaRecord {
    MediaRecord::declared(
        media_id(number),
        user(uploader),
        MediaFileName::parse(&format!("file-{number}.txt")).expect("valid"),
        None,
        size_bytes,
        NOW,
        EXPIRES,
    )
}

fn text() -> MediaType {
    MediaType {
        mime: "text/plain".to_owned(),
        family: MediaFamily::Text,
    }
}

async fn create(store: &Arc<dyn MediaStore>, tenant_name: &str, record: &MediaRecord) {
    store
        .create_media(&tenant(tenant_name), record, NO_QUOTAS)
        .await
        .expect("the store answers")
        .expect("no quota to refuse it");
}

async fn update(
    store: &Arc<dyn MediaStore>,
    tenant_name: &str,
    number: u64,
    update: MediaUpdate,
) -> MediaUpdateOutcome {
    store
        .update_media(&tenant(tenant_name), media_id(number), update)
        .await
        .expect("the store answers")
}

fn updated(outcome: MediaUpdateOutcome) -> MediaRecord {
    match outcome {
        MediaUpdateOutcome::Updated(record) => *record,
        other => panic!("expected Updated, got {other:?}"),
    }
}

/// Uploads every byte of media `number` in one write and completes it.
async fn upload_whole(store: &Arc<dyn MediaStore>, tenant_name: &str, number: u64, size: u64) {
    let lease = WriteLease {
        token: 1,
        until: Timestamp(NOW.0 + 60_000),
    };
    updated(
        update(
            store,
            tenant_name,
            number,
            MediaUpdate::BeginWrite {
                offset: 0,
                lease,
                now: NOW,
            },
        )
        .await,
    );
    let end = MediaUpdate::EndWrite {
        token: 1,
        received_bytes: size,
        media_type: Some(text()),
    };
    updated(update(store, tenant_name, number, end).await);
    let complete = MediaUpdate::Complete {
        sha256: "ab".repeat(32),
        media_type: text(),
        at: NOW,
        from_parts: false,
    };
    updated(update(store, tenant_name, number, complete).await);
}

async fn usage(store: &Arc<dyn MediaStore>, tenant_name: &str, uploader: &str) -> MediaUsage {
    store
        .usage(&tenant(tenant_name), &user(uploader))
        .await
        .expect("the store answers")
}

fn usage_of(tenant_bytes: u64, user_bytes: u64) -> MediaUsage {
    MediaUsage {
        tenant_bytes,
        user_bytes,
    }
}

async fn created_media_reads_back_and_cannot_be_created_twice(store: Arc<dyn MediaStore>) {
    let record = declared(1, "alice", 10);
    create(&store, "acme", &record).await;
    assert_eq!(
        store
            .media(&tenant("acme"), media_id(1))
            .await
            .expect("read"),
        Some(record.clone())
    );
    assert_eq!(
        store
            .create_media(&tenant("acme"), &declared(1, "bob", 5), NO_QUOTAS)
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .media(&tenant("acme"), media_id(1))
            .await
            .expect("read"),
        Some(record)
    );
}

async fn tenants_never_see_change_or_remove_each_others_media(store: Arc<dyn MediaStore>) {
    create(&store, "acme", &declared(1, "alice", 10)).await;
    let other = tenant("other");
    assert_eq!(store.media(&other, media_id(1)).await.expect("read"), None);
    assert_eq!(
        update(&store, "other", 1, MediaUpdate::Deleted { at: NOW }).await,
        MediaUpdateOutcome::NotFound
    );
    assert_eq!(
        store
            .remove_media(&other, media_id(1))
            .await
            .expect("removed"),
        None
    );
    assert_eq!(usage(&store, "other", "alice").await, usage_of(0, 0));
    assert_eq!(usage(&store, "acme", "alice").await, usage_of(10, 10));
    // The same id in another tenant is another record.
    create(&store, "other", &declared(1, "alice", 3)).await;
    assert_eq!(usage(&store, "acme", "alice").await, usage_of(10, 10));
    assert_eq!(usage(&store, "other", "alice").await, usage_of(3, 3));
}

async fn usage_follows_every_change(store: Arc<dyn MediaStore>) {
    create(&store, "acme", &declared(1, "alice", 100)).await;
    create(&store, "acme", &declared(2, "bob", 40)).await;
    assert_eq!(usage(&store, "acme", "alice").await, usage_of(140, 100));
    assert_eq!(usage(&store, "acme", "bob").await, usage_of(140, 40));
    assert_eq!(usage(&store, "acme", "carol").await, usage_of(140, 0));
    upload_whole(&store, "acme", 1, 100).await;
    assert_eq!(
        usage(&store, "acme", "alice").await,
        usage_of(140, 100),
        "complete keeps its charge"
    );
    updated(update(&store, "acme", 1, MediaUpdate::Deleted { at: NOW }).await);
    assert_eq!(
        usage(&store, "acme", "alice").await,
        usage_of(40, 0),
        "deleting frees it"
    );
    let removed = store
        .remove_media(&tenant("acme"), media_id(2))
        .await
        .expect("removed");
    assert_eq!(removed.map(|record| record.media_id), Some(media_id(2)));
    assert_eq!(
        usage(&store, "acme", "bob").await,
        usage_of(0, 0),
        "removing frees it"
    );
    assert_eq!(
        store
            .media(&tenant("acme"), media_id(2))
            .await
            .expect("read"),
        None
    );
}

async fn creation_is_refused_over_a_quota_and_stores_nothing(store: Arc<dyn MediaStore>) {
    let quotas = MediaQuotas {
        tenant_bytes: Some(1_000),
        user_bytes: Some(300),
    };
    let acme = tenant("acme");
    let create_within = |record: MediaRecord| {
        let store = Arc::clone(&store);
        let acme = acme.clone();
        async move {
            store
                .create_media(&acme, &record, quotas)
                .await
                .expect("the store answers")
        }
    };
    assert_eq!(create_within(declared(1, "alice", 250)).await, Ok(()));
    assert_eq!(
        create_within(declared(2, "alice", 51)).await,
        Err(Error::QuotaExceeded {
            scope: QuotaScope::User,
            limit_bytes: 300,
            remaining_bytes: 50,
        })
    );
    assert_eq!(store.media(&acme, media_id(2)).await.expect("read"), None);
    assert_eq!(create_within(declared(3, "bob", 300)).await, Ok(()));
    assert_eq!(create_within(declared(4, "carol", 300)).await, Ok(()));
    assert_eq!(
        create_within(declared(5, "dave", 151)).await,
        Err(Error::QuotaExceeded {
            scope: QuotaScope::Tenant,
            limit_bytes: 1_000,
            remaining_bytes: 150,
        })
    );
    assert_eq!(usage(&store, "acme", "dave").await, usage_of(850, 0));
    assert_eq!(
        create_within(declared(6, "alice", 0)).await,
        Ok(()),
        "empty files fit"
    );
}

async fn concurrent_creations_cannot_together_overrun_a_quota(store: Arc<dyn MediaStore>) {
    const N_UPLOADS: u64 = 12;
    let quotas = MediaQuotas {
        tenant_bytes: Some(350),
        user_bytes: None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for number in 1..=N_UPLOADS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            store
                .create_media(&tenant("acme"), &declared(number, "alice", 100), quotas)
                .await
                .expect("the store answers")
        });
    }
    let mut n_admitted = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("task completes") {
            Ok(()) => n_admitted += 1,
            Err(error) => assert!(matches!(error, Error::QuotaExceeded { .. }), "{error}"),
        }
    }
    assert_eq!(n_admitted, 3);
    assert_eq!(usage(&store, "acme", "alice").await, usage_of(300, 300));
}

async fn of_concurrent_writers_exactly_one_wins(store: Arc<dyn MediaStore>) {
    const N_WRITERS: u128 = 8;
    create(&store, "acme", &declared(1, "alice", 10)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for token in 1..=N_WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let lease = WriteLease {
                token,
                until: Timestamp(NOW.0 + 60_000),
            };
            update(
                &store,
                "acme",
                1,
                MediaUpdate::BeginWrite {
                    offset: 0,
                    lease,
                    now: NOW,
                },
            )
            .await
        });
    }
    let mut winners = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("task completes") {
            MediaUpdateOutcome::Updated(record) => winners.push(*record),
            MediaUpdateOutcome::Refused(Error::Conflict { .. }) => {}
            other => panic!("expected a win or a conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = store
        .media(&tenant("acme"), media_id(1))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored, winners[0]);
}

fn attached_to(number: u128) -> AttachedTo {
    AttachedTo {
        conversation_id: ConversationId::from_parts(BASE_MILLIS, number),
        message_id: MessageId::from_parts(BASE_MILLIS, number),
    }
}

async fn the_collector_lists_deleted_expired_and_orphaned_media_only(store: Arc<dyn MediaStore>) {
    let orphaned_before = Timestamp(NOW.0 + 1);
    // 1: uploading, not expired yet. 2: deleted. 3: complete, never attached. 4: complete and
    // attached. 5: another tenant's, deleted.
    for number in 1..=4 {
        create(&store, "acme", &declared(number, "alice", 5)).await;
    }
    create(&store, "other", &declared(5, "alice", 5)).await;
    updated(update(&store, "acme", 2, MediaUpdate::Deleted { at: NOW }).await);
    upload_whole(&store, "acme", 3, 5).await;
    upload_whole(&store, "acme", 4, 5).await;
    updated(update(&store, "acme", 4, MediaUpdate::Attached(attached_to(4))).await);
    updated(update(&store, "other", 5, MediaUpdate::Deleted { at: NOW }).await);

    let listed = |now: Timestamp, orphaned_before: Timestamp, limit: usize| {
        let store = Arc::clone(&store);
        async move {
            let mut found: Vec<(String, MediaId)> = store
                .media_to_collect(now, orphaned_before, limit)
                .await
                .expect("listed")
                .into_iter()
                .map(|(tenant_id, record)| (tenant_id.as_str().to_owned(), record.media_id))
                .collect();
            found.sort();
            found
        }
    };
    let at = |tenant_name: &str, number: u64| (tenant_name.to_owned(), media_id(number));
    assert_eq!(
        listed(NOW, orphaned_before, 10).await,
        vec![at("acme", 2), at("acme", 3), at("other", 5)]
    );
    assert_eq!(
        listed(NOW, NOW, 10).await,
        vec![at("acme", 2), at("other", 5)],
        "not orphaned long enough"
    );
    assert_eq!(
        listed(EXPIRES, orphaned_before, 10).await,
        vec![at("acme", 1), at("acme", 2), at("acme", 3), at("other", 5)],
        "the upload expired"
    );
    assert_eq!(
        listed(EXPIRES, orphaned_before, 2).await.len(),
        2,
        "at most the limit"
    );
    store
        .remove_media(&tenant("acme"), media_id(2))
        .await
        .expect("removed");
    assert_eq!(
        listed(NOW, orphaned_before, 10).await,
        vec![at("acme", 3), at("other", 5)],
        "removed media is gone from the list"
    );
}

/// Media `number`, uploaded in two writes (two parts) and assembled.
async fn upload_in_parts(store: &Arc<dyn MediaStore>, tenant_name: &str, number: u64) {
    for (token, offset, received_bytes) in [(1, 0, 2), (2, 2, 5)] {
        let lease = WriteLease {
            token,
            until: Timestamp(NOW.0 + 60_000),
        };
        let begin = MediaUpdate::BeginWrite {
            offset,
            lease,
            now: NOW,
        };
        updated(update(store, tenant_name, number, begin).await);
        let end = MediaUpdate::EndWrite {
            token,
            received_bytes,
            media_type: Some(text()),
        };
        updated(update(store, tenant_name, number, end).await);
    }
    let complete = MediaUpdate::Complete {
        sha256: "ab".repeat(32),
        media_type: text(),
        at: NOW,
        from_parts: true,
    };
    let assembled = updated(update(store, tenant_name, number, complete).await);
    assert_eq!(
        assembled.state,
        MediaState::Assembled {
            completed_at: NOW,
            parts: vec![0, 2],
        }
    );
}

async fn assembled_media_is_listed_for_its_parts_until_they_are_removed(
    store: Arc<dyn MediaStore>,
) {
    create(&store, "acme", &declared(1, "alice", 5)).await;
    upload_in_parts(&store, "acme", 1).await;
    updated(update(&store, "acme", 1, MediaUpdate::Attached(attached_to(1))).await);
    // Attached, and long before any orphan rule: listed for its parts all the same.
    let listed = store
        .media_to_collect(NOW, Timestamp(0), 10)
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, tenant("acme"));
    assert!(
        matches!(&listed[0].1.state, MediaState::Assembled { parts, .. } if parts == &[0, 2]),
        "{listed:?}"
    );
    assert_eq!(
        usage(&store, "acme", "alice").await,
        usage_of(5, 5),
        "charged as complete media"
    );
    let complete = updated(update(&store, "acme", 1, MediaUpdate::PartsRemoved).await);
    assert_eq!(complete.state, MediaState::Complete { completed_at: NOW });
    assert!(
        store
            .media_to_collect(Timestamp(u64::MAX), Timestamp(u64::MAX), 10)
            .await
            .expect("listed")
            .is_empty(),
        "complete and attached: nothing to do"
    );
    let stored = store
        .media(&tenant("acme"), media_id(1))
        .await
        .expect("readable")
        .expect("kept");
    assert_eq!(stored, complete);
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "mongodb")]
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let messages = super::support::mongodb_message_store("media").await;
                    let store = switchboard_storage::MongoMediaStore::new(&messages);
                    super::$test(std::sync::Arc::new(store)).await;
                    messages.database().drop().await.expect("the test database is dropped");
                }
            )*
        }

        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(std::sync::Arc::new(super::MemoryMediaStore::new())).await;
                }
            )*
        }

        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let directory = tempfile::tempdir().expect("a temporary directory");
                    let store = super::EmbeddedMediaStore::open(directory.path())
                        .expect("the store opens");
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

conformance!(
    created_media_reads_back_and_cannot_be_created_twice,
    tenants_never_see_change_or_remove_each_others_media,
    usage_follows_every_change,
    creation_is_refused_over_a_quota_and_stores_nothing,
    concurrent_creations_cannot_together_overrun_a_quota,
    of_concurrent_writers_exactly_one_wins,
    the_collector_lists_deleted_expired_and_orphaned_media_only,
    assembled_media_is_listed_for_its_parts_until_they_are_removed,
);

#[tokio::test]
async fn embedded_media_and_usage_survive_a_reopen() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    {
        let store: Arc<dyn MediaStore> =
            Arc::new(EmbeddedMediaStore::open(directory.path()).expect("the store opens"));
        create(&store, "acme", &declared(1, "alice", 10)).await;
        upload_whole(&store, "acme", 1, 10).await;
        create(&store, "acme", &declared(2, "alice", 7)).await;
    }
    let store: Arc<dyn MediaStore> =
        Arc::new(EmbeddedMediaStore::open(directory.path()).expect("the store reopens"));
    let first = store
        .media(&tenant("acme"), media_id(1))
        .await
        .expect("read")
        .expect("present");
    assert!(first.is_complete());
    assert_eq!(usage(&store, "acme", "alice").await, usage_of(17, 17));
    let orphaned_before = Timestamp(NOW.0 + 1);
    assert_eq!(
        store
            .media_to_collect(NOW, orphaned_before, 10)
            .await
            .expect("listed")
            .len(),
        1,
        "the lifecycle index survives too"
    );
}
