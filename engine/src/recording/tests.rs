//! Tests of the recording metadata rules: object keys, media types, quality ranges and how
//! each update applies to a record.

use super::*;
use crate::test_fixtures::user;
use bytes::Bytes;

use crate::{PutError, SourceError};

fn consent(name: &str, at: u64) -> RecordingConsent {
    RecordingConsent {
        user_id: user(name),
        at: Timestamp(at),
    }
}

fn record() -> RecordingRecord {
    RecordingRecord::started(
        RecordingId::from_parts(1, 1),
        CallId::from_parts(1, 2),
        ConversationId::from_parts(1, 3),
        user("alice"),
        vec![consent("bob", 20), consent("alice", 10)],
        Timestamp(30),
    )
}

fn object() -> StoredObject {
    StoredObject {
        backend: "filesystem".to_owned(),
        location: "file:x".to_owned(),
        key: ObjectKey::for_recording(RecordingId::from_parts(1, 1)),
        bytes: 3,
        content_type: "audio/ogg".to_owned(),
        sha256: "00".to_owned(),
        stored_at: Timestamp(40),
    }
}

#[test]
fn object_keys_refuse_traversal_and_odd_characters() {
    for bad in [
        "", "/a", "a/", "a//b", "..", "a/../b", "./a", "a b", "a\\b", "ä",
    ] {
        assert!(ObjectKey::parse(bad).is_err(), "{bad:?} was accepted");
    }
    for good in ["a", "recordings/01J", "a.b/c_d-e", "..a/b.."] {
        assert_eq!(ObjectKey::parse(good).unwrap().as_str(), good);
    }
    assert!(ObjectKey::parse(&"a".repeat(MAX_OBJECT_KEY_BYTES + 1)).is_err());
    let key = ObjectKey::for_recording(RecordingId::from_parts(5, 6));
    assert_eq!(ObjectKey::parse(key.as_str()).unwrap(), key);
}

#[test]
fn content_types_need_a_type_and_a_subtype() {
    for good in ["audio/ogg", "video/webm; codecs=\"vp8, opus\""] {
        assert!(validate_content_type(good).is_ok(), "{good:?} was refused");
    }
    for bad in ["", "audio", "/ogg", "audio/", "audio/ogg\n"] {
        assert!(validate_content_type(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn a_started_record_lists_consents_in_time_order_and_their_givers_as_participants() {
    let record = record();
    assert_eq!(record.participants, vec![user("alice"), user("bob")]);
    assert_eq!(record.consents[0], consent("alice", 10));
    assert_eq!(record.stopped_at, None);
}

#[test]
fn a_late_consent_adds_a_participant_once() {
    let mut record = record();
    record
        .apply(RecordingUpdate::Consented(consent("carol", 50)))
        .unwrap();
    record
        .apply(RecordingUpdate::Consented(consent("carol", 60)))
        .unwrap();
    assert_eq!(record.participants.len(), 3);
    assert_eq!(record.consents.last(), Some(&consent("carol", 50)));
}

#[test]
fn the_first_stop_wins() {
    let mut record = record();
    record
        .apply(RecordingUpdate::Stopped {
            at: Timestamp(70),
            reason: RecordingEndReason::Stopped,
            by: Some(user("bob")),
        })
        .unwrap();
    record
        .apply(RecordingUpdate::Stopped {
            at: Timestamp(80),
            reason: RecordingEndReason::CallEnded,
            by: None,
        })
        .unwrap();
    assert_eq!(record.stopped_at, Some(Timestamp(70)));
    assert_eq!(record.end_reason, Some(RecordingEndReason::Stopped));
    assert_eq!(record.stopped_by, Some(user("bob")));
}

#[test]
fn a_recording_has_one_object() {
    let mut record = record();
    record
        .apply(RecordingUpdate::ObjectStored(object()))
        .unwrap();
    let again = record.apply(RecordingUpdate::ObjectStored(object()));
    assert!(matches!(again, Err(Error::Conflict { .. })));
    assert_eq!(record.object, Some(object()));
}

#[test]
fn quality_out_of_range_is_refused_and_changes_nothing() {
    let mut record = record();
    for bad in [
        RecordingQuality {
            packet_loss_ratio: Some(1.5),
            ..RecordingQuality::default()
        },
        RecordingQuality {
            packet_loss_ratio: Some(f64::NAN),
            ..RecordingQuality::default()
        },
        RecordingQuality {
            resolution: Some("wide".to_owned()),
            ..RecordingQuality::default()
        },
    ] {
        assert!(record.apply(RecordingUpdate::QualityReported(bad)).is_err());
    }
    assert_eq!(record.quality, None);
    let good = RecordingQuality {
        media_duration_ms: Some(61_000),
        packet_loss_ratio: Some(0.01),
        resolution: Some("1280x720".to_owned()),
        ..RecordingQuality::default()
    };
    record
        .apply(RecordingUpdate::QualityReported(good.clone()))
        .unwrap();
    assert_eq!(record.quality, Some(good));
}

/// Every chunk of a [`ChunksSource`], polled without an executor: its futures are ready at once.
fn chunks_of(mut source: ChunksSource) -> Vec<Vec<u8>> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut chunks = Vec::new();
    loop {
        let mut next = source.next_chunk();
        let std::task::Poll::Ready(result) = next.as_mut().poll(&mut context) else {
            panic!("an in-memory source is always ready");
        };
        match result.unwrap() {
            Some(chunk) => chunks.push(chunk.to_vec()),
            None => return chunks,
        }
    }
}

#[test]
fn an_in_memory_source_gives_its_bytes_in_order_in_chunks_of_the_size_asked() {
    assert_eq!(
        chunks_of(ChunksSource::split(b"abcdefg".to_vec(), 3)),
        [b"abc".to_vec(), b"def".to_vec(), b"g".to_vec()]
    );
    assert_eq!(
        chunks_of(ChunksSource::split(b"abcdefg".to_vec(), 0)),
        [b"abcdefg".to_vec()]
    );
    assert_eq!(
        chunks_of(ChunksSource::split(Vec::new(), 3)),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(
        chunks_of(ChunksSource::new([
            Bytes::from_static(b"x"),
            Bytes::new(),
            Bytes::from_static(b"yz"),
        ])),
        [b"x".to_vec(), Vec::new(), b"yz".to_vec()]
    );
}

#[test]
fn a_refused_put_reads_as_the_domain_error_of_an_upload() {
    assert_eq!(
        Error::from(PutError::TooLarge {
            limit: 1024,
            received: 1500,
        }),
        Error::TooLarge {
            what: "media".into(),
            limit: 1024,
            actual: 1500,
        }
    );
    assert_eq!(
        Error::from(PutError::Source(SourceError::new("the client went away"))),
        Error::invalid("media", "the client went away")
    );
    assert_eq!(
        Error::from(PutError::Store(StoreError::Unavailable(
            "disk full".to_owned()
        ))),
        Error::unavailable("storage is unavailable")
    );
}
