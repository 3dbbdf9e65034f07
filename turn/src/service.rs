//! The ICE server provider: per-tenant secrets and server lists, turned into credentials.
//!
//! Implements the engine's [`IceServerProvider`] port. Each tenant may have its own
//! [`SecretRing`] and TURN/STUN server lists; tenants without their own use the default realm.
//! The opaque user id inside the TURN username is `<tenant>:<user>`, so a TURN server's logs
//! (and its per-user quotas) keep tenants apart.

use foldhash::HashMap;
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{IceServerProvider, IceServers};
use switchboard_engine::time::Timestamp;

use crate::credentials::{MAX_TTL_SECS, SecretRing};

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
        }
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
        let credential = realm
            .secrets
            .mint(&format!("{tenant_id}:{user_id}"), now, ttl_secs);
        IceServers {
            username: credential.username,
            password: credential.password,
            ttl_secs: credential.ttl_secs,
            expires_at: credential.expires_at,
            turn_uris: realm.turn_uris.clone(),
            stun_uris: realm.stun_uris.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
