//! The shared conformance suite for every [`RecordingStore`] adapter: the in-memory store, the
//! embedded store (in a temporary directory) and, with the `mongodb` feature, the MongoDB store
//! on the server named by `SWITCHBOARD_TEST_MONGODB_URI`.
//!
//! It checks the whole contract of the port: tenant isolation for every method, creation once,
//! updates applied with the engine's rule and atomically with their read (concurrent updates
//! all land), newest-first pages with a cursor and a conversation filter, and an erase that
//! removes the record and writes its audit record together. The last test checks what only the
//! durable store can do: records and audit survive a reopen.

use std::sync::Arc;

use switchboard_engine::Error;
use switchboard_engine::StoreError;
use switchboard_engine::call::RecordingEndReason;
use switchboard_engine::ids::{AuditId, CallId, RecordingId};
use switchboard_engine::operations::RecordingConsent;
use switchboard_engine::recording::{
    AuditAction, AuditRecord, ObjectKey, RecordingFilter, RecordingQuality, RecordingRecord,
    RecordingStore, RecordingUpdate, RecordingUpdateOutcome, StoredObject,
};
use switchboard_engine::time::Timestamp;
use switchboard_storage::{EmbeddedRecordingStore, MemoryRecordingStore};

mod support;

use support::{BASE_MILLIS, conversation_id, tenant, user};

fn recording_id(number: u64) -> RecordingId {
    RecordingId::from_parts(BASE_MILLIS + number, u128::from(number))
}

fn record(number: u64, conversation: u128) -> RecordingRecord {
    RecordingRecord::started(
        recording_id(number),
        CallId::from_parts(BASE_MILLIS, u128::from(number)),
        conversation_id(conversation),
        user("alice"),
        vec![
            RecordingConsent {
                user_id: user("alice"),
                at: Timestamp(BASE_MILLIS + 1),
            },
            RecordingConsent {
                user_id: user("bob"),
                at: Timestamp(BASE_MILLIS + 2),
            },
        ],
        Timestamp(BASE_MILLIS + 3),
    )
}

fn audit(number: u64, recording: &RecordingRecord) -> AuditRecord {
    AuditRecord {
        audit_id: AuditId::from_parts(BASE_MILLIS + number, u128::from(number)),
        at: Timestamp(BASE_MILLIS + number),
        actor_id: user("admin"),
        action: AuditAction::RecordingErased {
            recording_id: recording.recording_id,
            call_id: recording.call_id,
            conversation_id: recording.conversation_id,
            object_erased: true,
        },
    }
}

fn object(number: u64) -> StoredObject {
    StoredObject {
        backend: "filesystem".to_owned(),
        location: format!("file:recordings/{number}"),
        key: ObjectKey::for_recording(recording_id(number)),
        bytes: 1234,
        content_type: "audio/ogg".to_owned(),
        sha256: "ab".repeat(32),
        stored_at: Timestamp(BASE_MILLIS + 9),
    }
}

fn updated(outcome: RecordingUpdateOutcome) -> RecordingRecord {
    match outcome {
        RecordingUpdateOutcome::Updated(record) => *record,
        other => panic!("expected Updated, got {other:?}"),
    }
}

fn ids(records: &[RecordingRecord]) -> Vec<RecordingId> {
    records.iter().map(|record| record.recording_id).collect()
}

async fn a_created_recording_reads_back_and_cannot_be_created_twice(
    store: Arc<dyn RecordingStore>,
) {
    let acme = tenant("acme");
    let first = record(1, 1);
    store
        .create_recording(&acme, &first)
        .await
        .expect("created");
    assert_eq!(
        store
            .recording(&acme, first.recording_id)
            .await
            .expect("read"),
        Some(first.clone())
    );
    let mut changed = first.clone();
    changed.requested_by = user("mallory");
    assert_eq!(
        store.create_recording(&acme, &changed).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .recording(&acme, first.recording_id)
            .await
            .expect("read"),
        Some(first),
        "a refused create changes nothing"
    );
    assert_eq!(
        store.recording(&acme, recording_id(2)).await.expect("read"),
        None
    );
}

