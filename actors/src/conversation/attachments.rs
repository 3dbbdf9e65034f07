//! The conversation actor's side of attachments: a new message's media are checked against
//! their records (complete, the sender's own, or for a forwarded copy attached to the
//! original), then each record is told which message attaches it, and only then is the message
//! appended. Recording the attachment first means a crash in between leaves a record that names
//! a message that was never stored (harmless: it grants no access, and keeps the media from
//! being collected as an orphan) and never a stored message whose media the collector could
//! take.

use std::time::Duration;

use switchboard_engine::Error;
use switchboard_engine::ids::{MessageId, UserId};
use switchboard_engine::media::attachment::check_attachable;
use switchboard_engine::media::{AttachedTo, Attachment, MediaUpdate, MediaUpdateOutcome};
use switchboard_engine::model::NewMessage;

use super::ConversationActor;
use crate::uploads::bounded;

/// How long one media record read or update may take.
const MEDIA_CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl ConversationActor {
    /// Checks the media `new_message` names and records `message_id` as attaching each;
    /// returns what the message carries.
    ///
    /// # Errors
    /// The errors of [`check_attachable`] (nothing is recorded then); [`Error::Invalid`] for
    /// media deleted while it was being attached; [`Error::Unavailable`] if the media store
    /// fails or is slow.
    pub(super) async fn attach_media(
        &self,
        sender_id: &UserId,
        new_message: &NewMessage,
        message_id: MessageId,
    ) -> Result<Vec<Attachment>, Error> {
        let media = &self.context.media;
        let mut attachments = Vec::with_capacity(new_message.attachments.len());
        for &media_id in &new_message.attachments {
            let record = bounded(
                MEDIA_CALL_TIMEOUT,
                "reading an attachment's media",
                media.media(self.tenant_id(), media_id),
            )
            .await?;
            attachments.push(check_attachable(
                media_id,
                record.as_ref(),
                sender_id,
                new_message.forwarded_from.as_deref(),
            )?);
        }
        let attached_to = AttachedTo {
            conversation_id: self.conversation_id(),
            message_id,
        };
        for attachment in &attachments {
            let outcome = bounded(
                MEDIA_CALL_TIMEOUT,
                "attaching media",
                media.update_media(
                    self.tenant_id(),
                    attachment.media_id,
                    MediaUpdate::Attached(attached_to),
                ),
            )
            .await?;
            match outcome {
                MediaUpdateOutcome::Updated(_) => {}
                MediaUpdateOutcome::NotFound | MediaUpdateOutcome::Refused(_) => {
                    return Err(Error::invalid(
                        "attachments",
                        format!("media {} was deleted", attachment.media_id),
                    ));
                }
            }
        }
        Ok(attachments)
    }
}
