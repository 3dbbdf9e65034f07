//! The in-memory [`ClusterBus`]: several "nodes" in one process share a [`MemoryClusterHub`].
//!
//! It is the bus of tests that run two engine nodes in one process without Redis, and the
//! reference the Redis bus is checked against: the same conformance suite
//! (`tests/cluster_bus.rs`) runs on both. Publishing calls the other nodes' listeners directly,
//! which only hand the notice to an actor's mailbox, so nothing here blocks; there is no
//! connection to lose, so `reconnected` is never called and `ready` always answers yes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use switchboard_engine::ids::{ConversationId, TenantId, UserId};
use switchboard_engine::ports::{
    ClusterBus, ClusterListener, ClusterNotice, ClusterSubscription, PresenceListener,
};

type Listeners = HashMap<(TenantId, ConversationId), Vec<Registration>>;
/// Presence listeners: registration id, node id, listener.
type PresenceListeners = Vec<(u64, String, Arc<dyn PresenceListener>)>;

struct Registration {
    id: u64,
    node_id: String,
    listener: Arc<dyn ClusterListener>,
}

/// What the nodes of one in-process deployment share.
#[derive(Default)]
pub struct MemoryClusterHub {
    listeners: Mutex<Listeners>,
    presence_listeners: Mutex<PresenceListeners>,
    next_id: AtomicU64,
}

impl MemoryClusterHub {
    /// A hub with no nodes yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The bus of one node of this deployment.
    pub fn node(self: &Arc<Self>, node_id: impl Into<String>) -> MemoryClusterBus {
        MemoryClusterBus {
            hub: Arc::clone(self),
            node_id: node_id.into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Listeners> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One node's view of a [`MemoryClusterHub`].
pub struct MemoryClusterBus {
    hub: Arc<MemoryClusterHub>,
    node_id: String,
}

/// Removes a registration when dropped.
struct Unsubscribe {
    hub: Weak<MemoryClusterHub>,
    key: (TenantId, ConversationId),
    id: u64,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut listeners = hub.lock();
            if let Some(registrations) = listeners.get_mut(&self.key) {
                registrations.retain(|registration| registration.id != self.id);
                if registrations.is_empty() {
                    listeners.remove(&self.key);
                }
            }
        }
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
        let receivers: Vec<Arc<dyn ClusterListener>> = self
            .hub
            .lock()
            .get(&(tenant_id.clone(), conversation_id))
            .map(|registrations| {
                registrations
                    .iter()
                    .filter(|registration| registration.node_id != self.node_id)
                    .map(|registration| Arc::clone(&registration.listener))
                    .collect()
            })
            .unwrap_or_default();
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
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let key = (tenant_id.clone(), conversation_id);
        self.hub
            .lock()
            .entry(key.clone())
            .or_default()
            .push(Registration {
                id,
                node_id: self.node_id.clone(),
                listener,
            });
        ClusterSubscription::new(Unsubscribe {
            hub: Arc::downgrade(&self.hub),
            key,
            id,
        })
    }

    fn publish_presence(&self, tenant_id: &TenantId, user_id: &UserId) {
        let receivers: Vec<Arc<dyn PresenceListener>> = self
            .hub
            .presence_listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, node_id, _)| *node_id != self.node_id)
            .map(|(_, _, listener)| Arc::clone(listener))
            .collect();
        for listener in receivers {
            listener.presence_changed(tenant_id, user_id);
        }
    }

    fn subscribe_presence(&self, listener: Arc<dyn PresenceListener>) -> ClusterSubscription {
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        self.hub
            .presence_listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, self.node_id.clone(), listener));
        ClusterSubscription::new(UnsubscribePresence {
            hub: Arc::downgrade(&self.hub),
            id,
        })
    }

    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Removes a presence registration when dropped.
struct UnsubscribePresence {
    hub: Weak<MemoryClusterHub>,
    id: u64,
}

impl Drop for UnsubscribePresence {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.presence_listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|(id, _, _)| *id != self.id);
        }
    }
}
