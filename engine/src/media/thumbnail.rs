//! Thumbnails: which images get them, at what sizes, and which images are refused before a
//! byte of them is decoded.
//!
//! The thumbnailer (an actor, `switchboard_actors::media::thumbnailer`) decodes and resizes; the
//! rules it follows live here, pure: only JPEG, PNG, GIF and WebP are thumbnailed (the formats
//! every client can show and the decoders we trust); an image is measured from its header
//! before it is decoded, and one over `max_pixels` (a decompression bomb declares huge
//! dimensions in a few bytes) or a file over `max_source_bytes` gets no thumbnail and a
//! recorded reason instead; each configured size is the longest edge of one thumbnail, made
//! only when the image is larger than that, so a thumbnail never upscales.

use serde::{Deserialize, Serialize};

use super::{Dimensions, MediaRecord, MediaType};

/// The longest edges of the thumbnails made unless configured otherwise
/// (`media.thumbnail_sizes`).
pub const DEFAULT_THUMBNAIL_SIZES: [u32; 2] = [256, 1024];

/// The most pixels an image may have to be thumbnailed unless configured otherwise
/// (`media.thumbnail_max_pixels`): about 50 megapixels, more than any phone camera, and at four
/// bytes a pixel 200 MB of decoded image at most.
pub const DEFAULT_THUMBNAIL_MAX_PIXELS: u64 = 50_000_000;

/// The largest file thumbnailed unless configured otherwise
/// (`media.thumbnail_max_source_bytes`): the thumbnailer reads the file whole.
pub const DEFAULT_THUMBNAIL_MAX_SOURCE_BYTES: u64 = 50 * 1024 * 1024;

/// The types thumbnails are made of.
const THUMBNAILED_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// What thumbnails are made, and of what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailSettings {
    /// The longest edge of each thumbnail, in pixels, smallest first.
    pub sizes: Vec<u32>,
    /// The most pixels (width × height) an image may have.
    pub max_pixels: u64,
    /// The largest file, in bytes.
    pub max_source_bytes: u64,
}

impl Default for ThumbnailSettings {
    fn default() -> Self {
        Self {
            sizes: DEFAULT_THUMBNAIL_SIZES.to_vec(),
            max_pixels: DEFAULT_THUMBNAIL_MAX_PIXELS,
            max_source_bytes: DEFAULT_THUMBNAIL_MAX_SOURCE_BYTES,
        }
    }
}

/// Whether thumbnails are made of media of this type.
pub fn is_thumbnailed_type(media_type: &MediaType) -> bool {
    THUMBNAILED_TYPES.contains(&media_type.mime.as_str())
}

/// Whether the thumbnailer still has to look at this media: complete, of a thumbnailed type,
/// and neither measured nor refused yet.
pub fn awaits_thumbnails(record: &MediaRecord) -> bool {
    record.is_complete()
        && record.media_type.as_ref().is_some_and(is_thumbnailed_type)
        && record.dimensions.is_none()
        && record.thumbnails.is_empty()
        && record.thumbnail_failure.is_none()
}

/// Why an image gets no thumbnails, decided before it is decoded.
///
/// # Errors
/// The reason, to be recorded on the media, when the file is over `max_source_bytes`.
pub fn check_source_size(size_bytes: u64, settings: &ThumbnailSettings) -> Result<(), String> {
    if size_bytes > settings.max_source_bytes {
        return Err(format!(
            "the file is {size_bytes} bytes; thumbnails are made of files up to {} bytes",
            settings.max_source_bytes
        ));
    }
    Ok(())
}

/// Checks an image's dimensions, read from its header, before it is decoded.
///
/// # Errors
/// The reason, to be recorded on the media, for an empty image or one over `max_pixels`.
pub fn check_dimensions(
    dimensions: Dimensions,
    settings: &ThumbnailSettings,
) -> Result<(), String> {
    let pixels = u64::from(dimensions.width) * u64::from(dimensions.height);
    if pixels == 0 {
        return Err("the image has no pixels".to_owned());
    }
    if pixels > settings.max_pixels {
        return Err(format!(
            "the image is {}×{} ({pixels} pixels); thumbnails are made of images up to {} pixels",
            dimensions.width, dimensions.height, settings.max_pixels
        ));
    }
    Ok(())
}

/// The thumbnails to make of an image: for each configured size smaller than the image's
/// longest edge, that size and the thumbnail's dimensions (the image scaled to that longest
/// edge, each side at least one pixel). An image no larger than the smallest size gets none:
/// it is its own thumbnail.
pub fn planned_thumbnails(image: Dimensions, sizes: &[u32]) -> Vec<(u32, Dimensions)> {
    let longest = image.width.max(image.height);
    let mut planned: Vec<(u32, Dimensions)> = sizes
        .iter()
        .filter(|&&size| size > 0 && size < longest)
        .map(|&size| (size, scaled(image, longest, size)))
        .collect();
    planned.sort_unstable_by_key(|(size, _)| *size);
    planned.dedup_by_key(|(size, _)| *size);
    planned
}

/// `image` scaled so that its longest edge, `longest`, becomes `size`.
fn scaled(image: Dimensions, longest: u32, size: u32) -> Dimensions {
    let side = |edge: u32| {
        let scaled =
            (u64::from(edge) * u64::from(size) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(size).max(1)
    };
    Dimensions {
        width: side(image.width),
        height: side(image.height),
    }
}

#[cfg(test)]
mod tests;
