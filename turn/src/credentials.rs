//! TURN REST API credentials (draft-uberti-behave-turn-rest-00, coturn's `use-auth-secret`):
//! pure functions of a secret, a user and the time.
//!
//! `username = "<expiry unix seconds>:<opaque user id>"` and
//! `password = base64(HMAC-SHA1(secret, username))`. A TURN server that shares the secret
//! recomputes the password from the username and refuses the credential once the expiry has
//! passed, so nothing has to be stored or synchronised between Switchboard and the TURN servers.
//! Secrets rotate through a [`SecretRing`]: the current secret signs, earlier ones are still
//! accepted by [`SecretRing::verify`] until the time each was retired for.
//!
//! # The username Switchboard mints
//!
//! [`SecretRing::mint`] writes exactly four fields joined by `:` ([`SwitchboardUsername`]):
//!
//! ```text
//! <expiry>:<tenant>:<user>:<key id>
//! ```
//!
//! - `<expiry>` is the Unix time in seconds, in ASCII digits, from which the credential is
//!   refused. coturn reads only this field, everything before the first `:`.
//! - `<tenant>` and `<user>` are the tenant and user ids, each percent-encoded by
//!   [`encode_username_component`]: `%` is written `%25` and `:` is written `%3A`, every other
//!   character stands for itself. Ids may contain `:` (`@alice:example.org`) but never `%`, so in
//!   practice only `:` changes and an id without `:` appears as it is. An encoded field never
//!   contains `:`, and the encoding is injective, so tenant `acme:alice` with user `x`
//!   (`acme%3Aalice:x`) and tenant `acme` with user `alice:x` (`acme:alice%3Ax`) get different
//!   usernames, and so different passwords.
//! - `<key id>` is `k` and 8 lowercase hex digits, the [key id](key_id) of the secret that
//!   signed. A TURN server's authentication step gets the username and must answer with one
//!   key: the embedded relay finds the secret by this id, which is how rotation keeps working
//!   for credentials already handed out.
//!
//! A username therefore splits at its three `:` into exactly one (expiry, tenant, user, key id);
//! [`SwitchboardUsername::parse`] reads it that way and refuses anything else (another number of
//! fields, an encoding other than the one above, an id the engine would not accept). An encoded
//! id is at most three times as long as the id, so ids made mostly of `:` can make a username
//! longer than the 509 bytes STUN allows in USERNAME; such credentials are refused by TURN
//! servers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use switchboard_engine::ids::{TenantId, UserId};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The username is not `<expiry>:<tenant>:<user>:<key id>` (see the
    /// [module docs](self#the-username-switchboard-mints)).
    #[error("the username is not <expiry>:<tenant>:<user>:<key id>")]
    Malformed,
    /// The expiry has passed.
    #[error("the credential has expired")]
    Expired,
    /// No accepted secret has the username's key id: a retired secret past its time, or a
    /// credential these secrets never signed.
    #[error("no accepted secret has the username's key id")]
    UnknownKey,
    /// The secret the username names does not produce this password.
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

/// Percent-encodes one field of a [`SwitchboardUsername`]: `%` becomes `%25` and `:` becomes
/// `%3A`, every other character stands for itself. The result never contains `:`, and
/// [`decode_username_component`] gives the input back.
pub fn encode_username_component(component: &str) -> String {
    let mut encoded = String::with_capacity(component.len());
    for character in component.chars() {
        match character {
            '%' => encoded.push_str("%25"),
            ':' => encoded.push_str("%3A"),
            other => encoded.push(other),
        }
    }
    encoded
}

/// The field [`encode_username_component`] encoded as `encoded`, or `None` when `encoded` is not
/// something it writes: it contains `:`, or a `%` that does not start `%25` or `%3A` (only
/// these two upper-case spellings are written, so every field has one spelling).
pub fn decode_username_component(encoded: &str) -> Option<String> {
    let mut decoded = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(position) = rest.find(['%', ':']) {
        decoded.push_str(&rest[..position]);
        let escape = rest[position..].get(..3)?;
        decoded.push(match escape {
            "%25" => '%',
            "%3A" => ':',
            _ => return None,
        });
        rest = &rest[position + 3..];
    }
    decoded.push_str(rest);
    Some(decoded)
}

