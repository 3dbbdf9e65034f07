//! The media service over the in-memory stores: a whole upload, and every refusal leaving
//! nothing behind (no record, no object, no usage); downloads of ranges; who may read and
//! delete.

use std::sync::Arc;

use bytes::Bytes;
use switchboard_engine::blob::{ByteRange, ChunksSource};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::media::{
    MediaAllowList, MediaQuotas, MediaUsage, QuotaScope, media_part_object_key,
};
use switchboard_engine::model::{Conversation, ConversationKind, Member, Role};
use switchboard_engine::ports::Clock as _;
use switchboard_engine::time::Timestamp;
use switchboard_storage::{MemoryMediaStore, MemoryMessageStore, MemoryObjectStore};

use super::*;
use crate::clock::ManualClock;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

struct Fixture {
    service: Arc<MediaService>,
    media: Arc<MemoryMediaStore>,
    objects: Arc<MemoryObjectStore>,
    messages: Arc<MemoryMessageStore>,
    clock: Arc<ManualClock>,
}

fn identity(user: &str) -> Identity {
    Identity {
        tenant_id: TenantId::parse("acme").expect("valid"),
        user_id: UserId::parse(user).expect("valid"),
    }
}

fn fixture(quotas: MediaQuotas) -> Fixture {
    fixture_with(quotas, None)
}

fn fixture_with(quotas: MediaQuotas, orphan_ttl: Option<Duration>) -> Fixture {
    let media = Arc::new(MemoryMediaStore::new());
    let objects = Arc::new(MemoryObjectStore::new());
    let messages = Arc::new(MemoryMessageStore::new());
    let clock = Arc::new(ManualClock::at(Timestamp(1_700_000_000_000)));
    let service = Arc::new(MediaService::new(
        MediaPorts {
            store: Arc::clone(&media) as Arc<dyn MediaStore>,
            objects: Arc::clone(&objects) as Arc<dyn ObjectStore>,
        },
        Arc::clone(&messages) as Arc<dyn MessageStore>,
        MediaSettings {
            max_file_bytes: 1_000,
            quotas,
            tenant_quotas: HashMap::new(),
            allowed_types: MediaAllowList::default(),
            tenant_allowed_types: HashMap::new(),
            upload_expiry: Duration::from_secs(3_600),
            orphan_ttl,
            call_timeout: Duration::from_secs(5),
            thumbnail_sizes: vec![256, 1024],
            redirect_links: false,
        },
        IdGenerator::new(Arc::clone(&clock) as Arc<dyn switchboard_engine::ports::Clock>),
    ));
    Fixture {
        service,
        media,
        objects,
        messages,
        clock,
    }
}

fn upload(file_name: &str, declared_bytes: u64) -> NewUpload {
    NewUpload {
        file_name: file_name.to_owned(),
        conversation_id: None,
        declared_bytes,
        length_is_upper_bound: false,
    }
}

impl Fixture {
    async fn upload(
        &self,
        user: &str,
        new_upload: NewUpload,
        bytes: &[u8],
    ) -> Result<MediaRecord, Error> {
        let mut body = ChunksSource::split(Bytes::copy_from_slice(bytes), 7);
        self.service
            .upload(&identity(user), new_upload, &mut body)
            .await
    }

    /// Nothing is left of refused uploads: no usage, no object.
    async fn assert_nothing_kept(&self, user: &str) {
        let usage = self
            .media
            .usage(&identity(user).tenant_id, &identity(user).user_id)
            .await
            .expect("usage");
        assert_eq!(usage, MediaUsage::default());
        assert_eq!(self.objects.n_objects(), 0);
    }
}

