//! TURN REST API credentials (draft-uberti-behave-turn-rest-00, coturn's `use-auth-secret`):
//! pure functions of a secret, a user and the time.
//!
//! `username = "<expiry unix seconds>:<opaque user id>"` and
//! `password = base64(HMAC-SHA1(secret, username))`. A TURN server that shares the secret
//! recomputes the password from the username and refuses the credential once the expiry has
//! passed, so nothing has to be stored or synchronised between Switchboard and the TURN servers.
//! Secrets rotate through a [`SecretRing`]: the current secret signs, earlier ones are still
//! accepted by [`SecretRing::verify`] until the time each was retired for. A ring appends the
//! signing secret's [key id](key_id) to the opaque user id (`<expiry>:<user>:<key id>`), because
//! a TURN server's authentication step gets the username and must answer with one key: the
//! embedded relay finds the secret by that id. coturn reads only the expiry before the first
//! `:`, so the id costs it nothing.

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

/// A secret's public name: `k` and the first 8 hex digits of its SHA-256. It says which secret
/// signed a credential without saying anything usable about the secret.
pub fn key_id(secret: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut id = String::with_capacity(9);
    id.push('k');
    for byte in &digest.as_ref()[..4] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// The expiry (unix seconds) at the front of a REST API username.
///
/// # Errors
/// [`CredentialError::Malformed`] if the username is not `<unix seconds>:<user>`.
pub fn expiry_of(username: &str) -> Result<u64, CredentialError> {
    username
        .split_once(':')
        .and_then(|(expiry, user)| (!user.is_empty()).then_some(expiry))
        .and_then(|expiry| expiry.parse().ok())
        .ok_or(CredentialError::Malformed)
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

    /// Mints a credential with the current secret, its key id appended to `user`.
    pub fn mint(&self, user: &str, now: Timestamp, ttl_secs: u64) -> TurnCredential {
        let user = format!("{user}:{}", key_id(&self.current));
        mint(&self.current, &user, now, ttl_secs)
    }

    /// The secrets accepted at `now`: the current one and the retired ones not yet past their
    /// time.
    pub fn accepted_at(&self, now: Timestamp) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.as_slice()).chain(
            self.retired
                .iter()
                .filter(move |retired| now < retired.accepted_until)
                .map(|retired| retired.secret.as_slice()),
        )
    }

    /// The secret that signed `username`, if it is accepted at `now`: the one whose key id ends
    /// the username.
    pub fn signer_of(&self, username: &str, now: Timestamp) -> Option<&[u8]> {
        let (_, id) = username.rsplit_once(':')?;
        self.accepted_at(now).find(|secret| key_id(secret) == id)
    }

    /// Checks a credential as a TURN server sharing these secrets would (the embedded relay
    /// does): the expiry must be in the future, and the accepted secret named by the username's
    /// key id must produce the password. The comparison is constant-time.
    ///
    /// # Errors
    /// [`CredentialError`] saying why it is refused.
    pub fn verify(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<(), CredentialError> {
        let secret = self.password_key(username, now)?;
        let tag = BASE64
            .decode(password)
            .map_err(|_| CredentialError::BadPassword)?;
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
        hmac::verify(&key, username.as_bytes(), &tag).map_err(|_| CredentialError::BadPassword)
    }

    /// The secret a TURN server must derive `username`'s password from at `now`.
    ///
    /// # Errors
    /// [`CredentialError::Malformed`] or [`CredentialError::Expired`] for the username, and
    /// [`CredentialError::BadPassword`] when no accepted secret carries its key id (a retired
    /// secret past its time, or a credential this ring never signed).
    pub fn password_key(&self, username: &str, now: Timestamp) -> Result<&[u8], CredentialError> {
        if now.as_secs() >= expiry_of(username)? {
            return Err(CredentialError::Expired);
        }
        self.signer_of(username, now)
            .ok_or(CredentialError::BadPassword)
    }
}

#[cfg(test)]
mod tests;