async fn tenants_never_see_change_or_erase_each_others_recordings(store: Arc<dyn RecordingStore>) {
    let acme = tenant("acme");
    let globex = tenant("acme2");
    let acmes = record(1, 1);
    store
        .create_recording(&acme, &acmes)
        .await
        .expect("created");
    // The same id in another tenant is another recording.
    let mut globexs = record(1, 1);
    globexs.requested_by = user("carol");
    store
        .create_recording(&globex, &globexs)
        .await
        .expect("created");

    assert_eq!(
        store
            .recording(&globex, acmes.recording_id)
            .await
            .expect("read"),
        Some(globexs.clone())
    );
    let other = tenant("initech");
    assert_eq!(
        store
            .recording(&other, acmes.recording_id)
            .await
            .expect("read"),
        None
    );
    assert!(
        store
            .recordings(&other, RecordingFilter::default(), None, 10)
            .await
            .expect("listed")
            .is_empty()
    );
    assert_eq!(
        store
            .update_recording(
                &other,
                acmes.recording_id,
                RecordingUpdate::ObjectStored(object(1)),
            )
            .await
            .expect("updated"),
        RecordingUpdateOutcome::NotFound
    );
    assert_eq!(
        store
            .erase_recording(&other, acmes.recording_id, &audit(1, &acmes))
            .await
            .expect("erased"),
        None
    );
    assert!(
        store
            .audit_log(&other, None, 10)
            .await
            .expect("audit")
            .is_empty()
    );

    store
        .erase_recording(&globex, globexs.recording_id, &audit(2, &globexs))
        .await
        .expect("erased");
    assert_eq!(
        store
            .recording(&acme, acmes.recording_id)
            .await
            .expect("read"),
        Some(acmes),
        "erasing one tenant's recording leaves the other's"
    );
    assert!(
        store
            .audit_log(&acme, None, 10)
            .await
            .expect("audit")
            .is_empty()
    );
    assert_eq!(
        store
            .audit_log(&globex, None, 10)
            .await
            .expect("audit")
            .len(),
        1
    );
}

async fn updates_follow_the_engine_rules(store: Arc<dyn RecordingStore>) {
    let acme = tenant("acme");
    let first = record(1, 1);
    store
        .create_recording(&acme, &first)
        .await
        .expect("created");
    let id = first.recording_id;

    let late = RecordingConsent {
        user_id: user("carol"),
        at: Timestamp(BASE_MILLIS + 5),
    };
    let now = updated(
        store
            .update_recording(&acme, id, RecordingUpdate::Consented(late.clone()))
            .await
            .expect("updated"),
    );
    assert_eq!(
        now.participants,
        vec![user("alice"), user("bob"), user("carol")]
    );
    assert_eq!(now.consents.last(), Some(&late));

    updated(
        store
            .update_recording(
                &acme,
                id,
                RecordingUpdate::Stopped {
                    at: Timestamp(BASE_MILLIS + 6),
                    reason: RecordingEndReason::Stopped,
                    by: Some(user("bob")),
                },
            )
            .await
            .expect("updated"),
    );
    updated(
        store
            .update_recording(&acme, id, RecordingUpdate::ObjectStored(object(1)))
            .await
            .expect("updated"),
    );
    let second_object = store
        .update_recording(&acme, id, RecordingUpdate::ObjectStored(object(2)))
        .await
        .expect("answered");
    assert!(
        matches!(
            second_object,
            RecordingUpdateOutcome::Refused(Error::Conflict { .. })
        ),
        "{second_object:?}"
    );
    let bad_quality = store
        .update_recording(
            &acme,
            id,
            RecordingUpdate::QualityReported(RecordingQuality {
                packet_loss_ratio: Some(2.0),
                ..RecordingQuality::default()
            }),
        )
        .await
        .expect("answered");
    assert!(matches!(
        bad_quality,
        RecordingUpdateOutcome::Refused(Error::Invalid { .. })
    ));
    let quality = RecordingQuality {
        media_duration_ms: Some(60_000),
        average_bitrate_kbps: Some(64),
        packet_loss_ratio: Some(0.02),
        jitter_ms: Some(12),
        frames_dropped: None,
        resolution: None,
        reported_at: Timestamp(BASE_MILLIS + 10),
    };
    updated(
        store
            .update_recording(&acme, id, RecordingUpdate::QualityReported(quality.clone()))
            .await
            .expect("updated"),
    );

    let stored = store
        .recording(&acme, id)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.stopped_at, Some(Timestamp(BASE_MILLIS + 6)));
    assert_eq!(stored.end_reason, Some(RecordingEndReason::Stopped));
    assert_eq!(stored.stopped_by, Some(user("bob")));
    assert_eq!(
        stored.object,
        Some(object(1)),
        "the refused second object left the first"
    );
    assert_eq!(stored.quality, Some(quality));
    assert_eq!(stored.consents.len(), 3);
    assert_eq!(
        store
            .update_recording(
                &acme,
                recording_id(9),
                RecordingUpdate::ObjectStored(object(9))
            )
            .await
            .expect("answered"),
        RecordingUpdateOutcome::NotFound
    );
}