#[tokio::test]
async fn a_whole_upload_is_stored_sniffed_and_hashed() {
    let fixture = fixture(MediaQuotas::default());
    let record = fixture
        .upload("alice", upload("pixel.png", PNG.len() as u64), PNG)
        .await
        .expect("stored");
    assert!(record.is_complete());
    assert_eq!(
        record.media_type.as_ref().map(|t| t.mime.as_str()),
        Some("image/png")
    );
    assert_eq!(record.sha256.as_ref().map(String::len), Some(64));
    assert_eq!(record.received_bytes(), PNG.len() as u64);
    let read = fixture
        .service
        .record(&identity("alice"), record.media_id)
        .await
        .expect("the uploader reads it");
    assert_eq!(read, record);
    let opened = fixture
        .service
        .open_object(&identity("alice").tenant_id, &record, ByteRange::new(1, 4))
        .await
        .expect("opens");
    assert_eq!(
        (opened.start, opened.end, opened.total_bytes),
        (1, 4, PNG.len() as u64)
    );
}

/// Whether an error is the one a case expects.
type IsExpected = fn(&Error) -> bool;

#[tokio::test]
async fn refused_uploads_keep_nothing() {
    let quotas = MediaQuotas {
        tenant_bytes: None,
        user_bytes: Some(100),
    };
    let fixture = fixture(quotas);
    let elf_like = b"\x7fELF but not long enough to be called one, so unknown bytes\0";
    let cases: Vec<(NewUpload, &[u8], IsExpected)> = vec![
        (upload("../evil.png", 4), b"abcd", |e| {
            matches!(e, Error::Invalid { .. })
        }),
        (upload("big.txt", 1_001), b"", |e| {
            matches!(e, Error::TooLarge { .. })
        }),
        (upload("quota.txt", 101), &[b'a'; 101], |e| {
            matches!(
                e,
                Error::QuotaExceeded {
                    scope: QuotaScope::User,
                    remaining_bytes: 100,
                    ..
                }
            )
        }),
        (upload("pixel.exe", PNG.len() as u64), PNG, |e| {
            matches!(e, Error::UnsupportedMediaType { .. })
        }),
        (upload("tool.png", elf_like.len() as u64), elf_like, |e| {
            matches!(e, Error::UnsupportedMediaType { .. })
        }),
        (upload("short.txt", 10), b"only 7", |e| {
            matches!(e, Error::Invalid { .. })
        }),
        (upload("long.txt", 3), b"more than three", |e| {
            matches!(e, Error::TooLarge { .. })
        }),
    ];
    for (new_upload, bytes, expected) in cases {
        let name = new_upload.file_name.clone();
        let outcome = fixture.upload("alice", new_upload, bytes).await;
        assert!(outcome.as_ref().is_err_and(expected), "{name}: {outcome:?}");
        fixture.assert_nothing_kept("alice").await;
    }
    // The empty file is a file.
    let empty = fixture
        .upload("alice", upload("empty.txt", 0), b"")
        .await
        .expect("stored");
    assert_eq!(empty.size_bytes, 0);
}

#[tokio::test]
async fn a_named_conversation_must_be_the_uploaders() {
    let fixture = fixture(MediaQuotas::default());
    let tenant_id = identity("alice").tenant_id;
    let conversation_id = ConversationId::from_parts(1, 1);
    let conversation = Conversation::new(
        conversation_id,
        tenant_id,
        ConversationKind::Group,
        None,
        identity("alice").user_id,
        Timestamp(1),
    );
    let owner = Member {
        user_id: identity("alice").user_id,
        role: Role::Owner,
        joined_at: Timestamp(1),
    };
    fixture
        .messages
        .create_conversation(&conversation, &[owner])
        .await
        .expect("created");
    let mut for_conversation = upload("notes.txt", 5);
    for_conversation.conversation_id = Some(conversation_id);
    assert!(
        fixture
            .upload("alice", for_conversation.clone(), b"notes")
            .await
            .is_ok()
    );
    assert_eq!(
        fixture
            .upload("mallory", for_conversation.clone(), b"notes")
            .await,
        Err(Error::NotMember)
    );
    for_conversation.conversation_id = Some(ConversationId::from_parts(1, 2));
    assert_eq!(
        fixture.upload("alice", for_conversation, b"notes").await,
        Err(Error::NotFound)
    );
}

