//! Thumbnails of real images made with the `image` crate: JPEG, PNG (with transparency), GIF
//! and WebP at the configured sizes, small images measured but not thumbnailed, and a corrupt
//! file and decompression bombs (a PNG and a JPEG whose headers declare billions of pixels)
//! refused with a reason and no crash. Then the service end to end on the in-memory stores:
//! a completed upload is thumbnailed off the request path, the thumbnails are stored and
//! listed, and deleting the media removes them.

use std::collections::HashMap;
use std::io::Cursor;

use bytes::Bytes;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use switchboard_engine::blob::{ChunksSource, ObjectStore};
use switchboard_engine::ids::UserId;
use switchboard_engine::media::{MediaAllowList, MediaQuotas, MediaRecord, MediaStore};
use switchboard_engine::ports::MessageStore;
use switchboard_engine::time::Timestamp;
use switchboard_storage::{MemoryMediaStore, MemoryMessageStore, MemoryObjectStore};

use super::*;
use crate::clock::{IdGenerator, ManualClock};
use crate::media::{MediaPorts, MediaSettings, NewUpload};
use crate::session::Identity;

fn photo(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

fn sticker(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(RgbaImage::from_fn(width, height, |x, _| {
        Rgba([200, 30, 30, if x < width / 2 { 0 } else { 255 }])
    }))
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encodes");
    bytes.into_inner()
}

fn decoded(thumbnail: &RenderedThumbnail) -> DynamicImage {
    image::load_from_memory(&thumbnail.bytes).expect("a thumbnail decodes")
}

/// The CRC-32 of PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid small PNG whose header (with a correct checksum) declares `width`×`height`.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = encoded(&photo(4, 4), ImageFormat::Png);
    // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), ..., CRC after 13 bytes.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A valid small JPEG whose frame header declares 65535×65535.
fn jpeg_declaring_the_largest_frame() -> Vec<u8> {
    let mut jpeg = encoded(&photo(8, 8), ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|marker| marker == [0xFF, 0xC0])
        .expect("a baseline frame header");
    // Marker (2), length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    jpeg
}

#[test]
fn a_photo_gets_a_jpeg_thumbnail_at_each_size_below_its_longest_edge() {
    let bytes = encoded(&photo(2000, 1000), ImageFormat::Jpeg);
    let rendered = render(&bytes, "image/jpeg", &ThumbnailSettings::default()).expect("rendered");
    assert_eq!(
        (rendered.dimensions.width, rendered.dimensions.height),
        (2000, 1000)
    );
    let made: Vec<(u32, u32, u32, &str)> = rendered
        .thumbnails
        .iter()
        .map(|thumbnail| {
            (
                thumbnail.size,
                thumbnail.dimensions.width,
                thumbnail.dimensions.height,
                thumbnail.mime,
            )
        })
        .collect();
    assert_eq!(
        made,
        vec![
            (256, 256, 128, "image/jpeg"),
            (1024, 1024, 512, "image/jpeg")
        ]
    );
    for thumbnail in &rendered.thumbnails {
        let image = decoded(thumbnail);
        assert_eq!(
            (image.width(), image.height()),
            (thumbnail.dimensions.width, thumbnail.dimensions.height)
        );
        assert!(thumbnail.bytes.len() < bytes.len());
    }
}

#[test]
fn png_gif_and_webp_are_thumbnailed_and_transparency_is_kept() {
    let settings = ThumbnailSettings::default();
    let cases = [
        (
            sticker(600, 300),
            ImageFormat::Png,
            "image/png",
            "image/webp",
        ),
        (photo(600, 300), ImageFormat::Png, "image/png", "image/jpeg"),
        (photo(300, 600), ImageFormat::Gif, "image/gif", "image/jpeg"),
        (
            sticker(600, 300),
            ImageFormat::WebP,
            "image/webp",
            "image/webp",
        ),
    ];
    for (image, format, mime, thumbnail_mime) in cases {
        let rendered = render(&encoded(&image, format), mime, &settings).expect(mime);
        assert_eq!(rendered.thumbnails.len(), 1, "{mime}");
        let thumbnail = &rendered.thumbnails[0];
        assert_eq!(thumbnail.mime, thumbnail_mime, "{mime}");
        let expected = if image.width() > image.height() {
            (256, 128)
        } else {
            (128, 256)
        };
        let shown = decoded(thumbnail);
        assert_eq!((shown.width(), shown.height()), expected, "{mime}");
        if thumbnail_mime == "image/webp" {
            let pixels = shown.to_rgba8();
            assert_eq!(
                pixels.get_pixel(0, 0)[3],
                0,
                "the transparent half stays so"
            );
            assert_eq!(pixels.get_pixel(255, 0)[3], 255, "the opaque half stays so");
        }
    }
}

#[test]
fn a_small_image_is_measured_and_is_its_own_thumbnail() {
    let bytes = encoded(&photo(200, 120), ImageFormat::Png);
    let rendered = render(&bytes, "image/png", &ThumbnailSettings::default()).expect("rendered");
    assert_eq!(
        (rendered.dimensions.width, rendered.dimensions.height),
        (200, 120)
    );
    assert!(rendered.thumbnails.is_empty());
}

#[test]
fn corrupt_images_and_decompression_bombs_get_a_reason_not_a_crash() {
    let settings = ThumbnailSettings::default();
    let mut truncated = encoded(&photo(300, 300), ImageFormat::Png);
    truncated.truncate(truncated.len() / 2);
    let mut garbage = b"\x89PNG\r\n\x1a\n".to_vec();
    garbage.extend_from_slice(&[0x5a; 200]);
    for (name, bytes, mime) in [
        ("truncated", truncated, "image/png"),
        ("garbage", garbage, "image/png"),
        ("png bomb", png_declaring(100_000, 100_000), "image/png"),
        (
            "jpeg bomb",
            jpeg_declaring_the_largest_frame(),
            "image/jpeg",
        ),
        ("not an image type", b"%PDF-1.7".to_vec(), "application/pdf"),
    ] {
        let reason = render(&bytes, mime, &settings).expect_err(name);
        assert!(!reason.is_empty(), "{name}");
        if name.ends_with("bomb") {
            assert!(reason.contains("pixels"), "{name}: {reason}");
        }
    }
}

struct Fixture {
    service: Arc<MediaService>,
    objects: Arc<MemoryObjectStore>,
    thumbnailer: ThumbnailerHandle,
}

fn alice() -> Identity {
    Identity {
        tenant_id: TenantId::parse("acme").expect("valid"),
        user_id: UserId::parse("alice").expect("valid"),
    }
}

async fn fixture() -> Fixture {
    let objects = Arc::new(MemoryObjectStore::new());
    let clock = Arc::new(ManualClock::at(Timestamp(1_700_000_000_000)));
    let service = Arc::new(MediaService::new(
        MediaPorts {
            store: Arc::new(MemoryMediaStore::new()) as Arc<dyn MediaStore>,
            objects: Arc::clone(&objects) as Arc<dyn ObjectStore>,
        },
        Arc::new(MemoryMessageStore::new()) as Arc<dyn MessageStore>,
        MediaSettings {
            max_file_bytes: 10_000_000,
            quotas: MediaQuotas::default(),
            tenant_quotas: HashMap::new(),
            allowed_types: MediaAllowList::default(),
            tenant_allowed_types: HashMap::new(),
            upload_expiry: Duration::from_secs(3_600),
            orphan_ttl: None,
            call_timeout: Duration::from_secs(5),
            thumbnail_sizes: vec![256, 1024],
            redirect_links: false,
        },
        IdGenerator::new(clock as Arc<dyn switchboard_engine::ports::Clock>),
    ));
    let thumbnailer = ThumbnailerHandle::start(ThumbnailerArgs {
        service: Arc::clone(&service),
        settings: ThumbnailSettings::default(),
    })
    .await
    .expect("the thumbnailer starts");
    service.use_thumbnailer(thumbnailer.clone());
    Fixture {
        service,
        objects,
        thumbnailer,
    }
}

impl Fixture {
    async fn upload(&self, file_name: &str, bytes: Vec<u8>) -> MediaRecord {
        let declared_bytes = bytes.len() as u64;
        let mut body = ChunksSource::split(Bytes::from(bytes), 4096);
        self.service
            .upload(
                &alice(),
                NewUpload {
                    file_name: file_name.to_owned(),
                    conversation_id: None,
                    declared_bytes,
                    length_is_upper_bound: false,
                },
                &mut body,
            )
            .await
            .expect("uploaded")
    }

    /// Waits for the thumbnailer to finish what was asked before (its mailbox is in order),
    /// then reads the record.
    async fn after_thumbnailing(&self, record: &MediaRecord) -> MediaRecord {
        let job = ThumbnailJob {
            tenant_id: alice().tenant_id,
            media_id: record.media_id,
        };
        let outcome = self
            .thumbnailer
            .make_now(job, Duration::from_secs(60))
            .await
            .expect("the thumbnailer answers");
        assert_eq!(
            outcome,
            ThumbnailOutcome::Skipped,
            "done before it was asked again"
        );
        self.service
            .record(&alice(), record.media_id)
            .await
            .expect("the record")
    }
}

#[tokio::test]
async fn an_uploaded_image_is_thumbnailed_after_completion_and_deleting_it_removes_them() {
    let fixture = fixture().await;
    let uploaded = fixture
        .upload("photo.jpg", encoded(&photo(1600, 1200), ImageFormat::Jpeg))
        .await;
    let record = fixture.after_thumbnailing(&uploaded).await;
    assert_eq!(
        record.dimensions.map(|d| (d.width, d.height)),
        Some((1600, 1200))
    );
    let sizes: Vec<(u32, u32, u32)> = record
        .thumbnails
        .iter()
        .map(|thumbnail| {
            (
                thumbnail.size,
                thumbnail.dimensions.width,
                thumbnail.dimensions.height,
            )
        })
        .collect();
    assert_eq!(sizes, vec![(256, 256, 192), (1024, 1024, 768)]);
    assert_eq!(record.thumbnail_failure, None);
    assert_eq!(
        fixture.objects.n_objects(),
        3,
        "the photo and two thumbnails"
    );
    for thumbnail in &record.thumbnails {
        let stored = fixture
            .objects
            .get_object(&alice().tenant_id, &thumbnail.object_key)
            .await
            .expect("readable")
            .expect("stored");
        assert_eq!(stored.bytes.len() as u64, thumbnail.bytes);
        assert_eq!(stored.content_type, "image/jpeg");
    }

    fixture
        .service
        .delete(&alice(), record.media_id, false)
        .await
        .expect("deleted");
    assert_eq!(
        fixture.objects.n_objects(),
        0,
        "thumbnails go with the media"
    );
}

#[tokio::test]
async fn a_corrupt_image_records_why_and_other_files_are_left_alone() {
    let fixture = fixture().await;
    let mut corrupt = b"\x89PNG\r\n\x1a\n".to_vec();
    corrupt.extend_from_slice(&[0x5a; 500]);
    let uploaded = fixture.upload("broken.png", corrupt).await;
    let record = fixture.after_thumbnailing(&uploaded).await;
    assert!(record.thumbnails.is_empty());
    assert!(record.thumbnail_failure.is_some(), "{record:?}");
    assert_eq!(record.dimensions, None);

    let uploaded = fixture.upload("notes.txt", b"plain words".to_vec()).await;
    let record = fixture.after_thumbnailing(&uploaded).await;
    assert_eq!(
        (
            record.thumbnails.len(),
            record.thumbnail_failure,
            record.dimensions
        ),
        (0, None, None)
    );
    assert_eq!(fixture.objects.n_objects(), 2, "just the two files");
}

#[tokio::test]
async fn media_deleted_before_its_turn_gets_no_thumbnails_and_leaves_no_objects() {
    let fixture = fixture().await;
    let uploaded = fixture
        .upload("photo.png", encoded(&photo(800, 600), ImageFormat::Png))
        .await;
    fixture
        .service
        .delete(&alice(), uploaded.media_id, false)
        .await
        .expect("deleted");
    let outcome = fixture
        .service
        .make_thumbnails(
            &ThumbnailJob {
                tenant_id: alice().tenant_id,
                media_id: uploaded.media_id,
            },
            &ThumbnailSettings::default(),
        )
        .await
        .expect("answers");
    assert_eq!(outcome, ThumbnailOutcome::Skipped);
    // Whatever the thumbnailer did with the request made at completion, nothing is left.
    let job = ThumbnailJob {
        tenant_id: alice().tenant_id,
        media_id: uploaded.media_id,
    };
    fixture
        .thumbnailer
        .make_now(job, Duration::from_secs(60))
        .await
        .expect("answers");
    assert_eq!(fixture.objects.n_objects(), 0);
}

#[tokio::test]
async fn a_thumbnail_stored_before_a_crash_but_never_recorded_goes_with_its_media() {
    let fixture = fixture().await;
    let uploaded = fixture.upload("notes.txt", b"plain words".to_vec()).await;
    // What a thumbnailer that died between storing a thumbnail and recording it leaves.
    let key = switchboard_engine::media::thumbnail_object_key(uploaded.media_id, 256);
    let mut source = ChunksSource::split(Bytes::from_static(b"not recorded"), 0);
    fixture
        .objects
        .put_stream(&alice().tenant_id, &key, "image/jpeg", &mut source, 100)
        .await
        .expect("stored");
    assert_eq!(fixture.objects.n_objects(), 2);
    fixture
        .service
        .delete(&alice(), uploaded.media_id, false)
        .await
        .expect("deleted");
    assert_eq!(fixture.objects.n_objects(), 0);
}
