//! The in-memory [`PresenceDirectory`]: what every "node" of an in-process deployment reported,
//! in one map. Every node holding the directory is live (there is nothing to expire), which is
//! what tests of several nodes in one process need; it is also the reference the Redis
//! directory is checked against (`tests/presence_directory.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::event::{PresenceEntry, PresenceStatus};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::ports::{NodePresence, PresenceDirectory};
use switchboard_engine::time::Timestamp;

#[derive(Default)]
struct UserRecord {
    by_node: HashMap<String, NodePresence>,
    last_seen: Option<Timestamp>,
}

type Records = HashMap<(TenantId, UserId), UserRecord>;

/// The directory shared by the nodes of one in-process deployment.
#[derive(Default)]
pub struct MemoryPresenceHub {
    records: Mutex<Records>,
}

impl MemoryPresenceHub {
    /// An empty directory.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The directory as node `node_id` reports to it.
    pub fn node(self: &Arc<Self>, node_id: impl Into<String>) -> MemoryPresenceDirectory {
        MemoryPresenceDirectory {
            hub: Arc::clone(self),
            node_id: node_id.into(),
        }
    }
}

/// One node's handle on a [`MemoryPresenceHub`].
pub struct MemoryPresenceDirectory {
    hub: Arc<MemoryPresenceHub>,
    node_id: String,
}

/// A user's presence from what each node reported, by the port's rules.
pub(crate) fn aggregate<'node>(
    user_id: &UserId,
    reports: impl Iterator<Item = &'node NodePresence>,
    last_seen: Option<Timestamp>,
) -> PresenceEntry {
    let mut status = PresenceStatus::Offline;
    let mut last_seen = last_seen;
    for report in reports {
        match report {
            NodePresence::Online => status = PresenceStatus::Online,
            NodePresence::Away if status != PresenceStatus::Online => {
                status = PresenceStatus::Away;
            }
            NodePresence::Away => {}
            NodePresence::Gone { last_seen: seen } => {
                last_seen = Some(last_seen.map_or(*seen, |known| known.max(*seen)));
            }
        }
    }
    PresenceEntry {
        user_id: user_id.clone(),
        status,
        last_seen: (status == PresenceStatus::Offline)
            .then_some(last_seen)
            .flatten(),
    }
}

#[async_trait]
impl PresenceDirectory for MemoryPresenceDirectory {
    async fn report(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        presence: NodePresence,
    ) -> Result<(), StoreError> {
        // Plain maps: any state a panic could leave is still valid.
        let mut records = self
            .hub
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let record = records
            .entry((tenant_id.clone(), user_id.clone()))
            .or_default();
        if let NodePresence::Gone { last_seen } = presence {
            record.by_node.remove(&self.node_id);
            record.last_seen = Some(
                record
                    .last_seen
                    .map_or(last_seen, |known| known.max(last_seen)),
            );
        } else {
            record.by_node.insert(self.node_id.clone(), presence);
        }
        Ok(())
    }

    async fn lookup(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<PresenceEntry, StoreError> {
        let records = self
            .hub
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(match records.get(&(tenant_id.clone(), user_id.clone())) {
            Some(record) => aggregate(user_id, record.by_node.values(), record.last_seen),
            None => aggregate(user_id, std::iter::empty(), None),
        })
    }
}
