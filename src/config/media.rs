//! `[media]`: users' files (size limit, quotas, accepted types, how long an unfinished upload
//! is kept), and their translation into the media service's [`MediaSettings`]. The bytes go
//! to the object store `[objects]` names (`<data_dir>/objects` by default); the records to
//! `<data_dir>/media`, or with `storage.backend = "mongodb"` to the MongoDB database.

use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use switchboard_actors::media::MediaSettings;
use switchboard_engine::ids::TenantId;
use switchboard_engine::media::ThumbnailSettings;
use switchboard_engine::media::attachment::DEFAULT_MAX_ATTACHMENTS;
use switchboard_engine::media::thumbnail::{
    DEFAULT_THUMBNAIL_MAX_PIXELS, DEFAULT_THUMBNAIL_MAX_SOURCE_BYTES, DEFAULT_THUMBNAIL_SIZES,
};
use switchboard_engine::media::{MediaAllowList, MediaQuotas};

use super::section::{config_section, ensure_positive};

config_section! {
    /// `[media]`: files users upload to attach to messages.
    pub struct MediaConfig = "media" {
        /// The largest file accepted, in bytes (4 GiB).
        pub max_file_bytes: u64 = 4 * 1024 * 1024 * 1024,
        /// What all of a tenant's media may take together, in bytes; none when unset.
        pub tenant_quota_bytes: Option<u64> = None; example "107374182400",
        /// What one user's media may take, in bytes; none when unset.
        pub user_quota_bytes: Option<u64> = None; example "1073741824",
        /// The media types accepted, read from the files' bytes: exact types or a family with
        /// `*` (`image/*`). Unset: images (JPEG, PNG, GIF, WebP, HEIF, AVIF, BMP, TIFF), audio,
        /// video, PDF, plain text, RTF, the Word, Excel, PowerPoint and OpenDocument formats,
        /// and zip.
        pub allowed_types: Option<Vec<String>> = None; example r#"["image/*", "application/pdf"]"#,
        /// How long an unfinished upload is kept, in milliseconds (24 hours).
        pub upload_expiry_ms: u64 = 24 * 60 * 60 * 1000,
        /// How many media one message may attach.
        pub max_attachments: usize = DEFAULT_MAX_ATTACHMENTS,
        /// How long complete media that no message attaches is kept, in milliseconds (24
        /// hours); 0 keeps it for good.
        pub orphan_ttl_ms: u64 = 24 * 60 * 60 * 1000,
        /// The secret that signs media links (or `SWITCHBOARD__MEDIA__LINK_SECRET`); unset: a
        /// random one kept in `<data_dir>/media-link-secret`. Every node of a deployment needs
        /// the same one.
        pub link_secret: Option<String> = None; example r#""...""#,
        /// Secrets that signed links before the current one: their links still work until they
        /// expire.
        pub retired_link_secrets: Vec<String> = Vec::new(),
        /// How long a media link works when its maker names no lifetime, in seconds (1 hour).
        pub link_ttl_secs: u64 = 3_600,
        /// The longest lifetime a media link may be given, in seconds (7 days).
        pub link_max_ttl_secs: u64 = 7 * 24 * 3_600,
        /// With `[objects] backend = "s3"`: a signed link answers 302 with a presigned
        /// S3 URL that works until the link expires, so the bytes go from S3 to the client and
        /// not through the node (ranges and all; thumbnails are still served by the node). The
        /// S3 endpoint must be one the clients can reach. Other object stores ignore it.
        pub redirect_links_to_object_store: bool = false,
        /// The thumbnails made of each JPEG, PNG, GIF or WebP image, by the length of their
        /// longest edge in pixels (16 to 4096); only sizes smaller than the image are made.
        /// Empty: no thumbnails.
        pub thumbnail_sizes: Vec<u32> = DEFAULT_THUMBNAIL_SIZES.to_vec(),
        /// The most pixels (width × height, read from the header before decoding) an image may
        /// have to be thumbnailed; larger ones get no thumbnails and a recorded reason.
        pub thumbnail_max_pixels: u64 = DEFAULT_THUMBNAIL_MAX_PIXELS,
        /// The largest file thumbnailed, in bytes (the thumbnailer reads it whole).
        pub thumbnail_max_source_bytes: u64 = DEFAULT_THUMBNAIL_MAX_SOURCE_BYTES,
        /// How often the garbage collector removes deleted media, expired uploads and (with
        /// `orphan_ttl_ms`) orphans, in milliseconds.
        pub collect_interval_ms: u64 = 60_000,
        /// Tenants with quotas or accepted types of their own; keys left out keep the values
        /// above:
        ///
        /// ```toml
        /// [[media.tenants]]
        /// tenant = "acme"
        /// tenant_quota_bytes = 10737418240
        /// allowed_types = ["image/*"]
        /// link_secret = "acme's own secret for media links"
        /// ```
        ///
        /// Such entries go after every other `[media]` key.
        pub tenants: Vec<TenantMediaConfig> = Vec::new(),
    }
}

/// One `[[media.tenants]]` entry: a tenant's own quotas, accepted types and link secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantMediaConfig {
    /// The tenant id.
    pub tenant: String,
    /// As `media.tenant_quota_bytes`.
    pub tenant_quota_bytes: Option<u64>,
    /// As `media.user_quota_bytes`.
    pub user_quota_bytes: Option<u64>,
    /// As `media.allowed_types`.
    pub allowed_types: Option<Vec<String>>,
    /// A secret of the tenant's own for its media links; its links then verify with it (and
    /// `retired_link_secrets`) only.
    pub link_secret: Option<String>,
    /// The tenant's earlier link secrets, still accepted until their links expire.
    #[serde(default)]
    pub retired_link_secrets: Vec<String>,
}

