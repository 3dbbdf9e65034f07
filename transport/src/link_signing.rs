//! Signed media links: URLs that let a browser's `<img>` or `<video>`, or a media player, read
//! one media item without a bearer token, until they expire.
//!
//! A link names the tenant, the media, its expiry (Unix seconds) and the key that signed it;
//! its signature is HMAC-SHA256 over `v1`, the tenant, the media id and the expiry, so changing
//! any of them (another tenant's id, a later expiry) breaks it. Keys rotate like TURN's: the
//! current secret signs, the retired ones still verify what they signed until those links
//! expire; each key is named by the first 8 hex digits of its secret's SHA-256, never by the
//! secret. A tenant may have a ring of its own (`[[media.tenants]] link_secret`): its links
//! are then signed and verified with that ring only, so the deployment's secret cannot forge
//! them, and its secret cannot forge another tenant's. Verification compares in constant time
//! (`ring::hmac::verify`).

use std::collections::HashMap;

use base64::Engine as _;
use ring::{digest, hmac};
use switchboard_engine::ids::{MediaId, TenantId};

/// A link's query parameters, as they travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    /// The tenant whose media it is.
    pub tenant_id: TenantId,
    /// When it stops working, in Unix seconds.
    pub expires: u64,
    /// The key that signed it.
    pub key: String,
    /// The signature, base64url without padding.
    pub signature: String,
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    /// Its expiry has passed.
    #[error("the link has expired")]
    Expired,
    /// Its key is unknown, or its signature does not verify (it was changed).
    #[error("the link's signature does not verify")]
    BadSignature,
}

struct LinkKey {
    id: String,
    key: hmac::Key,
}

impl LinkKey {
    fn new(secret: &str) -> Self {
        let digest = digest::digest(&digest::SHA256, secret.as_bytes());
        let id = digest.as_ref()[..4]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }
}

/// A current secret and the retired ones.
struct LinkKeyRing {
    current: LinkKey,
    retired: Vec<LinkKey>,
}

impl LinkKeyRing {
    fn new(current: &str, retired: &[String]) -> Self {
        Self {
            current: LinkKey::new(current),
            retired: retired.iter().map(|secret| LinkKey::new(secret)).collect(),
        }
    }

    fn find(&self, id: &str) -> Option<&LinkKey> {
        std::iter::once(&self.current)
            .chain(&self.retired)
            .find(|key| key.id == id)
    }
}

/// Signs and verifies media links.
pub struct MediaLinkSigner {
    deployment: LinkKeyRing,
    tenants: HashMap<TenantId, LinkKeyRing>,
    /// A new link's lifetime when the caller names none, in seconds.
    pub default_ttl_secs: u64,
    /// The longest lifetime a caller may ask for, in seconds.
    pub max_ttl_secs: u64,
}

fn signed_text(tenant_id: &TenantId, media_id: MediaId, expires: u64) -> String {
    format!("v1\n{tenant_id}\n{media_id}\n{expires}")
}

impl MediaLinkSigner {
    /// A signer with the `current` secret, also accepting links the `retired` ones signed,
    /// making links that last `default_ttl_secs` unless asked for up to `max_ttl_secs`.
    pub fn new(
        current: &str,
        retired: &[String],
        default_ttl_secs: u64,
        max_ttl_secs: u64,
    ) -> Self {
        Self {
            deployment: LinkKeyRing::new(current, retired),
            tenants: HashMap::new(),
            default_ttl_secs,
            max_ttl_secs,
        }
    }

    /// Gives `tenant_id` a ring of its own: `current` signs its links, and they verify with
    /// `current` and `retired` only.
    #[must_use]
    pub fn with_tenant(mut self, tenant_id: TenantId, current: &str, retired: &[String]) -> Self {
        self.tenants
            .insert(tenant_id, LinkKeyRing::new(current, retired));
        self
    }

    fn ring_of(&self, tenant_id: &TenantId) -> &LinkKeyRing {
        self.tenants.get(tenant_id).unwrap_or(&self.deployment)
    }