async fn concurrent_updates_all_land(store: Arc<dyn RecordingStore>) {
    const N_CONSENTS: u64 = 16;
    let acme = tenant("acme");
    let first = record(1, 1);
    store
        .create_recording(&acme, &first)
        .await
        .expect("created");
    let mut tasks = tokio::task::JoinSet::new();
    for number in 0..N_CONSENTS {
        let store = Arc::clone(&store);
        let acme = acme.clone();
        tasks.spawn(async move {
            let consent = RecordingConsent {
                user_id: user(&format!("late-{number}")),
                at: Timestamp(BASE_MILLIS + 100 + number),
            };
            store
                .update_recording(&acme, recording_id(1), RecordingUpdate::Consented(consent))
                .await
                .expect("updated")
        });
    }
    while let Some(outcome) = tasks.join_next().await {
        updated(outcome.expect("task completes"));
    }
    let stored = store
        .recording(&acme, recording_id(1))
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.participants.len(), 2 + N_CONSENTS as usize);
    assert_eq!(stored.consents.len(), 2 + N_CONSENTS as usize);
}

async fn pages_are_newest_first_with_a_cursor_and_a_conversation_filter(
    store: Arc<dyn RecordingStore>,
) {
    let acme = tenant("acme");
    for number in 1..=7 {
        // Odd recordings in conversation 1, even ones in conversation 2.
        let conversation = if number % 2 == 1 { 1 } else { 2 };
        store
            .create_recording(&acme, &record(number, conversation))
            .await
            .expect("created");
    }
    let all = RecordingFilter::default();
    let first_page = store.recordings(&acme, all, None, 3).await.expect("listed");
    assert_eq!(
        ids(&first_page),
        vec![recording_id(7), recording_id(6), recording_id(5)]
    );
    let second_page = store
        .recordings(&acme, all, Some(recording_id(5)), 3)
        .await
        .expect("listed");
    assert_eq!(
        ids(&second_page),
        vec![recording_id(4), recording_id(3), recording_id(2)]
    );
    let last_page = store
        .recordings(&acme, all, Some(recording_id(2)), 3)
        .await
        .expect("listed");
    assert_eq!(ids(&last_page), vec![recording_id(1)]);

    let in_one = RecordingFilter {
        conversation_id: Some(conversation_id(1)),
    };
    let odd = store
        .recordings(&acme, in_one, None, 10)
        .await
        .expect("listed");
    assert_eq!(
        ids(&odd),
        vec![
            recording_id(7),
            recording_id(5),
            recording_id(3),
            recording_id(1)
        ]
    );
    let odd_after = store
        .recordings(&acme, in_one, Some(recording_id(5)), 1)
        .await
        .expect("listed");
    assert_eq!(ids(&odd_after), vec![recording_id(3)]);
    let in_other = RecordingFilter {
        conversation_id: Some(conversation_id(3)),
    };
    assert!(
        store
            .recordings(&acme, in_other, None, 10)
            .await
            .expect("listed")
            .is_empty()
    );
}

