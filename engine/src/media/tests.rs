//! The media record's life: leases and offsets of writes, completion, attachment, deletion,
//! what it is charged and when the collector takes it.

use super::*;

const NOW: Timestamp = Timestamp(1_700_000_000_000);
const EXPIRES: Timestamp = Timestamp(1_700_000_100_000);

fn declared(size_bytes: u64) -> MediaRecord {
    MediaRecord::declared(
        MediaId::from_parts(1, 1),
        UserId::parse("alice").expect("valid"),
        MediaFileName::parse("cat.png").expect("valid"),
        None,
        size_bytes,
        NOW,
        EXPIRES,
    )
}

fn attached_to(number: u128) -> AttachedTo {
    AttachedTo {
        conversation_id: crate::ids::ConversationId::from_parts(1, number),
        message_id: crate::ids::MessageId::from_parts(2, number),
    }
}

fn lease(token: u128, until_ms: u64) -> WriteLease {
    WriteLease {
        token,
        until: Timestamp(NOW.0 + until_ms),
    }
}

fn begin(offset: u64, lease: WriteLease, now: Timestamp) -> MediaUpdate {
    MediaUpdate::BeginWrite { offset, lease, now }
}

fn end(token: u128, received_bytes: u64) -> MediaUpdate {
    MediaUpdate::EndWrite {
        token,
        received_bytes,
        media_type: None,
    }
}

fn png() -> MediaType {
    MediaType {
        mime: "image/png".to_owned(),
        family: MediaFamily::Image,
    }
}

fn complete() -> MediaUpdate {
    MediaUpdate::Complete {
        sha256: "ab".repeat(32),
        media_type: png(),
        at: NOW,
        from_parts: false,
    }
}

fn is_conflict(result: Result<()>) -> bool {
    matches!(result, Err(Error::Conflict { .. }))
}

#[test]
fn writes_start_at_the_stored_offset_and_one_at_a_time() {
    let mut record = declared(10);
    assert!(
        is_conflict(record.apply(begin(3, lease(1, 1_000), NOW))),
        "wrong offset"
    );
    assert_eq!(record.apply(begin(0, lease(1, 1_000), NOW)), Ok(()));
    assert!(
        is_conflict(record.apply(begin(0, lease(2, 1_000), NOW))),
        "the second concurrent writer loses"
    );
    assert!(
        is_conflict(record.apply(end(2, 4))),
        "only the lease holder ends the write"
    );
    assert_eq!(record.apply(end(1, 4)), Ok(()));
    assert_eq!(record.received_bytes(), 4);
    assert!(
        is_conflict(record.apply(begin(0, lease(3, 1_000), NOW))),
        "offset moved on"
    );
    assert_eq!(record.apply(begin(4, lease(3, 1_000), NOW)), Ok(()));
}

#[test]
fn a_lapsed_lease_no_longer_blocks_the_upload() {
    let mut record = declared(10);
    assert_eq!(record.apply(begin(0, lease(1, 1_000), NOW)), Ok(()));
    let later = Timestamp(NOW.0 + 1_000);
    assert_eq!(record.apply(begin(0, lease(2, 2_000), later)), Ok(()));
    assert!(
        is_conflict(record.apply(end(1, 5))),
        "the lapsed writer cannot end"
    );
    assert_eq!(record.apply(end(2, 5)), Ok(()));
}