#[tokio::test]
async fn only_the_uploader_reads_and_the_uploader_or_an_admin_deletes() {
    let fixture = fixture(MediaQuotas::default());
    let record = fixture
        .upload("alice", upload("a.txt", 3), b"abc")
        .await
        .expect("stored");
    let media_id = record.media_id;
    assert_eq!(
        fixture.service.record(&identity("bob"), media_id).await,
        Err(Error::NotFound)
    );
    assert_eq!(
        fixture
            .service
            .delete(&identity("bob"), media_id, false)
            .await,
        Err(Error::NotFound)
    );
    let other_tenant = Identity {
        tenant_id: TenantId::parse("other").expect("valid"),
        user_id: identity("alice").user_id,
    };
    assert_eq!(
        fixture.service.record(&other_tenant, media_id).await,
        Err(Error::NotFound)
    );
    fixture
        .service
        .delete(&identity("bob"), media_id, true)
        .await
        .expect("an admin deletes");
    assert_eq!(
        fixture.service.record(&identity("alice"), media_id).await,
        Err(Error::NotFound)
    );
    fixture.assert_nothing_kept("alice").await;
}

#[tokio::test]
async fn the_collector_removes_expired_uploads_and_deleted_media_and_keeps_the_rest() {
    let fixture = fixture(MediaQuotas::default());
    let kept = fixture
        .upload("alice", upload("kept.txt", 3), b"abc")
        .await
        .expect("stored");
    let unfinished = fixture
        .service
        .declare(&identity("alice"), upload("unfinished.txt", 10))
        .await
        .expect("declared");
    let mut first_bytes = ChunksSource::split(Bytes::from_static(b"hello"), 0);
    fixture
        .service
        .append(
            &identity("alice"),
            unfinished.media_id,
            0,
            &mut first_bytes,
            None,
        )
        .await
        .expect("appended");
    assert_eq!(
        fixture.objects.n_objects(),
        2,
        "the kept media and one part"
    );
    assert_eq!(
        fixture.service.collect(10).await,
        Ok(0),
        "nothing is due yet"
    );

    fixture.clock.advance(3_600 * 1_000);
    assert_eq!(
        fixture.service.collect(10).await,
        Ok(1),
        "the upload expired"
    );
    assert_eq!(fixture.objects.n_objects(), 1, "its part is gone");
    assert_eq!(
        fixture
            .service
            .record(&identity("alice"), unfinished.media_id)
            .await,
        Err(Error::NotFound)
    );
    assert_eq!(
        fixture.service.collect(10).await,
        Ok(0),
        "a second round finds nothing"
    );
    let usage = fixture
        .media
        .usage(&identity("alice").tenant_id, &identity("alice").user_id)
        .await
        .expect("usage");
    assert_eq!(usage.user_bytes, 3, "only the kept media counts");
    assert!(
        fixture
            .service
            .record(&identity("alice"), kept.media_id)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn with_an_orphan_ttl_unattached_media_is_collected_after_it() {
    let fixture = fixture_with(MediaQuotas::default(), Some(Duration::from_secs(60)));
    let orphan = fixture
        .upload("alice", upload("orphan.txt", 3), b"abc")
        .await
        .expect("stored");
    fixture.clock.advance(60_000);
    assert_eq!(
        fixture.service.collect(10).await,
        Ok(0),
        "not older than the ttl yet"
    );
    fixture.clock.advance(1);
    assert_eq!(fixture.service.collect(10).await, Ok(1));
    assert_eq!(fixture.objects.n_objects(), 0);
    assert_eq!(
        fixture
            .service
            .record(&identity("alice"), orphan.media_id)
            .await,
        Err(Error::NotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn the_collector_actor_runs_every_interval() {
    use collector::{MediaCollectorArgs, MediaCollectorHandle};
    let fixture = fixture(MediaQuotas::default());
    let unfinished = fixture
        .service
        .declare(&identity("alice"), upload("unfinished.txt", 10))
        .await
        .expect("declared");
    let collector = MediaCollectorHandle::start(MediaCollectorArgs {
        service: Arc::clone(&fixture.service),
        interval: Duration::from_secs(60),
    })
    .await
    .expect("starts");
    fixture.clock.advance(3_600 * 1_000);
    // Paused time: each sleep lets the runtime reach the next tick at once.
    let mut n_ticks = 0;
    while fixture
        .media
        .media(&identity("alice").tenant_id, unfinished.media_id)
        .await
        .expect("read")
        .is_some()
    {
        assert!(
            n_ticks < 3,
            "the collector did not run within three intervals"
        );
        tokio::time::sleep(Duration::from_secs(60)).await;
        n_ticks += 1;
    }
    assert_eq!(
        collector.collect_now(Duration::from_secs(5)).await.ok(),
        Some(0)
    );
    collector.stop();
}

#[tokio::test]
async fn a_resumable_upload_leaves_only_its_media_and_the_collector_finishes_one_cut_short() {
    let fixture = fixture(MediaQuotas::default());
    let alice = identity("alice");
    // Two appends: two parts, assembled into the media object, then deleted.
    let declared = fixture
        .service
        .declare(&alice, upload("whole.txt", 10))
        .await
        .expect("declared");
    for (offset, bytes) in [(0, b"hello"), (5, b"world")] {
        let mut body = ChunksSource::split(Bytes::from_static(bytes), 0);
        fixture
            .service
            .append(&alice, declared.media_id, offset, &mut body, None)
            .await
            .expect("appended");
    }
    let record = fixture
        .service
        .record(&alice, declared.media_id)
        .await
        .expect("readable");
    assert!(
        matches!(record.state, MediaState::Complete { .. }),
        "{record:?}"
    );
    assert_eq!(fixture.objects.n_objects(), 1, "only the media object");

    // The same upload cut short between its assembly and its parts' deletion: the record
    // lists the parts, the collector deletes them and keeps the media.
    let cut = fixture
        .service
        .declare(&alice, upload("cut.txt", 10))
        .await
        .expect("declared");
    let tenant_id = &alice.tenant_id;
    let now = fixture.clock.now();
    for (token, offset, bytes) in [(1, 0u64, &b"hello"[..]), (2, 5, &b"world"[..])] {
        let mut part = ChunksSource::split(Bytes::copy_from_slice(bytes), 0);
        fixture
            .objects
            .put_stream(
                tenant_id,
                &media_part_object_key(cut.media_id, offset),
                "application/octet-stream",
                &mut part,
                5,
            )
            .await
            .expect("part stored");
        let lease = WriteLease {
            token,
            until: Timestamp(now.0 + 60_000),
        };
        for update in [
            MediaUpdate::BeginWrite { offset, lease, now },
            MediaUpdate::EndWrite {
                token,
                received_bytes: offset + 5,
                media_type: None,
            },
        ] {
            assert!(matches!(
                fixture
                    .media
                    .update_media(tenant_id, cut.media_id, update)
                    .await,
                Ok(MediaUpdateOutcome::Updated(_))
            ));
        }
    }
    let mut whole = ChunksSource::split(Bytes::from_static(b"helloworld"), 0);
    fixture
        .objects
        .put_stream(
            tenant_id,
            &media_object_key(cut.media_id),
            "text/plain",
            &mut whole,
            10,
        )
        .await
        .expect("assembled");
    let complete = MediaUpdate::Complete {
        sha256: "ab".repeat(32),
        media_type: sniff(b"helloworld"),
        at: now,
        from_parts: true,
    };
    assert!(matches!(
        fixture
            .media
            .update_media(tenant_id, cut.media_id, complete)
            .await,
        Ok(MediaUpdateOutcome::Updated(_))
    ));
    assert_eq!(
        fixture.objects.n_objects(),
        4,
        "two media objects, two parts"
    );
    let assembled = fixture
        .service
        .record(&alice, cut.media_id)
        .await
        .expect("readable");
    assert!(assembled.is_complete(), "readable as complete meanwhile");

    assert_eq!(fixture.service.collect(10).await, Ok(1));
    assert_eq!(fixture.objects.n_objects(), 2, "the parts are gone");
    let finished = fixture
        .service
        .record(&alice, cut.media_id)
        .await
        .expect("kept");
    assert_eq!(finished.state, MediaState::Complete { completed_at: now });
    assert_eq!(
        fixture.service.collect(10).await,
        Ok(0),
        "nothing left to do"
    );
}
