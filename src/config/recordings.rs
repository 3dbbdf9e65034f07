//! `[recordings]`: which object store keeps call recordings' media (filesystem, S3 or memory),
//! and its translation into the S3 adapter's `S3Settings`.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::section::{config_section, ensure_positive};

/// Which object store keeps recorded media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStoreBackend {
    /// Files under `<data_dir>/objects`.
    #[default]
    Filesystem,
    /// An S3 service (`recordings.s3_*`); needs a build with the `s3` cargo feature.
    S3,
    /// In memory: lost on exit. For tests.
    Memory,
}

config_section! {
    /// `[recordings]`: where call recordings' media is stored. Their metadata (consents,
    /// start and stop, quality) is kept by the store `[storage]` names.
    pub struct RecordingsConfig = "recordings" {
        /// `"filesystem"` (under `<data_dir>/objects`), `"s3"` (a build with
        /// `--features s3`), or `"memory"` (lost on exit; tests).
        pub object_store: ObjectStoreBackend = ObjectStoreBackend::Filesystem,
        /// The S3 endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`),
        /// for `object_store = "s3"`.
        pub s3_endpoint: Option<String> = None;
            example r#""https://s3.eu-west-1.amazonaws.com""#,
        /// The bucket; created at start if it does not exist.
        pub s3_bucket: String = "switchboard-recordings".to_owned(),
        /// The region requests are signed for.
        pub s3_region: String = "us-east-1".to_owned(),
        /// The access key id.
        pub s3_access_key: Option<String> = None; example r#""AKIA...""#,
        /// The secret access key (or `SWITCHBOARD__RECORDINGS__S3_SECRET_KEY`).
        pub s3_secret_key: Option<String> = None; example r#""...""#,
        /// Prepended to every object key in the bucket (`switchboard/`).
        pub s3_key_prefix: String = String::new(),
        /// Path-style URLs (`<endpoint>/<bucket>/<key>`); false for virtual-hosted ones.
        pub s3_path_style: bool = true,
        /// The longest one S3 request may take, body included, in milliseconds.
        pub s3_request_timeout_ms: u64 = 120_000,
    }
}

impl RecordingsConfig {
    /// Checks the request timeout is positive and, for S3, that the build has the adapter and
    /// the endpoint and keys are given.
    ///
    /// # Errors
    /// Names the offending keys.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure_positive(
            "recordings",
            [("s3_request_timeout_ms", self.s3_request_timeout_ms)],
        )?;
        if self.object_store == ObjectStoreBackend::S3 {
            if !cfg!(feature = "s3") {
                bail!(
                    "recordings.object_store = \"s3\" needs a build with the S3 adapter: \
                     cargo build --release --features s3"
                );
            }
            let missing: Vec<&str> = [
                ("recordings.s3_endpoint", &self.s3_endpoint),
                ("recordings.s3_access_key", &self.s3_access_key),
                ("recordings.s3_secret_key", &self.s3_secret_key),
            ]
            .into_iter()
            .filter(|(_, value)| value.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| name)
            .collect();
            if !missing.is_empty() {
                bail!(
                    "recordings.object_store = \"s3\" needs {}",
                    missing.join(", ")
                );
            }
        }
        Ok(())
    }

    /// The S3 object store's settings.
    #[cfg(feature = "s3")]
    pub fn s3_settings(&self) -> switchboard_storage::s3::S3Settings {
        let mut settings = switchboard_storage::s3::S3Settings::new(
            self.s3_endpoint.clone().unwrap_or_default(),
            self.s3_bucket.clone(),
            self.s3_access_key.clone().unwrap_or_default(),
            self.s3_secret_key.clone().unwrap_or_default(),
        );
        settings.region.clone_from(&self.s3_region);
        settings.path_style = self.s3_path_style;
        settings.key_prefix.clone_from(&self.s3_key_prefix);
        settings.request_timeout = std::time::Duration::from_millis(self.s3_request_timeout_ms);
        settings
    }
}
