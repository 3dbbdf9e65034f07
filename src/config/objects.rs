//! `[objects]`: the one object store that keeps every stored file's bytes (filesystem, S3 or
//! memory, with the S3 keys only in the S3 mode), and its translation into the S3 adapter's
//! `S3Settings`. Media is its main user; call recordings keep their media in it too, next to
//! media's objects (each under its own key prefix), rather than in a second store.
//!
//! The file writes the section flat ([`ObjectsKeys`]: `backend` names the mode, `s3_*`
//! configure it); it is read into the typed [`ObjectsConfig`], whose [`ObjectStoreConfig`]
//! carries the S3 settings only when S3 is chosen. Choosing S3 without its endpoint or keys is
//! an error that names the missing keys. The section was once `[recordings]` (with
//! `object_store` for `backend`); [`ensure_no_recordings_section`] turns a configuration that
//! still says so into an error that names the new keys.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::section::{config_section, ensure_positive};

/// The `backend` key: which object store keeps stored files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectStoreBackend {
    /// Files under `<data_dir>/objects`.
    #[default]
    Filesystem,
    /// An S3 service (`objects.s3_*`); needs a build with the `s3` cargo feature.
    S3,
    /// In memory: lost on exit. For tests.
    Memory,
}

config_section! {
    /// `[objects]`: where the bytes of stored files go: media users upload and call
    /// recordings' media. Their records (names, sizes, consents, ...) are kept by the store
    /// `[storage]` names.
    pub struct ObjectsKeys = "objects" {
        /// `"filesystem"` (under `<data_dir>/objects`), `"s3"` (a build with
        /// `--features s3`), or `"memory"` (lost on exit; tests).
        pub backend: ObjectStoreBackend = ObjectStoreBackend::Filesystem,
        /// The S3 endpoint (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`),
        /// for `backend = "s3"`.
        pub s3_endpoint: Option<String> = None;
            example r#""https://s3.eu-west-1.amazonaws.com""#,
        /// The bucket; created at start if it does not exist (the default is the name it had
        /// when only recordings used it, so existing deployments keep finding their objects).
        pub s3_bucket: String = "switchboard-recordings".to_owned(),
        /// The region requests are signed for.
        pub s3_region: String = "us-east-1".to_owned(),
        /// The access key id.
        pub s3_access_key: Option<String> = None; example r#""AKIA...""#,
        /// The secret access key (or `SWITCHBOARD__OBJECTS__S3_SECRET_KEY`).
        pub s3_secret_key: Option<String> = None; example r#""...""#,
        /// Prepended to every object key in the bucket (`switchboard/`).
        pub s3_key_prefix: String = String::new(),
        /// Path-style URLs (`<endpoint>/<bucket>/<key>`); false for virtual-hosted ones.
        pub s3_path_style: bool = true,
        /// The longest one S3 request may take, body included, in milliseconds; for a download
        /// (which streams at its reader's pace), the longest wait to connect or for more bytes.
        pub s3_request_timeout_ms: u64 = 120_000,
    }
}

/// `[objects]`, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ObjectsKeys", into = "ObjectsKeys")]
pub struct ObjectsConfig {
    /// Which object store keeps stored files (`backend`, `s3_*`).
    pub store: ObjectStoreConfig,
}

/// Which object store keeps stored files, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectStoreConfig {
    /// Files under `<data_dir>/objects`.
    Filesystem,
    /// An S3 service; needs a build with the `s3` cargo feature.
    S3(S3ObjectStoreConfig),
    /// In memory: lost on exit. For tests.
    Memory,
}

/// The S3 object store's settings (`objects.s3_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct S3ObjectStoreConfig {
    /// The endpoint (`s3_endpoint`).
    pub endpoint: String,
    /// The bucket (`s3_bucket`).
    pub bucket: String,
    /// The region requests are signed for (`s3_region`).
    pub region: String,
    /// The access key id (`s3_access_key`).
    pub access_key: String,
    /// The secret access key (`s3_secret_key`).
    pub secret_key: String,
    /// Prepended to every object key (`s3_key_prefix`).
    pub key_prefix: String,
    /// Path-style URLs (`s3_path_style`).
    pub path_style: bool,
    /// The longest one request may take, in milliseconds (`s3_request_timeout_ms`).
    pub request_timeout_ms: u64,
}

impl S3ObjectStoreConfig {
    /// The settings for `endpoint`, `bucket` and the keys, the other keys' defaults for the
    /// rest.
    pub fn new(endpoint: String, bucket: String, access_key: String, secret_key: String) -> Self {
        let defaults = ObjectsKeys::default();
        S3ObjectStoreConfig {
            endpoint,
            bucket,
            region: defaults.s3_region,
            access_key,
            secret_key,
            key_prefix: defaults.s3_key_prefix,
            path_style: defaults.s3_path_style,
            request_timeout_ms: defaults.s3_request_timeout_ms,
        }
    }

