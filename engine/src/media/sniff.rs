//! What a file is, read from its first bytes (never from the client's `Content-Type` or file
//! name), and whether a tenant accepts it.
//!
//! [`sniff`] asks the `infer` crate's magic-number table, and calls bytes it does not recognise
//! `text/plain` when they are UTF-8 text without control characters, else
//! `application/octet-stream`. [`MediaAllowList::check`] then refuses a type the tenant does not
//! allow, and a file name whose extension claims something else: a PNG named `.exe` and an
//! executable named `.png` are both refused, so that nobody downstream is fooled by the name.

use serde::{Deserialize, Serialize};

use crate::media::file_name::MediaFileName;
use crate::{Error, Result};

/// How many leading bytes [`sniff`] reads: enough for every signature `infer` knows, including
/// the first entries of an Office Open XML zip.
pub const SNIFF_BYTES: usize = 64 * 1024;

/// A sniffed media type: the MIME type and its family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MediaType {
    /// The MIME type, such as `image/png`.
    pub mime: String,
    /// Its family, which decides thumbnails and inline display.
    pub family: MediaFamily,
}

/// The family of a media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaFamily {
    /// Photos and pictures.
    Image,
    /// Voice notes and music.
    Audio,
    /// Films and clips.
    Video,
    /// PDF, office documents, e-books.
    Document,
    /// Plain text.
    Text,
    /// Zip and other archives.
    Archive,
    /// Anything else, including executables and unknown bytes.
    Other,
}

/// The MIME type of bytes nobody recognised.
pub const UNKNOWN_MIME: &str = "application/octet-stream";

/// The MIME type of recognised text.
pub const TEXT_MIME: &str = "text/plain";

/// Reads what `prefix` (the first [`SNIFF_BYTES`] of a file, or all of a shorter one) is.
pub fn sniff(prefix: &[u8]) -> MediaType {
    if let Some(found) = infer::get(prefix) {
        let family = match found.matcher_type() {
            infer::MatcherType::Image => MediaFamily::Image,
            infer::MatcherType::Audio => MediaFamily::Audio,
            infer::MatcherType::Video => MediaFamily::Video,
            infer::MatcherType::Doc | infer::MatcherType::Book => MediaFamily::Document,
            infer::MatcherType::Archive if found.mime_type() == "application/pdf" => {
                MediaFamily::Document
            }
            infer::MatcherType::Archive if found.mime_type() == "application/rtf" => {
                MediaFamily::Document
            }
            infer::MatcherType::Archive => MediaFamily::Archive,
            infer::MatcherType::App
            | infer::MatcherType::Font
            | infer::MatcherType::Text
            | infer::MatcherType::Custom => MediaFamily::Other,
        };
        return MediaType {
            mime: found.mime_type().to_owned(),
            family,
        };
    }
    if is_text(prefix) {
        MediaType {
            mime: TEXT_MIME.to_owned(),
            family: MediaFamily::Text,
        }
    } else {
        MediaType {
            mime: UNKNOWN_MIME.to_owned(),
            family: MediaFamily::Other,
        }
    }
}

