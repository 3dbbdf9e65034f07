//! Who may attach what, and what a message carries of it.

use expect_test::expect;

use super::*;
use crate::media::{
    Dimensions, MediaFamily, MediaFileName, MediaRecord, MediaType, MediaUpdate, Thumbnail,
    thumbnail_object_key,
};
use crate::time::Timestamp;

const NOW: Timestamp = Timestamp(1_700_000_000_000);

fn alice() -> UserId {
    UserId::parse("alice").expect("valid")
}

fn media_id(number: u128) -> MediaId {
    MediaId::from_parts(1, number)
}

fn uploading(number: u128) -> MediaRecord {
    MediaRecord::declared(
        media_id(number),
        alice(),
        MediaFileName::parse("cat.png").expect("valid"),
        None,
        0,
        NOW,
        Timestamp(NOW.0 + 1_000),
    )
}

fn complete(number: u128) -> MediaRecord {
    let mut record = uploading(number);
    record
        .apply(MediaUpdate::Complete {
            sha256: "ab".repeat(32),
            media_type: MediaType {
                mime: "image/png".to_owned(),
                family: MediaFamily::Image,
            },
            at: NOW,
            from_parts: false,
        })
        .expect("completes");
    record
}

fn origin() -> ForwardedFrom {
    ForwardedFrom {
        conversation_id: ConversationId::from_parts(1, 1),
        message_id: MessageId::from_parts(1, 1),
        sender_id: alice(),
    }
}

fn verdict(
    record: Option<&MediaRecord>,
    sender: &str,
    forwarded_from: Option<&ForwardedFrom>,
) -> String {
    let sender = UserId::parse(sender).expect("valid");
    match check_attachable(media_id(1), record, &sender, forwarded_from) {
        Ok(attachment) => format!(
            "ok {} {} {} bytes",
            attachment.file_name, attachment.mime, attachment.size_bytes
        ),
        Err(error) => error.to_string(),
    }
}

#[test]
fn only_the_uploader_attaches_complete_media() {
    let complete = complete(1);
    expect!["ok cat.png image/png 0 bytes"].assert_eq(&verdict(Some(&complete), "alice", None));
    expect!["invalid attachments: media 00000000010000000000000001 is not media you uploaded"]
        .assert_eq(&verdict(Some(&complete), "bob", None));
    expect!["invalid attachments: media 00000000010000000000000001 is not media you uploaded"]
        .assert_eq(&verdict(None, "alice", None));
    expect![
        "conflict: media 00000000010000000000000001 is still uploading; attach it once complete"
    ]
    .assert_eq(&verdict(Some(&uploading(1)), "alice", None));
    let mut deleted = complete;
    deleted
        .apply(MediaUpdate::Deleted { at: NOW })
        .expect("deletes");
    expect!["invalid attachments: media 00000000010000000000000001 is not media you uploaded"]
        .assert_eq(&verdict(Some(&deleted), "alice", None));
}

#[test]
fn a_forwarded_copy_carries_only_what_its_original_attached() {
    let mut record = complete(1);
    expect!["invalid attachments: media 00000000010000000000000001 is not attached to the forwarded message"]
        .assert_eq(&verdict(Some(&record), "bob", Some(&origin())));
    record
        .apply(MediaUpdate::Attached(AttachedTo {
            conversation_id: origin().conversation_id,
            message_id: origin().message_id,
        }))
        .expect("attaches");
    expect!["ok cat.png image/png 0 bytes"].assert_eq(&verdict(
        Some(&record),
        "bob",
        Some(&origin()),
    ));
}

#[test]
fn attachment_lists_are_bounded_and_name_each_media_once() {
    assert_eq!(check_attachment_ids(&[media_id(1), media_id(2)], 2), Ok(()));
    assert_eq!(check_attachment_ids(&[], 0), Ok(()));
    expect!["attachments is too large: 3, the limit is 2"].assert_eq(
        &check_attachment_ids(&[media_id(1), media_id(2), media_id(3)], 2)
            .expect_err("over the limit")
            .to_string(),
    );
    expect!["invalid attachments: names media 00000000010000000000000001 more than once"]
        .assert_eq(
            &check_attachment_ids(&[media_id(1), media_id(2), media_id(1)], 10)
                .expect_err("repeated")
                .to_string(),
        );
}

#[test]
fn a_refreshed_attachment_shows_later_thumbnails_and_deletion() {
    let mut record = complete(1);
    let mut attachment = Attachment::of(&record);
    assert!(attachment.thumbnails.is_empty());
    record
        .apply(MediaUpdate::Thumbnailed {
            dimensions: Some(Dimensions {
                width: 800,
                height: 600,
            }),
            thumbnails: vec![Thumbnail {
                size: 256,
                dimensions: Dimensions {
                    width: 256,
                    height: 192,
                },
                mime: "image/webp".to_owned(),
                object_key: thumbnail_object_key(record.media_id, 256),
                bytes: 10,
            }],
            failure: None,
        })
        .expect("thumbnailed");
    attachment.refresh(Some(&record));
    assert_eq!(
        attachment.dimensions,
        Some(Dimensions {
            width: 800,
            height: 600
        })
    );
    assert_eq!(
        attachment.thumbnails,
        vec![AttachedThumbnail {
            size: 256,
            dimensions: Dimensions {
                width: 256,
                height: 192
            },
            mime: "image/webp".to_owned(),
        }]
    );
    assert!(!attachment.deleted);
    attachment.refresh(None);
    assert!(attachment.deleted && attachment.thumbnails.is_empty());
    assert_eq!(
        attachment.file_name, "cat.png",
        "the name stays for display"
    );
}