/// The fields of a username Switchboard mints, `<expiry>:<tenant>:<user>:<key id>` with tenant
/// and user percent-encoded (see the [module docs](self#the-username-switchboard-mints)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchboardUsername {
    /// Unix seconds from which the credential is refused.
    pub expiry_secs: u64,
    /// Whose tenant.
    pub tenant_id: TenantId,
    /// Which user of the tenant.
    pub user_id: UserId,
    /// The [key id](key_id) of the secret that signed.
    pub key_id: String,
}

impl SwitchboardUsername {
    /// Reads a username: exactly four `:`-separated fields, the expiry in ASCII digits, tenant
    /// and user ids as [`encode_username_component`] writes them and as the engine accepts
    /// them, and a key id of `k` and 8 lowercase hex digits.
    ///
    /// # Errors
    /// [`CredentialError::Malformed`] for anything else.
    pub fn parse(username: &str) -> Result<Self, CredentialError> {
        let mut fields = username.split(':');
        let (Some(expiry), Some(tenant), Some(user), Some(key_id), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(CredentialError::Malformed);
        };
        let is_expiry = !expiry.is_empty() && expiry.bytes().all(|byte| byte.is_ascii_digit());
        let is_key_id = key_id.len() == 9
            && key_id.starts_with('k')
            && key_id[1..]
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !is_expiry || !is_key_id {
            return Err(CredentialError::Malformed);
        }
        let expiry_secs = expiry.parse().map_err(|_| CredentialError::Malformed)?;
        let tenant_id = decode_username_component(tenant)
            .and_then(|tenant| TenantId::parse(&tenant).ok())
            .ok_or(CredentialError::Malformed)?;
        let user_id = decode_username_component(user)
            .and_then(|user| UserId::parse(&user).ok())
            .ok_or(CredentialError::Malformed)?;
        Ok(SwitchboardUsername {
            expiry_secs,
            tenant_id,
            user_id,
            key_id: key_id.to_owned(),
        })
    }
}

/// The opaque user id after the expiry: `<tenant>:<user>:<key id>`, tenant and user
/// percent-encoded.
fn opaque_user_id(tenant_id: &TenantId, user_id: &UserId, key_id: &str) -> String {
    format!(
        "{}:{}:{key_id}",
        encode_username_component(tenant_id.as_str()),
        encode_username_component(user_id.as_str()),
    )
}

impl std::fmt::Display for SwitchboardUsername {
    /// Writes the username, `<expiry>:<tenant>:<user>:<key id>`.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opaque = opaque_user_id(&self.tenant_id, &self.user_id, &self.key_id);
        write!(formatter, "{}:{opaque}", self.expiry_secs)
    }
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

    /// Mints a credential for `user_id` of `tenant_id` with the current secret: the username is
    /// a [`SwitchboardUsername`], `<expiry>:<tenant>:<user>:<key id>`.
    pub fn mint(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: Timestamp,
        ttl_secs: u64,
    ) -> TurnCredential {
        let opaque = opaque_user_id(tenant_id, user_id, &key_id(&self.current));
        mint(&self.current, &opaque, now, ttl_secs)
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

    /// The secret accepted at `now` whose key id is `id`, if there is one.
    pub fn secret_named(&self, id: &str, now: Timestamp) -> Option<&[u8]> {
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
    /// [`CredentialError::Malformed`] when the username is not a [`SwitchboardUsername`],
    /// [`CredentialError::Expired`] when its expiry has passed, and
    /// [`CredentialError::UnknownKey`] when no accepted secret carries its key id (a retired
    /// secret past its time, or a credential this ring never signed).
    pub fn password_key(&self, username: &str, now: Timestamp) -> Result<&[u8], CredentialError> {
        let username = unexpired(username, now)?;
        self.secret_named(&username.key_id, now)
            .ok_or(CredentialError::UnknownKey)
    }
}

/// `username` read as a [`SwitchboardUsername`], if its expiry is after `now`.
///
/// # Errors
/// [`CredentialError::Malformed`] or [`CredentialError::Expired`].
pub fn unexpired(username: &str, now: Timestamp) -> Result<SwitchboardUsername, CredentialError> {
    let username = SwitchboardUsername::parse(username)?;
    if now.as_secs() >= username.expiry_secs {
        return Err(CredentialError::Expired);
    }
    Ok(username)
}

#[cfg(test)]
mod tests;
