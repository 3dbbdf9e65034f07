//! A media item's file name as its uploader gave it, validated once so that everything that
//! shows it (the media record, `Content-Disposition`, attachments in the `message` event) can
//! trust it, and the `Content-Disposition` header a download answers with.
//!
//! A file name is refused, not repaired: a name with a path in it, a control character or a
//! bidirectional override (U+202E before `fdp.exe` makes `invoice…exe` read as `invoiceexe.pdf`) says the
//! client is broken or hostile, and guessing what it meant would store something nobody asked
//! for.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest file name accepted, in bytes (what most filesystems allow).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// A validated file name: 1 to [`MAX_FILE_NAME_BYTES`] bytes of UTF-8 with no path separator,
/// no control or bidirectional-override character, no leading or trailing white space, and
/// not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaFileName(String);

/// Whether a download is shown in place (images, audio, video, PDF) or saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// `inline`: the browser may show it.
    Inline,
    /// `attachment`: the browser saves it.
    Attachment,
}

impl MediaFileName {
    /// Validates a file name.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `file_name`) naming what is wrong.
    pub fn parse(value: &str) -> Result<Self> {
        let refuse = |reason: &str| Err(Error::invalid("file_name", reason));
        if value.is_empty() || value.len() > MAX_FILE_NAME_BYTES {
            return refuse(&format!("must be 1 to {MAX_FILE_NAME_BYTES} bytes"));
        }
        if value.contains(['/', '\\']) || value == "." || value == ".." {
            return refuse("must be a file name, not a path");
        }
        if value.chars().any(is_forbidden_char) {
            return refuse("must not contain control or bidirectional-override characters");
        }
        if value.trim() != value {
            return refuse("must not start or end with white space");
        }
        Ok(Self(value.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension (after the last `.`, lowercased), if the name has one and it is not the
    /// whole name (`.profile` has none).
    pub fn extension(&self) -> Option<String> {
        let (stem, extension) = self.0.rsplit_once('.')?;
        (!stem.is_empty() && !extension.is_empty()).then(|| extension.to_ascii_lowercase())
    }

    /// The `Content-Disposition` value for a download of this file: the disposition, an ASCII
    /// `filename` for old clients (every other character, and `"` and `\`, as `_`) and the exact
    /// name as RFC 8187 `filename*` (UTF-8, percent-encoded).
    pub fn content_disposition(&self, disposition: Disposition) -> String {
        let kind = match disposition {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        };
        let ascii: String = self
            .0
            .chars()
            .map(|character| match character {
                ' '..='~' if character != '"' && character != '\\' => character,
                _ => '_',
            })
            .collect();
        let mut encoded = String::with_capacity(self.0.len() * 3);
        for byte in self.0.bytes() {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                encoded.push(char::from(byte));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(encoded, "%{byte:02X}");
            }
        }
        format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

/// Control characters (C0, DEL, C1), the Unicode line and paragraph separators, and the
/// bidirectional embedding, override and isolate characters.
fn is_forbidden_char(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}'
        )
}

impl fmt::Display for MediaFileName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<String> for MediaFileName {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<MediaFileName> for String {
    fn from(name: MediaFileName) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_script_are_kept_as_given() {
        for name in [
            "photo.jpg",
            "Relevé de compte.pdf",
            "会议记录.docx",
            ".profile",
            "a",
        ] {
            assert_eq!(
                MediaFileName::parse(name).map(|name| name.to_string()),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn paths_controls_overrides_and_blank_edges_are_refused() {
        let too_long = "x".repeat(MAX_FILE_NAME_BYTES + 1);
        for name in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "dir/file.txt",
            "C:\\Windows\\evil.exe",
            "nul\0byte.txt",
            "line\nbreak.txt",
            "bell\u{7}.txt",
            "c1\u{85}.txt",
            "invoice\u{202E}fdp.exe",
            "isolate\u{2066}.txt",
            " leading.txt",
            "trailing.txt ",
            too_long.as_str(),
        ] {
            assert!(
                matches!(MediaFileName::parse(name), Err(Error::Invalid { ref field, .. }) if field == "file_name"),
                "{name:?} is refused"
            );
        }
    }

    #[test]
    fn the_extension_is_after_the_last_dot_and_lowercased() {
        let extension = |name: &str| MediaFileName::parse(name).expect("valid").extension();
        assert_eq!(extension("photo.JPG"), Some("jpg".to_owned()));
        assert_eq!(extension("archive.tar.gz"), Some("gz".to_owned()));
        assert_eq!(extension("README"), None);
        assert_eq!(extension(".profile"), None);
        assert_eq!(extension("trailing."), None);
    }

    #[test]
    fn content_disposition_has_an_ascii_fallback_and_the_exact_name_encoded() {
        let name = MediaFileName::parse("Relevé \"final\";.pdf").expect("valid");
        assert_eq!(
            name.content_disposition(Disposition::Attachment),
            "attachment; filename=\"Relev_ _final_;.pdf\"; filename*=UTF-8''Relev%C3%A9%20%22final%22%3B.pdf"
        );
        let plain = MediaFileName::parse("cat.png").expect("valid");
        assert_eq!(
            plain.content_disposition(Disposition::Inline),
            "inline; filename=\"cat.png\"; filename*=UTF-8''cat.png"
        );
    }
}
