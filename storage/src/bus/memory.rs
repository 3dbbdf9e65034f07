//! The in-memory [`ClusterBus`]: several "nodes" in one process share a [`MemoryClusterHub`].
//!
//! It is the bus of tests that run two engine nodes in one process without Redis, and the
//! reference the Redis bus is checked against: the same conformance suite
//! (`tests/cluster_bus.rs`) runs on both. Publishing calls the other nodes' listeners directly,
//! which only hand the notice to an actor's mailbox, so nothing here blocks; there is no
//! connection to lose, so `reconnected` is never called and `ready` always answers yes.

use std::sync::Arc;

use switchboard_engine::ids::{ConversationId, TenantId, UserId};
use switchboard_engine::ports::{
    ClusterBus, ClusterListener, ClusterNotice, ClusterSubscription, PresenceListener,
};

use super::registry::Registry;

/// A listener, with the node that registered it (a node never hears its own notices).
struct Registration<L: ?Sized> {
    node_id: String,
    listener: Arc<L>,
}

/// What the nodes of one in-process deployment share.
pub struct MemoryClusterHub {
    listeners: Arc<Registry<(TenantId, ConversationId), Registration<dyn ClusterListener>>>,
    presence_listeners: Arc<Registry<(), Registration<dyn PresenceListener>>>,
}

impl MemoryClusterHub {
    /// A hub with no nodes yet.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryClusterHub {
            listeners: Registry::new(),
            presence_listeners: Registry::new(),
        })
    }

    /// The bus of one node of this deployment.
    pub fn node(self: &Arc<Self>, node_id: impl Into<String>) -> MemoryClusterBus {
        MemoryClusterBus {
            hub: Arc::clone(self),
            node_id: node_id.into(),
        }
    }
}

/// One node's view of a [`MemoryClusterHub`].
pub struct MemoryClusterBus {
    hub: Arc<MemoryClusterHub>,
    node_id: String,
}

impl MemoryClusterBus {
    /// The listener of a registration made by another node.
    fn of_other_node<L: ?Sized>(&self, registration: &Registration<L>) -> Option<Arc<L>> {
        (registration.node_id != self.node_id).then(|| Arc::clone(&registration.listener))
    }
}

impl ClusterBus for MemoryClusterBus {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn publish(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        notice: ClusterNotice,
    ) {
        // Listeners are called outside the lock, so one that publishes in turn cannot deadlock.
        let receivers = self
            .hub
            .listeners
            .pick(&(tenant_id.clone(), conversation_id), |registration| {
                self.of_other_node(registration)
            });
        for listener in receivers {
            listener.notice(notice.clone());
        }
    }

    fn subscribe(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        listener: Arc<dyn ClusterListener>,
    ) -> ClusterSubscription {
        self.hub.listeners.register(
            (tenant_id.clone(), conversation_id),
            Registration {
                node_id: self.node_id.clone(),
                listener,
            },
        )
    }

    fn publish_presence(&self, tenant_id: &TenantId, user_id: &UserId) {
        let receivers = self
            .hub
            .presence_listeners
            .pick(&(), |registration| self.of_other_node(registration));
        for listener in receivers {
            listener.presence_changed(tenant_id, user_id);
        }
    }

    fn subscribe_presence(&self, listener: Arc<dyn PresenceListener>) -> ClusterSubscription {
        self.hub.presence_listeners.register(
            (),
            Registration {
                node_id: self.node_id.clone(),
                listener,
            },
        )
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}