impl MediaConfig {
    /// Checks the limits are positive and the allowed types are MIME types.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "media",
            [
                ("max_file_bytes", self.max_file_bytes),
                ("upload_expiry_ms", self.upload_expiry_ms),
                ("collect_interval_ms", self.collect_interval_ms),
                ("link_ttl_secs", self.link_ttl_secs),
                ("link_max_ttl_secs", self.link_max_ttl_secs),
                ("thumbnail_max_pixels", self.thumbnail_max_pixels),
                (
                    "thumbnail_max_source_bytes",
                    self.thumbnail_max_source_bytes,
                ),
            ],
        )?;
        if let Some(size) = self
            .thumbnail_sizes
            .iter()
            .find(|size| !(16..=4096).contains(*size))
        {
            anyhow::bail!("media.thumbnail_sizes: {size} is not between 16 and 4096 pixels");
        }
        anyhow::ensure!(
            self.link_ttl_secs <= self.link_max_ttl_secs,
            "media.link_ttl_secs ({}) is over media.link_max_ttl_secs ({})",
            self.link_ttl_secs,
            self.link_max_ttl_secs
        );
        self.allow_list().map(|_| ())?;
        self.tenant_link_secrets().map(|_| ())?;
        self.tenant_overrides().map(|_| ())
    }

    /// Each configured tenant's quotas and allow-list (where it names none, the global one).
    fn tenant_overrides(&self) -> anyhow::Result<Vec<(TenantId, MediaQuotas, MediaAllowList)>> {
        self.tenants
            .iter()
            .map(|tenant| {
                let tenant_id = TenantId::parse(&tenant.tenant).map_err(|error| {
                    anyhow::anyhow!(
                        "media.tenants: {:?} is not a valid tenant id ({error})",
                        tenant.tenant
                    )
                })?;
                let quotas = MediaQuotas {
                    tenant_bytes: tenant.tenant_quota_bytes.or(self.tenant_quota_bytes),
                    user_bytes: tenant.user_quota_bytes.or(self.user_quota_bytes),
                };
                let allow_list = match &tenant.allowed_types {
                    Some(entries) => MediaAllowList::new(entries.clone()).with_context(|| {
                        format!("invalid media.tenants allowed_types for {}", tenant.tenant)
                    })?,
                    None => self.allow_list()?,
                };
                Ok((tenant_id, quotas, allow_list))
            })
            .collect()
    }

    fn allow_list(&self) -> anyhow::Result<MediaAllowList> {
        match &self.allowed_types {
            None => Ok(MediaAllowList::default()),
            Some(entries) => {
                MediaAllowList::new(entries.clone()).context("invalid media.allowed_types")
            }
        }
    }

    /// The tenants with link secrets of their own: tenant, current secret, retired secrets.
    ///
    /// # Errors
    /// An invalid tenant id, or retired secrets without a current one.
    pub fn tenant_link_secrets(&self) -> anyhow::Result<Vec<(TenantId, String, Vec<String>)>> {
        let mut rings = Vec::new();
        for tenant in &self.tenants {
            let tenant_id = TenantId::parse(&tenant.tenant).map_err(|error| {
                anyhow::anyhow!(
                    "media.tenants: {:?} is not a valid tenant id ({error})",
                    tenant.tenant
                )
            })?;
            match &tenant.link_secret {
                Some(secret) => {
                    anyhow::ensure!(
                        !secret.is_empty(),
                        "media.tenants: the link_secret of {} is empty",
                        tenant.tenant
                    );
                    rings.push((
                        tenant_id,
                        secret.clone(),
                        tenant.retired_link_secrets.clone(),
                    ));
                }
                None => anyhow::ensure!(
                    tenant.retired_link_secrets.is_empty(),
                    "media.tenants: {} has retired_link_secrets but no link_secret",
                    tenant.tenant
                ),
            }
        }
        Ok(rings)
    }

    /// What the thumbnailer makes, and of what.
    pub fn thumbnail_settings(&self) -> ThumbnailSettings {
        ThumbnailSettings {
            sizes: self.thumbnail_sizes.clone(),
            max_pixels: self.thumbnail_max_pixels,
            max_source_bytes: self.thumbnail_max_source_bytes,
        }
    }

    /// The media service's settings; `call_timeout` bounds each store call.
    ///
    /// # Errors
    /// If `allowed_types` is invalid (which [`MediaConfig::validate`] reports first).
    pub fn media_settings(&self, call_timeout: Duration) -> anyhow::Result<MediaSettings> {
        let overrides = self.tenant_overrides()?;
        Ok(MediaSettings {
            max_file_bytes: self.max_file_bytes,
            quotas: MediaQuotas {
                tenant_bytes: self.tenant_quota_bytes,
                user_bytes: self.user_quota_bytes,
            },
            tenant_quotas: overrides
                .iter()
                .map(|(tenant_id, quotas, _)| (tenant_id.clone(), *quotas))
                .collect(),
            allowed_types: self.allow_list()?,
            tenant_allowed_types: overrides
                .into_iter()
                .map(|(tenant_id, _, allow_list)| (tenant_id, allow_list))
                .collect(),
            upload_expiry: Duration::from_millis(self.upload_expiry_ms),
            orphan_ttl: (self.orphan_ttl_ms > 0).then(|| Duration::from_millis(self.orphan_ttl_ms)),
            call_timeout,
            thumbnail_sizes: self.thumbnail_sizes.clone(),
            redirect_links: self.redirect_links_to_object_store,
        })
    }
}
