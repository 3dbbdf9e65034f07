//! The ICE server provider: per-tenant secrets and server lists, turned into credentials.
//!
//! Implements the engine's [`IceServerProvider`] port. Each tenant may have its own
//! [`SecretRing`] and TURN/STUN server lists; tenants without their own use the default realm.
//! The TURN username names tenant and user, each percent-encoded so that a `:` inside an id
//! cannot move the boundary between them
//! ([`SwitchboardUsername`](crate::credentials::SwitchboardUsername)), so a TURN server's logs
//! (and its per-user quotas) keep tenants apart.

use std::sync::Arc;

use foldhash::HashMap;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{IceServerProvider, IceServers};
use switchboard_engine::time::Timestamp;

use crate::credentials::{CredentialError, MAX_TTL_SECS, SecretRing, unexpired};
use crate::health::HealthBoard;

/// The secrets and servers of one tenant (or of every tenant without its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnRealm {
    /// Signs and verifies credentials.
    pub secrets: SecretRing,
    /// TURN servers (`turn:host:port?transport=udp`, `…tcp`, `turns:host:port?transport=tcp`).
    pub turn_uris: Vec<String>,
    /// STUN servers.
    pub stun_uris: Vec<String>,
}

/// Credentials for every tenant.
#[derive(Debug, Clone)]
pub struct TurnService {
    default_realm: TurnRealm,
    tenant_realms: HashMap<TenantId, TurnRealm>,
    default_ttl_secs: u64,
    max_ttl_secs: u64,
    health: Option<Arc<HealthBoard>>,
}

impl TurnService {
    /// A service with a default realm, per-tenant realms, and lifetimes (the maximum is capped
    /// at 24 hours).
    pub fn new(
        default_realm: TurnRealm,
        tenant_realms: impl IntoIterator<Item = (TenantId, TurnRealm)>,
        default_ttl_secs: u64,
        max_ttl_secs: u64,
    ) -> Self {
        let tenant_realms: HashMap<TenantId, TurnRealm> = tenant_realms.into_iter().collect();
        let max_ttl_secs = max_ttl_secs.clamp(1, MAX_TTL_SECS);
        TurnService {
            default_realm,
            tenant_realms,
            default_ttl_secs: default_ttl_secs.clamp(1, max_ttl_secs),
            max_ttl_secs,
            health: None,
        }
    }

    /// Orders every server list by the health on `board` (see [`HealthBoard::order`]).
    #[must_use]
    pub fn with_health(mut self, board: Arc<HealthBoard>) -> Self {
        self.health = Some(board);
        self
    }

    /// Every TURN and STUN URI of every realm, once each (what the health checker probes).
    pub fn all_uris(&self) -> Vec<String> {
        let mut uris: Vec<String> = Vec::new();
        for realm in std::iter::once(&self.default_realm).chain(self.tenant_realms.values()) {
            for uri in realm.turn_uris.iter().chain(&realm.stun_uris) {
                if !uris.contains(uri) {
                    uris.push(uri.clone());
                }
            }
        }
        uris
    }

    fn ordered(&self, uris: &[String]) -> Vec<String> {
        match &self.health {
            Some(board) => board.order(uris),
            None => uris.to_vec(),
        }
    }

    /// Puts `uri` (the embedded relay's) first in every realm's TURN servers.
    #[must_use]
    pub fn with_relay_uri(mut self, uri: &str) -> Self {
        for realm in std::iter::once(&mut self.default_realm).chain(self.tenant_realms.values_mut())
        {
            realm.turn_uris.retain(|existing| existing != uri);
            realm.turn_uris.insert(0, uri.to_owned());
        }
        self
    }

    /// The secret a TURN server sharing every realm's secrets derives `username`'s password
    /// from at `now` (the embedded relay's authentication step): the username must be a
    /// [`SwitchboardUsername`](crate::credentials::SwitchboardUsername), its expiry must be in
    /// the future and its key id must name a secret some realm accepts at `now`.
    ///
    /// # Errors
    /// [`CredentialError::Malformed`], [`CredentialError::Expired`] or
    /// [`CredentialError::UnknownKey`], saying why the username is refused.
    pub fn password_key(&self, username: &str, now: Timestamp) -> Result<&[u8], CredentialError> {
        let username = unexpired(username, now)?;
        std::iter::once(&self.default_realm)
            .chain(self.tenant_realms.values())
            .find_map(|realm| realm.secrets.secret_named(&username.key_id, now))
            .ok_or(CredentialError::UnknownKey)
    }

    /// The realm of a tenant.
    pub fn realm(&self, tenant_id: &TenantId) -> &TurnRealm {
        self.tenant_realms
            .get(tenant_id)
            .unwrap_or(&self.default_realm)
    }
}

impl IceServerProvider for TurnService {
    fn ice_servers(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        now: Timestamp,
        ttl_secs: Option<u64>,
    ) -> IceServers {
        let realm = self.realm(tenant_id);
        let ttl_secs = ttl_secs
            .unwrap_or(self.default_ttl_secs)
            .clamp(1, self.max_ttl_secs);
        let credential = realm.secrets.mint(tenant_id, user_id, now, ttl_secs);
        IceServers {
            username: credential.username,
            password: credential.password,
            ttl_secs: credential.ttl_secs,
            expires_at: credential.expires_at,
            turn_uris: self.ordered(&realm.turn_uris),
            stun_uris: self.ordered(&realm.stun_uris),
        }
    }
}

#[cfg(test)]
mod tests;
