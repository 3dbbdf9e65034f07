//! The image work of thumbnailing, on bytes in memory and nothing else: read the image's
//! dimensions from its header, refuse it if the engine's rules say so, decode it (with the
//! decoder its sniffed type names, never one guessed again), turn it upright as its EXIF
//! orientation says, resize it to each planned size with `fast_image_resize` (Lanczos3, alpha
//! premultiplied), and encode each thumbnail: JPEG when it is opaque, lossless WebP when it has
//! transparency (a sticker keeps its see-through edges).
//!
//! It is CPU-bound and may take a second on a large photo, so the thumbnailer runs it on the
//! blocking pool, one image at a time. Memory is bounded by the engine's pixel limit, checked
//! before decoding, and by the decoder's own allocation limit.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageFormat, ImageReader,
};
use switchboard_engine::media::Dimensions;
use switchboard_engine::media::thumbnail::{
    ThumbnailSettings, check_dimensions, planned_thumbnails,
};

/// The JPEG quality of thumbnails: small files without visible blocks at thumbnail sizes.
const JPEG_QUALITY: u8 = 82;

/// The most a decoder may allocate beyond the decoded image itself.
const DECODER_SLACK_BYTES: u64 = 64 * 1024 * 1024;

/// One thumbnail, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedThumbnail {
    /// The longest edge it was made for.
    pub size: u32,
    /// Its width and height.
    pub dimensions: Dimensions,
    /// `image/jpeg` or `image/webp`.
    pub mime: &'static str,
    /// The encoded bytes.
    pub bytes: Vec<u8>,
}

/// What an image gave: its dimensions, upright, and its thumbnails (none for an image no
/// larger than the smallest size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The image's width and height as shown (after its EXIF orientation).
    pub dimensions: Dimensions,
    /// The thumbnails, smallest first.
    pub thumbnails: Vec<RenderedThumbnail>,
}

/// Makes the thumbnails of the image in `bytes`, of type `mime`.
///
/// # Errors
/// Why there are none, to be recorded on the media: the type has no decoder, the header or
/// the pixels cannot be read, the image is over the pixel limit, or encoding failed.
pub fn render(bytes: &[u8], mime: &str, settings: &ThumbnailSettings) -> Result<Rendered, String> {
    let format = ImageFormat::from_mime_type(mime)
        .ok_or_else(|| format!("no thumbnails are made of {mime}"))?;
    let reader = || {
        let mut reader = ImageReader::new(Cursor::new(bytes));
        reader.set_format(format);
        reader
    };
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|error| format!("the image's header cannot be read: {error}"))?;
    check_dimensions(Dimensions { width, height }, settings)?;

    let mut limits = image::Limits::default();
    limits.max_alloc = Some(
        (u64::from(width) * u64::from(height))
            .saturating_mul(4)
            .saturating_add(DECODER_SLACK_BYTES),
    );
    let mut limited = reader();
    limited.limits(limits);
    let mut decoder = limited
        .into_decoder()
        .map_err(|error| format!("the image cannot be read: {error}"))?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|error| format!("the image cannot be read: {error}"))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    let dimensions = Dimensions {
        width: image.width(),
        height: image.height(),
    };
    let planned = planned_thumbnails(dimensions, &settings.sizes);
    if planned.is_empty() {
        return Ok(Rendered {
            dimensions,
            thumbnails: Vec::new(),
        });
    }
    let source = image.into_rgba8();
    let source = Image::from_vec_u8(
        dimensions.width,
        dimensions.height,
        source.into_raw(),
        PixelType::U8x4,
    )
    .map_err(|error| format!("the image cannot be resized: {error}"))?;
    let mut resizer = Resizer::new();
    let mut thumbnails = Vec::with_capacity(planned.len());
    for (size, thumbnail_dimensions) in planned {
        let mut resized = Image::new(
            thumbnail_dimensions.width,
            thumbnail_dimensions.height,
            PixelType::U8x4,
        );
        resizer
            .resize(&source, &mut resized, None)
            .map_err(|error| format!("the image cannot be resized: {error}"))?;
        let (mime, bytes) = encode(resized.buffer(), thumbnail_dimensions)?;
        thumbnails.push(RenderedThumbnail {
            size,
            dimensions: thumbnail_dimensions,
            mime,
            bytes,
        });
    }
    Ok(Rendered {
        dimensions,
        thumbnails,
    })
}

/// Encodes RGBA pixels: JPEG when every pixel is opaque, lossless WebP otherwise.
fn encode(rgba: &[u8], dimensions: Dimensions) -> Result<(&'static str, Vec<u8>), String> {
    let mut encoded = Vec::new();
    let opaque = rgba.chunks_exact(4).all(|pixel| pixel[3] == u8::MAX);
    let result = if opaque {
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|pixel| [pixel[0], pixel[1], pixel[2]])
            .collect();
        JpegEncoder::new_with_quality(&mut encoded, JPEG_QUALITY).write_image(
            &rgb,
            dimensions.width,
            dimensions.height,
            ExtendedColorType::Rgb8,
        )
    } else {
        WebPEncoder::new_lossless(&mut encoded).write_image(
            rgba,
            dimensions.width,
            dimensions.height,
            ExtendedColorType::Rgba8,
        )
    };
    result.map_err(|error| format!("the thumbnail cannot be encoded: {error}"))?;
    Ok((if opaque { "image/jpeg" } else { "image/webp" }, encoded))
}
