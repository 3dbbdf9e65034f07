//! Announcements of media to the rest of a deployment's data flow: when an upload completes,
//! a `media.uploaded` event names it (in the Kafka build, a record on the media topic that
//! search indexers, virus scanners or analytics consume). The port is [`MediaEvents`]; the
//! event's wire form is [`MediaUploaded`], built from the record here so every adapter sends
//! the same fields.

use async_trait::async_trait;
use serde::Serialize;

use super::MediaRecord;
use crate::StoreError;
use crate::ids::TenantId;

/// The `type` of the event an upload's completion produces.
pub const MEDIA_UPLOADED: &str = "media.uploaded";

/// A `media.uploaded` event as it travels (JSON in the Kafka build).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaUploaded<'a> {
    /// Always [`MEDIA_UPLOADED`].
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant.
    pub tenant_id: &'a str,
    /// The media.
    pub media_id: String,
    /// Who uploaded it.
    pub uploader_id: &'a str,
    /// Its file name.
    pub file_name: &'a str,
    /// The conversation it was uploaded for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Its sniffed MIME type.
    pub content_type: &'a str,
    /// Its length in bytes.
    pub size_bytes: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: &'a str,
    /// When it completed, in Unix milliseconds.
    pub completed_at: u64,
}

impl<'a> MediaUploaded<'a> {
    /// The event of complete media; `None` for media that is not complete.
    pub fn of(tenant_id: &'a TenantId, record: &'a MediaRecord) -> Option<Self> {
        let completed_at = record.state.completed_at()?;
        Some(Self {
            kind: MEDIA_UPLOADED,
            tenant_id: tenant_id.as_str(),
            media_id: record.media_id.to_string(),
            uploader_id: record.uploader.as_str(),
            file_name: record.file_name.as_str(),
            conversation_id: record.conversation_id.map(|id| id.to_string()),
            content_type: record
                .media_type
                .as_ref()
                .map_or("", |media_type| media_type.mime.as_str()),
            size_bytes: record.size_bytes,
            sha256: record.sha256.as_deref().unwrap_or(""),
            completed_at: completed_at.as_millis(),
        })
    }
}

/// Where completed media is announced.
#[async_trait]
pub trait MediaEvents: Send + Sync + 'static {
    /// Announces that `record` (complete) was uploaded.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the event could not be handed over.
    async fn media_uploaded(
        &self,
        tenant_id: &TenantId,
        record: &MediaRecord,
    ) -> std::result::Result<(), StoreError>;
}
