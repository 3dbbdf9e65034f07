//! JWT verification.
//!
//! A token names its tenant in the `tenant` claim and its user in `sub`. Which key verifies it
//! depends on configuration:
//! - with no tenants configured, the development secret (HS256) verifies tokens for any tenant;
//! - with tenants configured, only those tenants exist; each uses its own key and algorithm
//!   (HS256 with its own or the development secret, RS256, ES256 or EdDSA with a public key).
//!
//! Exactly one algorithm is accepted per tenant, so a token signed with a different algorithm
//! (including `none`, and the classic HS256-with-the-RSA-public-key confusion) is refused before
//! any signature check. Signature checking is delegated to the `jsonwebtoken` crate; the time
//! claims (`exp`, `nbf`, `iat`) are checked here against a time passed in, so tests control the
//! clock. Every refusal is a distinct [`AuthError`] with a documented wire code.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use switchboard_actors::session::Identity;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::time::Timestamp;

use crate::{Error, Result};

/// The shortest configured HS256 secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused. Each variant has its own wire code (see `wire_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("a token is required: pass ?token= or an Authorization: Bearer header")]
    Missing,
    /// The token is not a well-formed JWT.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The token's algorithm is not the one configured for its tenant (or is `none`).
    #[error("the token's algorithm is not accepted for this tenant")]
    AlgorithmNotAllowed,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` (or `iat`) is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The `tenant` claim names a tenant this server does not know.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The `aud` claim does not match the configured audience.
    #[error("the token's audience does not match")]
    BadAudience,
    /// A required claim is missing or malformed.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
}

/// What a token may do beyond a user's own conversations, from its `roles` claim (an array of
/// strings; names other than these two are ignored, so tokens can carry roles of other
/// systems). Roles are per tenant: an administrator of one tenant is nobody in another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    /// `admin`: the tenant's recordings (list, read, download, erase) and audit log, and
    /// everything a recorder may do.
    pub admin: bool,
    /// `recorder`: stores a recording's media and reports its quality.
    pub recorder: bool,
}

impl Roles {
    /// The role name that grants [`Roles::admin`].
    pub const ADMIN: &'static str = "admin";
    /// The role name that grants [`Roles::recorder`].
    pub const RECORDER: &'static str = "recorder";

    fn from_claims(claims: &Value) -> Result<Self, AuthError> {
        let invalid = || AuthError::InvalidClaims("roles must be an array of strings".to_owned());
        let mut roles = Roles::default();
        match claims.get("roles") {
            None | Some(Value::Null) => {}
            Some(Value::Array(names)) => {
                for name in names {
                    match name.as_str().ok_or_else(invalid)? {
                        Self::ADMIN => roles.admin = true,
                        Self::RECORDER => roles.recorder = true,
                        _ => {}
                    }
                }
            }
            Some(_) => return Err(invalid()),
        }
        Ok(roles)
    }
}

/// How one tenant's tokens are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantVerifier {
    /// HS256 with the server's development secret.
    DevelopmentSecret,
    /// HS256 with the tenant's own secret.
    Hs256 {
        /// The shared secret.
        secret: String,
    },
    /// RS256 with an RSA public key (PEM).
    Rs256 {
        /// The PEM-encoded public key.
        public_key_pem: String,
    },
    /// ES256 with a P-256 public key (PEM).
    Es256 {
        /// The PEM-encoded public key.
        public_key_pem: String,
    },
    /// EdDSA with an Ed25519 public key (PEM).
    EdDsa {
        /// The PEM-encoded public key.
        public_key_pem: String,
    },
}

/// One configured tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantKey {
    /// The tenant.
    pub tenant_id: TenantId,
    /// How its tokens are verified.
    pub verifier: TenantVerifier,
}

/// Everything the authenticator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The HS256 development secret (configured, or generated into the data directory).
    pub development_secret: String,
    /// When set, tokens that carry `aud` must name it; when unset, tokens with `aud` are
    /// refused (RFC 7519: a recipient not named by `aud` must reject the token).
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Configured tenants; empty means "any tenant, development secret".
    pub tenants: Vec<TenantKey>,
}

struct Verifier {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies tokens. Build once at startup; cheap to share.
pub struct Authenticator {
    development: Verifier,
    tenants: HashMap<TenantId, Verifier>,
    audience: Option<String>,
    leeway_secs: u64,
}

/// The verifier of a tenant's public key, which `decode` reads from its PEM for `algorithm`.
fn pem_verifier(
    tenant_id: &TenantId,
    algorithm: Algorithm,
    decode: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
    public_key_pem: &str,
) -> Result<Verifier> {
    let key = decode(public_key_pem.as_bytes()).map_err(|error| Error::InvalidKey {
        tenant: tenant_id.to_string(),
        reason: error.to_string(),
    })?;
    Ok(Verifier { algorithm, key })
}

fn check_secret(what: &str, secret: &str) -> Result<()> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(Error::InvalidConfig(format!(
            "{what} must be at least {MIN_SECRET_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Authenticator {
    /// Parses every configured key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for a key that does not parse; [`Error::InvalidConfig`] for a
    /// secret shorter than [`MIN_SECRET_BYTES`] or a tenant configured twice.
    pub fn new(settings: &AuthSettings) -> Result<Self> {
        check_secret("the development secret", &settings.development_secret)?;
        let development = Verifier {
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(settings.development_secret.as_bytes()),
        };
        let mut tenants = HashMap::new();
        for tenant in &settings.tenants {
            let tenant_id = &tenant.tenant_id;
            let verifier = match &tenant.verifier {
                TenantVerifier::DevelopmentSecret => Verifier {
                    algorithm: Algorithm::HS256,
                    key: DecodingKey::from_secret(settings.development_secret.as_bytes()),
                },
                TenantVerifier::Hs256 { secret } => {
                    check_secret(&format!("the secret of tenant {tenant_id}"), secret)?;
                    Verifier {
                        algorithm: Algorithm::HS256,
                        key: DecodingKey::from_secret(secret.as_bytes()),
                    }
                }
                TenantVerifier::Rs256 { public_key_pem } => pem_verifier(
                    tenant_id,
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem,
                    public_key_pem,
                )?,
                TenantVerifier::Es256 { public_key_pem } => pem_verifier(
                    tenant_id,
                    Algorithm::ES256,
                    DecodingKey::from_ec_pem,
                    public_key_pem,
                )?,
                TenantVerifier::EdDsa { public_key_pem } => pem_verifier(
                    tenant_id,
                    Algorithm::EdDSA,
                    DecodingKey::from_ed_pem,
                    public_key_pem,
                )?,
            };
            if tenants.insert(tenant_id.clone(), verifier).is_some() {
                return Err(Error::InvalidConfig(format!(
                    "tenant {tenant_id} is configured twice"
                )));
            }
        }
        Ok(Authenticator {
            development,
            tenants,
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
        })
    }

    /// Verifies a token at time `now` and returns who it speaks for.
    ///
    /// # Errors
    /// The [`AuthError`] that describes the first problem found.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Identity, AuthError> {
        self.verify_with_roles(token, now)
            .map(|(identity, _)| identity)
    }

    /// [`Self::verify`], with the roles the token grants (its `roles` claim).
    ///
    /// # Errors
    /// The [`AuthError`] that describes the first problem found; a `roles` claim that is not an
    /// array of strings is [`AuthError::InvalidClaims`].
    pub fn verify_with_roles(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<(Identity, Roles), AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let header = decode_json_part(header)?;
        let algorithm_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(AuthError::Malformed)?;
        if algorithm_name.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        // The tenant decides which key verifies the token, so it is read before verification;
        // nothing else from the unverified payload is trusted.
        let unverified = decode_json_part(payload)?;
        let tenant_id = claim_id::<TenantId>(&unverified, "tenant")?;
        let verifier = if self.tenants.is_empty() {
            &self.development
        } else {
            self.tenants
                .get(&tenant_id)
                .ok_or(AuthError::UnknownTenant)?
        };
        let mut validation = Validation::new(verifier.algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
        }
        let claims = jsonwebtoken::decode::<Value>(token, &verifier.key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm
                | ErrorKind::UnsupportedAlgorithm => AuthError::AlgorithmNotAllowed,
                ErrorKind::InvalidAudience => AuthError::BadAudience,
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => AuthError::Malformed,
                ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                    AuthError::InvalidClaims(format!("{claim} is malformed"))
                }
                _ => AuthError::BadSignature,
            })?
            .claims;
        self.check_times(&claims, now)?;
        let user_id = claim_id::<UserId>(&claims, "sub")?;
        let roles = Roles::from_claims(&claims)?;
        Ok((Identity { tenant_id, user_id }, roles))
    }

    fn check_times(&self, claims: &Value, now: Timestamp) -> Result<(), AuthError> {
        let now_secs = now.as_secs();
        let expires_at = numeric_date(claims, "exp")?
            .ok_or_else(|| AuthError::InvalidClaims("exp is required".to_owned()))?;
        if now_secs >= expires_at.saturating_add(self.leeway_secs) {
            return Err(AuthError::Expired);
        }
        if let Some(not_before) = numeric_date(claims, "nbf")?
            && now_secs.saturating_add(self.leeway_secs) < not_before
        {
            return Err(AuthError::NotYetValid);
        }
        if let Some(issued_at) = numeric_date(claims, "iat")?
            && now_secs.saturating_add(self.leeway_secs) < issued_at
        {
            return Err(AuthError::NotYetValid);
        }
        Ok(())
    }
}

fn decode_json_part(part: &str) -> Result<Value, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)?;
    if !value.is_object() {
        return Err(AuthError::Malformed);
    }
    Ok(value)
}

fn claim_id<T: std::str::FromStr>(claims: &Value, name: &str) -> Result<T, AuthError> {
    let text = claims.get(name).and_then(Value::as_str).ok_or_else(|| {
        AuthError::InvalidClaims(format!("{name} is required and must be a string"))
    })?;
    text.parse::<T>()
        .map_err(|_| AuthError::InvalidClaims(format!("{name} is not a valid id")))
}

/// Reads a NumericDate claim (seconds since the epoch, possibly fractional).
fn numeric_date(claims: &Value, name: &str) -> Result<Option<u64>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(seconds) = number.as_u64() {
                Ok(Some(seconds))
            } else if let Some(seconds) = number.as_f64().filter(|seconds| *seconds >= 0.0) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Ok(Some(seconds as u64))
            } else {
                Err(AuthError::InvalidClaims(format!(
                    "{name} must be a non-negative number"
                )))
            }
        }
        Some(_) => Err(AuthError::InvalidClaims(format!("{name} must be a number"))),
    }
}

/// Mints an HS256 token with `secret`, valid from `now` for `ttl_secs` (for the `token` command
/// and for tests).
///
/// # Errors
/// [`Error::InvalidConfig`] if signing fails (it does not, for HS256 and a non-empty secret).
pub fn mint_hs256(
    secret: &str,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: Timestamp,
    ttl_secs: u64,
) -> Result<String> {
    mint_hs256_with_roles(secret, tenant_id, user_id, now, ttl_secs, &[])
}

/// [`mint_hs256`], with a `roles` claim when `roles` is not empty.
///
/// # Errors
/// As [`mint_hs256`].
pub fn mint_hs256_with_roles(
    secret: &str,
    tenant_id: &TenantId,
    user_id: &UserId,
    now: Timestamp,
    ttl_secs: u64,
    roles: &[&str],
) -> Result<String> {
    let mut claims = serde_json::json!({
        "sub": user_id.as_str(),
        "tenant": tenant_id.as_str(),
        "iat": now.as_secs(),
        "exp": now.as_secs().saturating_add(ttl_secs),
    });
    if !roles.is_empty() {
        claims["roles"] = serde_json::json!(roles);
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|error| Error::InvalidConfig(format!("could not sign a token: {error}")))
}

#[cfg(test)]
mod tests;