    /// Signs a link to `media_id` of `tenant_id` that works until `expires` (Unix seconds).
    pub fn sign(&self, tenant_id: &TenantId, media_id: MediaId, expires: u64) -> SignedLink {
        let current = &self.ring_of(tenant_id).current;
        let tag = hmac::sign(
            &current.key,
            signed_text(tenant_id, media_id, expires).as_bytes(),
        );
        SignedLink {
            tenant_id: tenant_id.clone(),
            expires,
            key: current.id.clone(),
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()),
        }
    }

    /// Checks a link to `media_id` at `now_secs` (Unix seconds).
    ///
    /// # Errors
    /// [`LinkRefusal::Expired`] at or after its expiry; [`LinkRefusal::BadSignature`] if its key
    /// is unknown or its signature does not match.
    pub fn verify(
        &self,
        link: &SignedLink,
        media_id: MediaId,
        now_secs: u64,
    ) -> Result<(), LinkRefusal> {
        let key = self
            .ring_of(&link.tenant_id)
            .find(&link.key)
            .ok_or(LinkRefusal::BadSignature)?;
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&link.signature)
            .map_err(|_| LinkRefusal::BadSignature)?;
        hmac::verify(
            &key.key,
            signed_text(&link.tenant_id, media_id, link.expires).as_bytes(),
            &signature,
        )
        .map_err(|_| LinkRefusal::BadSignature)?;
        if now_secs >= link.expires {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).expect("valid")
    }

    #[test]
    fn a_link_works_until_it_expires_and_not_once_changed() {
        let signer = MediaLinkSigner::new("current-secret", &[], 60, 600);
        let media_id = MediaId::from_parts(1, 1);
        let link = signer.sign(&tenant("acme"), media_id, 1_000);
        assert_eq!(signer.verify(&link, media_id, 999), Ok(()));
        assert_eq!(
            signer.verify(&link, media_id, 1_000),
            Err(LinkRefusal::Expired)
        );
        let changes = [
            SignedLink {
                tenant_id: tenant("other"),
                ..link.clone()
            },
            SignedLink {
                expires: 2_000,
                ..link.clone()
            },
            SignedLink {
                key: "00000000".to_owned(),
                ..link.clone()
            },
            SignedLink {
                signature: "AAAA".to_owned(),
                ..link.clone()
            },
        ];
        for changed in changes {
            assert_eq!(
                signer.verify(&changed, media_id, 999),
                Err(LinkRefusal::BadSignature),
                "{changed:?}"
            );
        }
        assert_eq!(
            signer.verify(&link, MediaId::from_parts(1, 2), 999),
            Err(LinkRefusal::BadSignature),
            "another media id"
        );
    }

    #[test]
    fn retired_secrets_still_verify_and_the_current_one_signs() {
        let old = MediaLinkSigner::new("old-secret", &[], 60, 600);
        let media_id = MediaId::from_parts(1, 1);
        let old_link = old.sign(&tenant("acme"), media_id, 1_000);
        let rotated = MediaLinkSigner::new("new-secret", &["old-secret".to_owned()], 60, 600);
        assert_eq!(rotated.verify(&old_link, media_id, 10), Ok(()));
        let new_link = rotated.sign(&tenant("acme"), media_id, 1_000);
        assert_ne!(new_link.key, old_link.key);
        assert_eq!(
            old.verify(&new_link, media_id, 10),
            Err(LinkRefusal::BadSignature)
        );
    }

    #[test]
    fn a_tenant_with_its_own_secret_is_signed_and_verified_by_its_ring_only() {
        let media_id = MediaId::from_parts(1, 1);
        let signer = MediaLinkSigner::new("deployment-secret", &[], 60, 600).with_tenant(
            tenant("acme"),
            "acme-secret",
            &["acme-old-secret".to_owned()],
        );
        let acme_link = signer.sign(&tenant("acme"), media_id, 1_000);
        assert_eq!(signer.verify(&acme_link, media_id, 10), Ok(()));
        let other_link = signer.sign(&tenant("other"), media_id, 1_000);
        assert_eq!(signer.verify(&other_link, media_id, 10), Ok(()));
        assert_ne!(acme_link.key, other_link.key);
        // The deployment's secret cannot forge acme's links...
        let deployment_only = MediaLinkSigner::new("deployment-secret", &[], 60, 600);
        let forged = deployment_only.sign(&tenant("acme"), media_id, 1_000);
        assert_eq!(
            signer.verify(&forged, media_id, 10),
            Err(LinkRefusal::BadSignature)
        );
        // ...nor acme's another tenant's, and acme's retired secret still verifies.
        let acme_only = MediaLinkSigner::new("acme-secret", &[], 60, 600);
        let forged = acme_only.sign(&tenant("other"), media_id, 1_000);
        assert_eq!(
            signer.verify(&forged, media_id, 10),
            Err(LinkRefusal::BadSignature)
        );
        let old = MediaLinkSigner::new("acme-old-secret", &[], 60, 600);
        assert_eq!(
            signer.verify(&old.sign(&tenant("acme"), media_id, 1_000), media_id, 10),
            Ok(())
        );
    }
}
