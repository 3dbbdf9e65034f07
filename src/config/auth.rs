//! `[auth]`: how tokens are verified (the development secret, the audience, the clock skew and
//! each known tenant's key), and its translation into the authenticator's [`AuthSettings`].

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use switchboard_engine::ids::TenantId;
use switchboard_transport::auth::{AuthSettings, TenantKey, TenantVerifier};

use super::section::config_section;

config_section! {
    /// `[auth]`: token verification.
    pub struct AuthConfig = "auth" {
        /// The HS256 development secret, at least 32 bytes. When unset (the default), a
        /// random secret is generated on first start and kept in `<data_dir>/dev-secret`;
        /// `switchboard token` signs with the same one.
        pub hs256_secret: Option<String> = None; example r#""...""#,
        /// When set, tokens carrying `aud` must name this audience. When unset (the default),
        /// tokens carrying `aud` are refused (RFC 7519 section 4.1.3).
        pub audience: Option<String> = None; example r#""switchboard""#,
        /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
        pub leeway_seconds: u64 = 5,
        /// Known tenants. With none configured (the default), the development secret is
        /// accepted for any tenant id. Once any are configured, unknown tenants are refused
        /// with `token_unknown_tenant`. Each tenant accepts exactly one algorithm:
        ///
        /// ```toml
        /// [[auth.tenants]]
        /// id = "acme"                     # HS256 with the development secret
        ///
        /// [[auth.tenants]]
        /// id = "globex"
        /// algorithm = "HS256"
        /// secret = "a-tenant-secret-of-at-least-32-bytes"
        ///
        /// [[auth.tenants]]
        /// id = "initech"
        /// algorithm = "RS256"             # or "ES256", "EdDSA"
        /// public_key_file = "/etc/switchboard/initech.pem"   # or public_key_pem = "-----BEGIN ..."
        /// ```
        pub tenants: Vec<TenantConfig> = Vec::new(),
    }
}

/// One `[[auth.tenants]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant id (the `tenant` claim).
    pub id: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`. Default `HS256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// HS256 only: the tenant's own secret. Default: the development secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// RS256/ES256/EdDSA: the PEM public key, inline.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// RS256/ES256/EdDSA: a file holding the PEM public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

impl AuthConfig {
    /// The authenticator's settings, with the development secret resolved.
    ///
    /// # Errors
    /// For an unknown algorithm, a missing key or an unreadable key file.
    pub fn auth_settings(&self, development_secret: String) -> anyhow::Result<AuthSettings> {
        let tenants = self
            .tenants
            .iter()
            .map(TenantConfig::tenant_key)
            .collect::<anyhow::Result<_>>()?;
        Ok(AuthSettings {
            development_secret,
            audience: self.audience.clone(),
            leeway_secs: self.leeway_seconds,
            tenants,
        })
    }
}

impl TenantConfig {
    /// The tenant's id and how its tokens are verified.
    fn tenant_key(&self) -> anyhow::Result<TenantKey> {
        let tenant_id = TenantId::parse(&self.id)
            .with_context(|| format!("auth.tenants: {:?} is not a valid tenant id", self.id))?;
        let public_key = || -> anyhow::Result<String> {
            match (&self.public_key_pem, &self.public_key_file) {
                (Some(pem), None) => Ok(pem.clone()),
                (None, Some(path)) => std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "reading the key of tenant {tenant_id} from {}",
                        path.display()
                    )
                }),
                _ => bail!(
                    "tenant {tenant_id} needs exactly one of public_key_pem and public_key_file"
                ),
            }
        };
        let verifier = match self.algorithm.as_deref().unwrap_or("HS256") {
            "HS256" => match &self.secret {
                Some(secret) => TenantVerifier::Hs256 {
                    secret: secret.clone(),
                },
                None => TenantVerifier::DevelopmentSecret,
            },
            "RS256" => TenantVerifier::Rs256 {
                public_key_pem: public_key()?,
            },
            "ES256" => TenantVerifier::Es256 {
                public_key_pem: public_key()?,
            },
            "EdDSA" => TenantVerifier::EdDsa {
                public_key_pem: public_key()?,
            },
            other => bail!(
                "tenant {tenant_id}: algorithm {other:?} is not one of HS256, RS256, ES256, EdDSA"
            ),
        };
        Ok(TenantKey {
            tenant_id,
            verifier,
        })
    }
}