#[test]
fn a_write_cannot_pass_the_declared_size_and_an_expired_upload_takes_none() {
    let mut record = declared(10);
    assert_eq!(record.apply(begin(0, lease(1, 1_000), NOW)), Ok(()));
    assert!(matches!(
        record.apply(end(1, 11)),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(record.apply(end(1, 10)), Ok(()));
    let mut expired = declared(10);
    assert_eq!(
        expired.apply(begin(0, lease(1, 1_000), EXPIRES)),
        Err(Error::NotFound)
    );
}

#[test]
fn only_a_fully_received_upload_completes_and_only_complete_media_is_attached() {
    let mut record = declared(10);
    assert!(is_conflict(record.apply(complete())));
    assert!(is_conflict(
        record.apply(MediaUpdate::Attached(attached_to(1)))
    ));
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    record.apply(end(1, 10)).expect("ends");
    assert_eq!(record.apply(complete()), Ok(()));
    assert!(record.is_complete());
    assert_eq!(record.media_type, Some(png()));
    assert!(is_conflict(record.apply(complete())), "completes once");
    assert!(is_conflict(record.apply(begin(10, lease(2, 1_000), NOW))));
    assert_eq!(record.apply(MediaUpdate::Attached(attached_to(1))), Ok(()));
    assert_eq!(record.apply(MediaUpdate::Attached(attached_to(2))), Ok(()));
    assert_eq!(
        record.apply(MediaUpdate::Attached(attached_to(1))),
        Ok(()),
        "attaching again changes nothing"
    );
    assert_eq!(record.attached_to, vec![attached_to(1), attached_to(2)]);
}

#[test]
fn the_empty_file_completes_without_a_write() {
    let mut record = declared(0);
    assert_eq!(record.apply(complete()), Ok(()));
}

#[test]
fn deleted_media_refuses_everything_but_another_delete() {
    let mut record = declared(10);
    record
        .apply(MediaUpdate::Deleted { at: NOW })
        .expect("deletes");
    assert_eq!(record.charged_bytes(), 0);
    assert_eq!(
        record.apply(begin(0, lease(1, 1_000), NOW)),
        Err(Error::NotFound)
    );
    assert_eq!(
        record.apply(MediaUpdate::Attached(attached_to(1))),
        Err(Error::NotFound)
    );
    assert_eq!(record.apply(MediaUpdate::Deleted { at: EXPIRES }), Ok(()));
}

#[test]
fn charged_bytes_count_the_declared_size_and_thumbnails() {
    let mut record = declared(1_000);
    assert_eq!(record.charged_bytes(), 1_000);
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    record.apply(end(1, 1_000)).expect("ends");
    record.apply(complete()).expect("completes");
    record
        .apply(MediaUpdate::Thumbnailed {
            dimensions: Some(Dimensions {
                width: 4_000,
                height: 3_000,
            }),
            thumbnails: vec![Thumbnail {
                size: 256,
                dimensions: Dimensions {
                    width: 256,
                    height: 192,
                },
                mime: "image/webp".to_owned(),
                object_key: thumbnail_object_key(record.media_id, 256),
                bytes: 50,
            }],
            failure: None,
        })
        .expect("thumbnailed");
    assert_eq!(record.charged_bytes(), 1_050);
}

#[test]
fn the_collector_takes_deleted_expired_and_old_orphaned_media() {
    let orphaned_before = Timestamp(NOW.0 + 1);
    let uploading = declared(10);
    assert!(!is_collectable(&uploading, NOW, orphaned_before));
    assert!(is_collectable(&uploading, EXPIRES, orphaned_before));

    let mut orphan = declared(0);
    orphan.apply(complete()).expect("completes");
    assert!(is_collectable(&orphan, NOW, orphaned_before));
    assert!(!is_collectable(&orphan, NOW, NOW), "not yet old enough");
    orphan
        .apply(MediaUpdate::Attached(attached_to(1)))
        .expect("attaches");
    assert!(
        !is_collectable(&orphan, NOW, orphaned_before),
        "attached media stays"
    );

    let mut deleted = declared(10);
    deleted
        .apply(MediaUpdate::Deleted { at: NOW })
        .expect("deletes");
    assert!(is_collectable(&deleted, NOW, Timestamp(0)));
}

#[test]
fn object_keys_are_valid_and_distinct() {
    let media_id = MediaId::from_parts(1, 1);
    let keys = [
        media_object_key(media_id),
        thumbnail_object_key(media_id, 256),
        thumbnail_object_key(media_id, 1024),
    ];
    for key in &keys {
        assert_eq!(ObjectKey::parse(key.as_str()).as_ref(), Ok(key));
    }
    assert_ne!(keys[1], keys[2]);
}

#[test]
fn each_write_that_stores_bytes_is_one_part_and_only_the_holder_renews_its_lease() {
    let mut record = declared(10);
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    let renew = |token: u128| MediaUpdate::RenewLease {
        token,
        until: Timestamp(NOW.0 + 5_000),
    };
    assert!(is_conflict(record.apply(renew(2))), "not the holder");
    assert_eq!(record.apply(renew(1)), Ok(()));
    assert!(
        is_conflict(record.apply(begin(0, lease(2, 1_000), Timestamp(NOW.0 + 2_000)))),
        "the renewed lease still holds after the first one would have lapsed"
    );
    record.apply(end(1, 4)).expect("ends");
    record
        .apply(begin(4, lease(3, 1_000), NOW))
        .expect("begins");
    record
        .apply(end(3, 4))
        .expect("a write that stored nothing");
    record
        .apply(begin(4, lease(4, 1_000), NOW))
        .expect("begins");
    record.apply(end(4, 10)).expect("ends");
    let MediaState::Uploading { parts, .. } = &record.state else {
        panic!("still uploading: {:?}", record.state);
    };
    assert_eq!(parts, &[0, 4]);
    assert!(is_conflict(record.apply(renew(4))), "no write holds it now");
}

#[test]
fn deleting_an_unfinished_upload_keeps_the_list_of_its_parts() {
    let mut record = declared(10);
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    record.apply(end(1, 4)).expect("ends");
    record
        .apply(MediaUpdate::Deleted { at: NOW })
        .expect("deletes");
    assert_eq!(
        record.state,
        MediaState::Deleted {
            deleted_at: NOW,
            parts: vec![0],
        }
    );
}

#[test]
fn a_form_upload_settles_at_its_files_length_before_its_bytes_are_recorded_and_never_grows() {
    let mut record = declared(1_000);
    assert!(is_conflict(
        record.apply(MediaUpdate::Shrink { size_bytes: 1_001 })
    ));
    record
        .apply(MediaUpdate::Shrink { size_bytes: 600 })
        .expect("shrinks");
    assert_eq!((record.size_bytes, record.charged_bytes()), (600, 600));
    let lease = lease(7, 1_000);
    record.apply(begin(0, lease, NOW)).expect("begins");
    record.apply(end(7, 600)).expect("ends");
    record
        .apply(complete())
        .expect("completes at the file's length");
    // Once bytes are recorded, or complete, it shrinks no more.
    assert!(is_conflict(
        record.apply(MediaUpdate::Shrink { size_bytes: 10 })
    ));
}

#[test]
fn an_upload_assembled_from_parts_lists_them_until_they_are_removed_and_is_complete_meanwhile() {
    let mut record = declared(10);
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    record.apply(end(1, 4)).expect("ends");
    record
        .apply(begin(4, lease(2, 1_000), NOW))
        .expect("begins");
    record.apply(end(2, 10)).expect("ends");
    assert!(is_conflict(record.apply(MediaUpdate::PartsRemoved)));
    record
        .apply(MediaUpdate::Complete {
            sha256: "ab".repeat(32),
            media_type: png(),
            at: NOW,
            from_parts: true,
        })
        .expect("completes");
    assert_eq!(
        record.state,
        MediaState::Assembled {
            completed_at: NOW,
            parts: vec![0, 4],
        }
    );
    // Complete for every reader, and work for the collector.
    assert!(record.is_complete());
    assert_eq!(record.received_bytes(), 10);
    assert_eq!(record.charged_bytes(), 10);
    assert_eq!(record.state.completed_at(), Some(NOW));
    assert!(is_collectable(&record, NOW, Timestamp(0)));
    record
        .apply(MediaUpdate::Attached(attached_to(1)))
        .expect("attachable");
    // Deleted before its parts were: the tombstone keeps them.
    let mut deleted = record.clone();
    deleted
        .apply(MediaUpdate::Deleted { at: NOW })
        .expect("deletes");
    assert_eq!(
        deleted.state,
        MediaState::Deleted {
            deleted_at: NOW,
            parts: vec![0, 4],
        }
    );
    record
        .apply(MediaUpdate::PartsRemoved)
        .expect("parts removed");
    assert_eq!(record.state, MediaState::Complete { completed_at: NOW });
    assert!(
        !is_collectable(&record, NOW, Timestamp(u64::MAX)),
        "attached"
    );
    record
        .apply(MediaUpdate::PartsRemoved)
        .expect("again: nothing to do");
    assert_eq!(record.state, MediaState::Complete { completed_at: NOW });
}

#[test]
fn a_whole_upload_completes_without_parts_to_remove() {
    let mut record = declared(10);
    record
        .apply(begin(0, lease(1, 1_000), NOW))
        .expect("begins");
    record.apply(end(1, 10)).expect("ends");
    record.apply(complete()).expect("completes");
    assert_eq!(record.state, MediaState::Complete { completed_at: NOW });
}
