//! Attachments: media carried by a message, and the rules for attaching it.
//!
//! A message carries a snapshot of each attached media item ([`Attachment`]: id, name, type,
//! size, dimensions, thumbnails), taken when the message was sent, so that fanning a message
//! out needs no lookup. Readers of history refresh the snapshot against the media record
//! ([`Attachment::refresh`]): thumbnails made later appear, and media deleted since shows as
//! deleted. The media record in turn lists the messages that attach it ([`AttachedTo`]), which
//! is what lets someone other than the uploader read it: anyone who can read one of those
//! messages may (the access check lives with the media service, which can ask about
//! membership).
//!
//! Who may attach what ([`check_attachable`]): only complete media, and only its uploader in a
//! new message; a forwarded copy carries its original's attachments, which the forwarder did
//! not upload, so there the media must be attached to the original.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Dimensions, MediaRecord, MediaState};
use crate::ids::{ConversationId, MediaId, MessageId, UserId};
use crate::model::ForwardedFrom;
use crate::{Error, Result};

/// How many attachments one message may carry unless configured otherwise
/// (`media.max_attachments`).
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

/// A media item as a message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The media.
    pub media_id: MediaId,
    /// Its file name.
    pub file_name: String,
    /// Its MIME type, as sniffed from its bytes.
    pub mime: String,
    /// Its length in bytes.
    pub size_bytes: u64,
    /// Image or video dimensions, where known.
    pub dimensions: Option<Dimensions>,
    /// Its thumbnails, by size.
    pub thumbnails: Vec<AttachedThumbnail>,
    /// Whether the media was deleted since it was attached (set when history is read; the
    /// bytes are gone, the name and type stay for display).
    pub deleted: bool,
}

/// One thumbnail of an attachment, served at `/v1/media/{media_id}/thumbnail?size={size}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedThumbnail {
    /// The longest edge it was made for, in pixels (its id among the media's thumbnails).
    pub size: u32,
    /// Its width and height.
    pub dimensions: Dimensions,
    /// Its MIME type.
    pub mime: String,
}

/// A message that attaches a media item, as the media record lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttachedTo {
    /// The message's conversation.
    pub conversation_id: ConversationId,
    /// The message.
    pub message_id: MessageId,
}

impl Attachment {
    /// The snapshot of complete media.
    pub fn of(record: &MediaRecord) -> Self {
        let mut attachment = Attachment {
            media_id: record.media_id,
            file_name: record.file_name.as_str().to_owned(),
            mime: record
                .media_type
                .as_ref()
                .map_or_else(String::new, |media_type| media_type.mime.clone()),
            size_bytes: record.size_bytes,
            dimensions: None,
            thumbnails: Vec::new(),
            deleted: false,
        };
        attachment.refresh(Some(record));
        attachment
    }

    /// Brings the snapshot up to date with the media's record as it is now, `None` if it was
    /// removed: its dimensions and thumbnails, or that it was deleted.
    pub fn refresh(&mut self, current: Option<&MediaRecord>) {
        match current {
            Some(record) if record.is_complete() => {
                self.dimensions = record.dimensions;
                self.thumbnails = record
                    .thumbnails
                    .iter()
                    .map(|thumbnail| AttachedThumbnail {
                        size: thumbnail.size,
                        dimensions: thumbnail.dimensions,
                        mime: thumbnail.mime.clone(),
                    })
                    .collect();
            }
            Some(_) | None => {
                self.thumbnails.clear();
                self.deleted = true;
            }
        }
    }
}

/// Checks the attachments a new message asks for: at most `max_attachments`, each named once.
///
/// # Errors
/// [`Error::TooLarge`] past the limit; [`Error::Invalid`] (`attachments`) for a repeated id.
pub fn check_attachment_ids(media_ids: &[MediaId], max_attachments: usize) -> Result<()> {
    if media_ids.len() > max_attachments {
        return Err(Error::TooLarge {
            what: "attachments".into(),
            limit: max_attachments,
            actual: media_ids.len(),
        });
    }
    let mut seen = HashSet::with_capacity(media_ids.len());
    if let Some(repeated) = media_ids.iter().find(|media_id| !seen.insert(**media_id)) {
        return Err(Error::invalid(
            "attachments",
            format!("names media {repeated} more than once"),
        ));
    }
    Ok(())
}

/// Decides whether `sender` may attach the media of `record` to a new message, and returns
/// what the message carries. `record` is `None` when the tenant has no such media.
/// `forwarded_from` is the original of a forwarded copy: the copy may carry what the original
/// attached, whoever uploaded it.
///
/// # Errors
/// [`Error::Invalid`] (`attachments`) for media that does not exist in the tenant, is deleted,
/// or was uploaded by someone else (one answer for all three, so that a sender cannot probe
/// other users' media), or, for a forwarded copy, is not attached to the original;
/// [`Error::Conflict`] for media still uploading.
pub fn check_attachable(
    media_id: MediaId,
    record: Option<&MediaRecord>,
    sender: &UserId,
    forwarded_from: Option<&ForwardedFrom>,
) -> Result<Attachment> {
    let not_yours = || {
        Error::invalid(
            "attachments",
            format!("media {media_id} is not media you uploaded"),
        )
    };
    let Some(record) = record.filter(|record| !record.state.is_deleted()) else {
        return Err(not_yours());
    };
    let attached_to_origin = |origin: &ForwardedFrom| {
        record.attached_to.iter().any(|attached| {
            attached.conversation_id == origin.conversation_id
                && attached.message_id == origin.message_id
        })
    };
    match forwarded_from {
        Some(origin) if !attached_to_origin(origin) => {
            return Err(Error::invalid(
                "attachments",
                format!("media {media_id} is not attached to the forwarded message"),
            ));
        }
        Some(_) => {}
        None if &record.uploader != sender => return Err(not_yours()),
        None => {}
    }
    match record.state {
        MediaState::Complete { .. } | MediaState::Assembled { .. } => Ok(Attachment::of(record)),
        MediaState::Uploading { .. } => Err(Error::Conflict {
            reason: format!("media {media_id} is still uploading; attach it once complete"),
        }),
        MediaState::Deleted { .. } => Err(not_yours()),
    }
}

#[cfg(test)]
mod tests;