    /// Fails naming whichever of the endpoint and the keys is empty.
    fn ensure_given(&self) -> anyhow::Result<()> {
        let missing: Vec<&str> = [
            ("objects.s3_endpoint", &self.endpoint),
            ("objects.s3_access_key", &self.access_key),
            ("objects.s3_secret_key", &self.secret_key),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_empty())
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            bail!("objects.backend = \"s3\" needs {}", missing.join(", "));
        }
        Ok(())
    }

    /// The S3 adapter's settings.
    #[cfg(feature = "s3")]
    pub fn s3_settings(&self) -> switchboard_storage::s3::S3Settings {
        let mut settings = switchboard_storage::s3::S3Settings::new(
            self.endpoint.clone(),
            self.bucket.clone(),
            self.access_key.clone(),
            self.secret_key.clone(),
        );
        settings.region.clone_from(&self.region);
        settings.path_style = self.path_style;
        settings.key_prefix.clone_from(&self.key_prefix);
        settings.request_timeout = std::time::Duration::from_millis(self.request_timeout_ms);
        settings
    }
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            store: ObjectStoreConfig::Filesystem,
        }
    }
}

impl TryFrom<ObjectsKeys> for ObjectsConfig {
    type Error = anyhow::Error;

    /// The typed section. The request timeout must be positive whichever store is chosen, as
    /// it always had to be; S3 needs its endpoint and keys.
    fn try_from(keys: ObjectsKeys) -> anyhow::Result<Self> {
        ensure_positive(
            "objects",
            [("s3_request_timeout_ms", keys.s3_request_timeout_ms)],
        )?;
        let store = match keys.backend {
            ObjectStoreBackend::Filesystem => ObjectStoreConfig::Filesystem,
            ObjectStoreBackend::Memory => ObjectStoreConfig::Memory,
            ObjectStoreBackend::S3 => {
                let s3 = S3ObjectStoreConfig {
                    endpoint: keys.s3_endpoint.unwrap_or_default(),
                    bucket: keys.s3_bucket,
                    region: keys.s3_region,
                    access_key: keys.s3_access_key.unwrap_or_default(),
                    secret_key: keys.s3_secret_key.unwrap_or_default(),
                    key_prefix: keys.s3_key_prefix,
                    path_style: keys.s3_path_style,
                    request_timeout_ms: keys.s3_request_timeout_ms,
                };
                s3.ensure_given()?;
                ObjectStoreConfig::S3(s3)
            }
        };
        Ok(ObjectsConfig { store })
    }
}

impl From<ObjectsConfig> for ObjectsKeys {
    fn from(config: ObjectsConfig) -> Self {
        let defaults = ObjectsKeys::default();
        match config.store {
            ObjectStoreConfig::Filesystem => defaults,
            ObjectStoreConfig::Memory => ObjectsKeys {
                backend: ObjectStoreBackend::Memory,
                ..defaults
            },
            ObjectStoreConfig::S3(s3) => ObjectsKeys {
                backend: ObjectStoreBackend::S3,
                s3_endpoint: Some(s3.endpoint),
                s3_bucket: s3.bucket,
                s3_region: s3.region,
                s3_access_key: Some(s3.access_key),
                s3_secret_key: Some(s3.secret_key),
                s3_key_prefix: s3.key_prefix,
                s3_path_style: s3.path_style,
                s3_request_timeout_ms: s3.request_timeout_ms,
            },
        }
    }
}

impl ObjectsConfig {
    /// For S3: checks the request timeout is positive, the build has the adapter, and the
    /// endpoint and keys are given.
    ///
    /// # Errors
    /// Names the offending key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let ObjectStoreConfig::S3(s3) = &self.store {
            ensure_positive(
                "objects",
                [("s3_request_timeout_ms", s3.request_timeout_ms)],
            )?;
            if !cfg!(feature = "s3") {
                bail!(
                    "objects.backend = \"s3\" needs a build with the S3 adapter: \
                     cargo build --release --features s3"
                );
            }
            s3.ensure_given()?;
        }
        Ok(())
    }
}

/// Fails if the merged configuration still has the `[recordings]` section (from the file or a
/// `SWITCHBOARD__RECORDINGS__*` variable), naming what its keys are now called: left alone, it
/// would only be reported as an unknown field.
///
/// # Errors
/// When the section is there.
pub(super) fn ensure_no_recordings_section(figment: &figment::Figment) -> anyhow::Result<()> {
    if figment.find_value("recordings").is_ok() {
        bail!(
            "[recordings] is now [objects], the object store media and recordings share: \
             rename recordings.object_store to objects.backend and move the s3_* keys as they \
             are (SWITCHBOARD__RECORDINGS__* becomes SWITCHBOARD__OBJECTS__*)"
        );
    }
    Ok(())
}