async fn an_erase_removes_the_record_everywhere_and_writes_one_audit_record(
    store: Arc<dyn RecordingStore>,
) {
    let acme = tenant("acme");
    let first = record(1, 1);
    let second = record(2, 1);
    store
        .create_recording(&acme, &first)
        .await
        .expect("created");
    store
        .create_recording(&acme, &second)
        .await
        .expect("created");

    let erased = store
        .erase_recording(&acme, first.recording_id, &audit(10, &first))
        .await
        .expect("erased");
    assert_eq!(erased, Some(first.clone()));
    assert_eq!(
        store
            .recording(&acme, first.recording_id)
            .await
            .expect("read"),
        None
    );
    for filter in [
        RecordingFilter::default(),
        RecordingFilter {
            conversation_id: Some(conversation_id(1)),
        },
    ] {
        assert_eq!(
            ids(&store
                .recordings(&acme, filter, None, 10)
                .await
                .expect("listed")),
            vec![second.recording_id]
        );
    }
    assert_eq!(
        store
            .update_recording(
                &acme,
                first.recording_id,
                RecordingUpdate::ObjectStored(object(1)),
            )
            .await
            .expect("answered"),
        RecordingUpdateOutcome::NotFound,
        "an erased recording takes no more updates"
    );
    assert_eq!(
        store
            .erase_recording(&acme, first.recording_id, &audit(11, &first))
            .await
            .expect("answered"),
        None,
        "a second erase finds nothing"
    );
    store
        .erase_recording(&acme, second.recording_id, &audit(12, &second))
        .await
        .expect("erased");

    let log = store.audit_log(&acme, None, 10).await.expect("audit");
    assert_eq!(log, vec![audit(12, &second), audit(10, &first)]);
    let older = store
        .audit_log(&acme, Some(audit(12, &second).audit_id), 10)
        .await
        .expect("audit");
    assert_eq!(older, vec![audit(10, &first)]);
    assert_eq!(
        store.audit_log(&acme, None, 1).await.expect("audit").len(),
        1
    );
}

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "mongodb")]
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let messages = super::mongodb_messages().await;
                    let store = switchboard_storage::MongoRecordingStore::new(&messages);
                    super::$test(std::sync::Arc::new(store)).await;
                    messages.database().drop().await.expect("the test database is dropped");
                }
            )*
        }

        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(std::sync::Arc::new(super::MemoryRecordingStore::new())).await;
                }
            )*
        }

        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let directory = tempfile::tempdir().expect("a temporary directory");
                    let store = super::EmbeddedRecordingStore::open(directory.path())
                        .expect("the store opens");
                    super::$test(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

/// A fresh database on the MongoDB server named by `SWITCHBOARD_TEST_MONGODB_URI`
/// (`scripts/test-services start mongodb` starts one and prints the variable).
#[cfg(feature = "mongodb")]
async fn mongodb_messages() -> switchboard_storage::MongoMessageStore {
    support::mongodb_message_store("recordings").await
}

conformance!(
    a_created_recording_reads_back_and_cannot_be_created_twice,
    tenants_never_see_change_or_erase_each_others_recordings,
    updates_follow_the_engine_rules,
    concurrent_updates_all_land,
    pages_are_newest_first_with_a_cursor_and_a_conversation_filter,
    an_erase_removes_the_record_everywhere_and_writes_one_audit_record,
);

#[tokio::test]
async fn embedded_recordings_and_audit_survive_a_reopen() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let acme = tenant("acme");
    let first = record(1, 1);
    let second = record(2, 1);
    {
        let store = EmbeddedRecordingStore::open(directory.path()).expect("the store opens");
        store
            .create_recording(&acme, &first)
            .await
            .expect("created");
        store
            .create_recording(&acme, &second)
            .await
            .expect("created");
        store
            .erase_recording(&acme, first.recording_id, &audit(5, &first))
            .await
            .expect("erased");
    }
    let store = EmbeddedRecordingStore::open(directory.path()).expect("the store reopens");
    assert_eq!(
        store
            .recording(&acme, first.recording_id)
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .recording(&acme, second.recording_id)
            .await
            .expect("read"),
        Some(second)
    );
    assert_eq!(
        store.audit_log(&acme, None, 10).await.expect("audit"),
        vec![audit(5, &first)]
    );
}
