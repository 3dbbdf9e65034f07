//! The listeners a node's actors registered with its bus, kept the same way by both buses.
//!
//! A [`Registry`] keeps values (listeners, with whatever a bus keeps beside them) under a key
//! (a conversation; `()` for presence listeners, which hear every tenant), each under an id of
//! its own. Registering returns the [`ClusterSubscription`] whose drop removes the entry, and
//! the key once it holds none; the subscription holds the registry weakly, so one that outlives
//! its bus does nothing. Readers copy what they need out ([`Registry::pick`],
//! `Registry::pick_all`) so that no listener is ever called under the lock: one that
//! publishes or subscribes in turn cannot deadlock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use switchboard_engine::ports::ClusterSubscription;

type Entries<K, V> = HashMap<K, Vec<(u64, V)>>;

/// Values under keys, each removed when the subscription its registration returned is dropped.
pub(crate) struct Registry<K, V> {
    entries: Mutex<Entries<K, V>>,
    next_id: AtomicU64,
}

impl<K: Eq + Hash, V> Registry<K, V> {
    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unregister(&self, key: &K, id: u64) {
        let mut entries = self.lock();
        if let Some(values) = entries.get_mut(key) {
            values.retain(|(value_id, _)| *value_id != id);
            if values.is_empty() {
                entries.remove(key);
            }
        }
    }
}

impl<K, V> Registry<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty registry.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Registry {
            entries: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Keeps `value` under `key` until the returned subscription is dropped.
    pub(crate) fn register(self: &Arc<Self>, key: K, value: V) -> ClusterSubscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(key.clone())
            .or_default()
            .push((id, value));
        ClusterSubscription::new(Unregister {
            registry: Arc::downgrade(self),
            key,
            id,
        })
    }

    /// What `pick` takes from each value under `key`, in registration order.
    pub(crate) fn pick<T>(&self, key: &K, pick: impl Fn(&V) -> Option<T>) -> Vec<T> {
        self.lock()
            .get(key)
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|(_, value)| pick(value))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What `pick` takes from every value, under any key (the Redis bus tells every listener
    /// when it reconnects).
    #[cfg(feature = "redis")]
    pub(crate) fn pick_all<T>(&self, pick: impl Fn(&V) -> Option<T>) -> Vec<T> {
        self.lock()
            .values()
            .flatten()
            .filter_map(|(_, value)| pick(value))
            .collect()
    }
}

/// Removes one registration when dropped.
struct Unregister<K: Eq + Hash, V> {
    registry: Weak<Registry<K, V>>,
    key: K,
    id: u64,
}

impl<K: Eq + Hash, V> Drop for Unregister<K, V> {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.unregister(&self.key, self.id);
        }
    }
}
