//! TURN REST API credentials (draft-uberti-behave-turn-rest-00, coturn's `use-auth-secret`):
//! pure functions of a secret, a user and the time.
//!
//! `username = "<expiry unix seconds>:<opaque user id>"` and
//! `password = base64(HMAC-SHA1(secret, username))`. A TURN server that shares the secret
//! recomputes the password from the username and refuses the credential once the expiry has
//! passed, so nothing has to be stored or synchronised between Switchboard and the TURN servers.
//! Secrets rotate through a [`SecretRing`]: the current secret signs, earlier ones are still
//! accepted by [`SecretRing::verify`] until the time each was retired for.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use switchboard_engine::time::Timestamp;

/// The longest lifetime a credential may be given: 24 hours.
pub const MAX_TTL_SECS: u64 = 24 * 60 * 60;

/// A minted TURN credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredential {
    /// `<expiry unix seconds>:<opaque user id>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// How long it is valid from now, in seconds.
    pub ttl_secs: u64,
    /// When it stops being valid.
    pub expires_at: Timestamp,
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username is not `<unix seconds>:<user>`.
    #[error("the username is not <expiry>:<user>")]
    Malformed,
    /// The expiry has passed.
    #[error("the credential has expired")]
    Expired,
    /// No accepted secret produces this password.
    #[error("the password does not match")]
    BadPassword,
}

/// The password for `username` under `secret`.
pub fn password_for(secret: &[u8], username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    BASE64.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// Mints a credential for `user` valid for `ttl_secs` (clamped to 1 s .. [`MAX_TTL_SECS`]) from
/// `now`.
pub fn mint(secret: &[u8], user: &str, now: Timestamp, ttl_secs: u64) -> TurnCredential {
    let ttl_secs = ttl_secs.clamp(1, MAX_TTL_SECS);
    let expiry_secs = now.as_secs() + ttl_secs;
    let username = format!("{expiry_secs}:{user}");
    TurnCredential {
        password: password_for(secret, &username),
        username,
        ttl_secs,
        expires_at: Timestamp(expiry_secs * 1000),
    }
}

/// A secret that was replaced, and until when credentials it signed are still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredSecret {
    /// The secret.
    pub secret: Vec<u8>,
    /// Credentials it signed are refused from then on.
    pub accepted_until: Timestamp,
}

/// The current secret, which signs, and the retired ones still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRing {
    /// Signs every new credential.
    pub current: Vec<u8>,
    /// Still accepted, each until its time.
    pub retired: Vec<RetiredSecret>,
}

impl SecretRing {
    /// A ring with one secret and nothing retired.
    pub fn new(current: Vec<u8>) -> Self {
        SecretRing {
            current,
            retired: Vec::new(),
        }
    }

    /// Mints a credential with the current secret.
    pub fn mint(&self, user: &str, now: Timestamp, ttl_secs: u64) -> TurnCredential {
        mint(&self.current, user, now, ttl_secs)
    }

    /// Checks a credential as a TURN server sharing these secrets would (the embedded relay
    /// does): the expiry must be in the future, and the current secret or a retired one still
    /// accepted at `now` must produce the password. The comparison is constant-time.
    ///
    /// # Errors
    /// [`CredentialError`] saying why it is refused.
    pub fn verify(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<(), CredentialError> {
        let expiry_secs: u64 = username
            .split_once(':')
            .and_then(|(expiry, user)| (!user.is_empty()).then_some(expiry))
            .and_then(|expiry| expiry.parse().ok())
            .ok_or(CredentialError::Malformed)?;
        if now.as_secs() >= expiry_secs {
            return Err(CredentialError::Expired);
        }
        let tag = BASE64
            .decode(password)
            .map_err(|_| CredentialError::BadPassword)?;
        let accepted = std::iter::once(self.current.as_slice()).chain(
            self.retired
                .iter()
                .filter(|retired| now < retired.accepted_until)
                .map(|retired| retired.secret.as_slice()),
        );
        for secret in accepted {
            let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
            if hmac::verify(&key, username.as_bytes(), &tag).is_ok() {
                return Ok(());
            }
        }
        Err(CredentialError::BadPassword)
    }
}

#[cfg(test)]
mod tests;
