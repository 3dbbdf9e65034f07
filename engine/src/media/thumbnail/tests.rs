//! Which images get thumbnails, at what sizes, and which are refused before decoding.

use super::*;

fn dimensions(width: u32, height: u32) -> Dimensions {
    Dimensions { width, height }
}

#[test]
fn each_size_below_the_longest_edge_scales_the_image_to_it() {
    let sizes = DEFAULT_THUMBNAIL_SIZES;
    assert_eq!(
        planned_thumbnails(dimensions(4000, 3000), &sizes),
        vec![(256, dimensions(256, 192)), (1024, dimensions(1024, 768))]
    );
    // Portrait: the height is the longest edge.
    assert_eq!(
        planned_thumbnails(dimensions(1080, 1920), &sizes),
        vec![(256, dimensions(144, 256)), (1024, dimensions(576, 1024))]
    );
    // Between the sizes: only the smaller one; never upscaled.
    assert_eq!(
        planned_thumbnails(dimensions(800, 600), &sizes),
        vec![(256, dimensions(256, 192))]
    );
    // Small images are their own thumbnails.
    assert!(planned_thumbnails(dimensions(256, 100), &sizes).is_empty());
    assert!(planned_thumbnails(dimensions(1, 1), &sizes).is_empty());
    // A sliver keeps at least one pixel on its short side.
    assert_eq!(
        planned_thumbnails(dimensions(10_000, 3), &[256]),
        vec![(256, dimensions(256, 1))]
    );
    // Sizes in any order, repeated or zero: sorted, once each, zero ignored.
    assert_eq!(
        planned_thumbnails(dimensions(2000, 2000), &[1024, 0, 256, 1024]),
        vec![(256, dimensions(256, 256)), (1024, dimensions(1024, 1024))]
    );
}

#[test]
fn bombs_and_huge_files_are_refused_with_a_reason_before_decoding() {
    let settings = ThumbnailSettings::default();
    assert_eq!(check_dimensions(dimensions(8000, 6000), &settings), Ok(()));
    let refusal = check_dimensions(dimensions(100_000, 100_000), &settings).unwrap_err();
    assert!(refusal.contains("10000000000 pixels"), "{refusal}");
    assert!(check_dimensions(dimensions(0, 10), &settings).is_err());
    // The product does not overflow at the largest dimensions a header can declare.
    assert!(check_dimensions(dimensions(u32::MAX, u32::MAX), &settings).is_err());
    assert_eq!(
        check_source_size(settings.max_source_bytes, &settings),
        Ok(())
    );
    assert!(check_source_size(settings.max_source_bytes + 1, &settings).is_err());
}

#[test]
fn only_jpeg_png_gif_and_webp_are_thumbnailed() {
    let of = |mime: &str| MediaType {
        mime: mime.to_owned(),
        family: crate::media::MediaFamily::Image,
    };
    for mime in ["image/jpeg", "image/png", "image/gif", "image/webp"] {
        assert!(is_thumbnailed_type(&of(mime)), "{mime}");
    }
    for mime in [
        "image/heif",
        "image/tiff",
        "image/svg+xml",
        "application/pdf",
        "video/mp4",
    ] {
        assert!(!is_thumbnailed_type(&of(mime)), "{mime}");
    }
}