/// UTF-8 (a character cut by the end of the prefix allowed) with no control characters but
/// tab, line feed, form feed and carriage return. The empty file counts as text.
fn is_text(prefix: &[u8]) -> bool {
    let text = match std::str::from_utf8(prefix) {
        Ok(text) => text,
        // Cut inside a character at the very end: judge what came before it.
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&prefix[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.chars().any(|character| {
        character.is_control() && !matches!(character, '\t' | '\n' | '\u{c}' | '\r')
    })
}

/// The extensions a file of this MIME type may carry; empty when any extension not known to
/// run code is fine (plain text). `None` for a type without a list, which the allow-list
/// decides alone.
fn extensions_of(mime: &str) -> Option<&'static [&'static str]> {
    Some(match mime {
        "image/jpeg" => &["jpg", "jpeg", "jpe", "jfif", "pjpeg", "pjp"],
        "image/png" => &["png", "apng"],
        "image/gif" => &["gif"],
        "image/webp" => &["webp"],
        "image/heif" => &["heif", "heic"],
        "image/avif" => &["avif"],
        "image/bmp" => &["bmp"],
        "image/tiff" => &["tif", "tiff"],
        "audio/mpeg" => &["mp3"],
        "audio/ogg" | "audio/opus" => &["ogg", "oga", "opus"],
        "audio/x-flac" => &["flac"],
        "audio/x-wav" => &["wav"],
        "audio/aac" => &["aac"],
        "audio/m4a" | "audio/mp4" => &["m4a", "mp4"],
        "audio/amr" => &["amr"],
        "video/mp4" => &["mp4", "m4v"],
        "video/quicktime" => &["mov", "qt"],
        "video/webm" => &["webm"],
        "video/x-matroska" => &["mkv"],
        "video/3gpp" => &["3gp"],
        "application/pdf" => &["pdf"],
        "application/rtf" => &["rtf"],
        "application/msword" => &["doc", "dot"],
        "application/vnd.ms-excel" => &["xls", "xlt"],
        "application/vnd.ms-powerpoint" => &["ppt", "pps", "pot"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => &["docx"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => &["xlsx"],
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => &["pptx"],
        "application/vnd.oasis.opendocument.text" => &["odt"],
        "application/vnd.oasis.opendocument.spreadsheet" => &["ods"],
        "application/vnd.oasis.opendocument.presentation" => &["odp"],
        "application/epub+zip" => &["epub"],
        "application/zip" => &["zip"],
        TEXT_MIME => &[],
        _ => return None,
    })
}

/// Extensions that make a desktop run the file, whatever its bytes are: never accepted on text,
/// and never on anything else either, since no allowed type carries them.
const RUNNABLE_EXTENSIONS: &[&str] = &[
    "exe", "com", "bat", "cmd", "scr", "pif", "msi", "msp", "dll", "cpl", "hta", "jar", "js",
    "jse", "vbs", "vbe", "wsf", "wsh", "ps1", "psm1", "reg", "lnk", "sh", "bash", "zsh", "command",
    "app", "apk", "dmg", "pkg", "deb", "rpm", "elf", "bin", "run", "html", "htm", "xhtml", "svg",
    "xml", "php", "py", "pl", "rb",
];

/// Which media types a tenant accepts: exact MIME types, or a family's prefix with `*` (such as
/// `image/*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MediaAllowList(Vec<String>);

impl Default for MediaAllowList {
    /// Images, audio, video, PDF, plain text, the common office formats and zip.
    fn default() -> Self {
        Self(
            [
                "image/jpeg",
                "image/png",
                "image/gif",
                "image/webp",
                "image/heif",
                "image/avif",
                "image/bmp",
                "image/tiff",
                "audio/*",
                "video/*",
                "application/pdf",
                TEXT_MIME,
                "application/rtf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.spreadsheet",
                "application/vnd.oasis.opendocument.presentation",
                "application/zip",
            ]
            .map(str::to_owned)
            .to_vec(),
        )
    }
}

impl MediaAllowList {
    /// An allow-list of these entries.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `allowed_types`) if an entry is not `type/subtype` or `type/*`.
    pub fn new(entries: Vec<String>) -> Result<Self> {
        for entry in &entries {
            let valid = entry.split_once('/').is_some_and(|(kind, subtype)| {
                let token = |part: &str| {
                    !part.is_empty()
                        && part.bytes().all(|byte| {
                            byte.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&byte)
                        })
                };
                token(kind) && (subtype == "*" || token(subtype))
            });
            if !valid {
                return Err(Error::invalid(
                    "allowed_types",
                    format!("{entry:?} is not a MIME type such as image/png or image/*"),
                ));
            }
        }
        Ok(Self(entries))
    }

    /// The entries.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// Whether the list admits this MIME type.
    pub fn allows(&self, mime: &str) -> bool {
        self.0.iter().any(|entry| match entry.strip_suffix("/*") {
            Some(family) => mime
                .split_once('/')
                .is_some_and(|(kind, _)| kind.eq_ignore_ascii_case(family)),
            None => entry.eq_ignore_ascii_case(mime),
        })
    }

    /// Checks a sniffed type, and the extension of the file name it arrived under, against the
    /// list.
    ///
    /// # Errors
    /// [`Error::UnsupportedMediaType`] if the type is not allowed, or the name's extension
    /// belongs to another type or makes a desktop run the file.
    pub fn check(&self, media_type: &MediaType, file_name: &MediaFileName) -> Result<()> {
        let refuse = |reason: String| {
            Err(Error::UnsupportedMediaType {
                media_type: media_type.mime.clone(),
                reason,
            })
        };
        if !self.allows(&media_type.mime) {
            return refuse(format!("{} files are not accepted", media_type.mime));
        }
        let Some(extension) = file_name.extension() else {
            return Ok(());
        };
        if RUNNABLE_EXTENSIONS.contains(&extension.as_str()) {
            return refuse(format!(
                "the file name ends in .{extension}, which is not accepted"
            ));
        }
        match extensions_of(&media_type.mime) {
            Some(extensions)
                if !extensions.is_empty() && !extensions.contains(&extension.as_str()) =>
            {
                refuse(format!(
                    "the file name ends in .{extension} but the content is {}",
                    media_type.mime
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    /// An ELF header and the start of its program header (`infer` wants more than 52 bytes).
    const ELF: &[u8; 64] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3e\0\x01\0\0\0\x78\0\x40\0\0\0\0\0\x40\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x40\0\x38\0\x01\0\0\0\0\0\0\0";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";

    fn name(value: &str) -> MediaFileName {
        MediaFileName::parse(value).expect("valid name")
    }

    #[test]
    fn bytes_decide_the_type_not_the_name() {
        assert_eq!(sniff(PNG).mime, "image/png");
        assert_eq!(sniff(PNG).family, MediaFamily::Image);
        assert_eq!(sniff(PDF).mime, "application/pdf");
        assert_eq!(sniff(PDF).family, MediaFamily::Document);
        assert_eq!(sniff(ELF.as_slice()).mime, "application/x-executable");
        assert_eq!(sniff(ELF.as_slice()).family, MediaFamily::Other);
        assert_eq!(sniff("héllo\r\n\tworld".as_bytes()).mime, TEXT_MIME);
        assert_eq!(sniff(b"").mime, TEXT_MIME, "the empty file is text");
        assert_eq!(sniff(b"text with a \0 in it").mime, UNKNOWN_MIME);
        assert_eq!(sniff(&[0xff, 0xfe, 0x00, 0x01]).mime, UNKNOWN_MIME);
    }

    #[test]
    fn text_cut_inside_a_character_is_still_text() {
        let text = "prix: 5 €".as_bytes();
        assert_eq!(sniff(&text[..text.len() - 1]).mime, TEXT_MIME);
    }

    #[test]
    fn the_default_list_admits_common_media_and_refuses_executables() {
        let allowed = MediaAllowList::default();
        assert_eq!(allowed.check(&sniff(PNG), &name("cat.png")), Ok(()));
        assert_eq!(allowed.check(&sniff(PNG), &name("CAT.PNG")), Ok(()));
        assert_eq!(allowed.check(&sniff(PNG), &name("no-extension")), Ok(()));
        assert_eq!(allowed.check(&sniff(PDF), &name("report.pdf")), Ok(()));
        assert_eq!(allowed.check(&sniff(b"notes"), &name("notes.md")), Ok(()));
        assert!(allowed.allows("audio/ogg"));
        assert!(allowed.allows("video/mp4"));
        for (bytes, file_name) in [
            (ELF.as_slice(), "tool"),
            (ELF.as_slice(), "innocent.png"),
            (PNG, "cat.exe"),
            (PNG, "cat.pdf"),
            (PDF, "report.docx"),
            (b"echo hi".as_slice(), "run.bat"),
            (b"<p>hi</p>".as_slice(), "page.html"),
            (b"\0\x01binary".as_slice(), "data.txt"),
        ] {
            assert!(
                matches!(
                    allowed.check(&sniff(bytes), &name(file_name)),
                    Err(Error::UnsupportedMediaType { .. })
                ),
                "{file_name} with {:?} is refused",
                sniff(bytes).mime
            );
        }
    }

    #[test]
    fn a_tenant_list_takes_exact_types_and_families() {
        let images_only =
            MediaAllowList::new(vec!["image/*".to_owned(), "application/pdf".to_owned()])
                .expect("valid");
        assert!(images_only.allows("image/webp"));
        assert!(images_only.allows("application/pdf"));
        assert!(!images_only.allows("video/mp4"));
        assert!(!images_only.allows("imagex/png"));
        for bad in ["image", "/png", "image/", "image/p ng", "*/*x"] {
            assert!(MediaAllowList::new(vec![bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
