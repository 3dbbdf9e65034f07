//! Presence: whether each user of a tenant is online, away or offline, and which sessions are
//! watching whom.
//!
//! A user is online while any of their sessions is open, unless they said they are away;
//! offline once the last one closes, with `last_seen` set to that moment. Sessions tell the
//! registry when they open and close; watchers are sessions that subscribed to users they share
//! a conversation with (the session checks that before calling [`PresenceRegistry::watch`]).
//! Every change is encoded once and pushed to each watcher's [`Outbound`] with
//! [`Outbound::push_if_room`], so presence is dropped before anything that matters when a client
//! falls behind.
//!
//! The state is a few maps behind a `std::sync::Mutex`, like [`crate::limits`]: each call is a
//! handful of map operations and non-blocking pushes, never an await, so an actor hop would only
//! add latency. On a single node presence lives in memory: after a restart every user is offline
//! until a session opens (`last_seen` unknown).
//!
//! With several nodes ([`ClusterPresence`]), what a user's status is depends on every node: this
//! node reports its own view of each user (sessions here, away or not, when the last one closed)
//! to the shared [`PresenceDirectory`], in order, from one task; tells the other nodes on the
//! [`ClusterBus`]; and, for the users its sessions watch, looks the status up in the directory
//! whenever this node or another one reports a change, pushing it to the watchers when it
//! differs from what they last got. Lookups for `presence_state` and the HTTP API go to the
//! directory too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use foldhash::HashMap;
use switchboard_engine::StoreError;
use switchboard_engine::event::{EventEncoder, ServerEvent};
use switchboard_engine::ids::{SessionId, TenantId, UserId};
use switchboard_engine::ports::{
    Clock, ClusterBus, ClusterSubscription, MessageStore, NodePresence, PresenceDirectory,
    PresenceListener,
};
use switchboard_engine::time::Timestamp;

use crate::outbound::Outbound;
use crate::session::Identity;

pub use switchboard_engine::event::{PresenceEntry, PresenceStatus};

#[derive(Debug, Default)]
struct UserPresence {
    n_sessions: usize,
    away: bool,
    last_seen: Option<Timestamp>,
}

impl UserPresence {
    fn status(&self) -> PresenceStatus {
        match (self.n_sessions, self.away) {
            (0, _) => PresenceStatus::Offline,
            (_, true) => PresenceStatus::Away,
            (_, false) => PresenceStatus::Online,
        }
    }
}

type UserKey = (TenantId, UserId);

#[derive(Default)]
struct PresenceState {
    users: HashMap<UserKey, UserPresence>,
    /// Who watches each user, by session.
    watchers: HashMap<UserKey, BTreeMap<SessionId, Outbound>>,
    /// Whom each session watches, to clean up when it closes.
    watching: HashMap<SessionId, Vec<UserKey>>,
    /// With several nodes: the status each watched user's watchers last got.
    last_pushed: HashMap<UserKey, PresenceStatus>,
}

/// Presence across the nodes of a deployment.
struct ClusterPresence {
    directory: Arc<dyn PresenceDirectory>,
    /// This node's reports, in order, to the task that sends them.
    reports: tokio::sync::mpsc::UnboundedSender<(UserKey, NodePresence)>,
    _subscription: ClusterSubscription,
}

/// Hands the other nodes' presence changes to the registry.
struct PresenceChanges(Weak<PresenceRegistry>);

impl PresenceListener for PresenceChanges {
    fn presence_changed(&self, tenant_id: &TenantId, user_id: &UserId) {
        if let Some(registry) = self.0.upgrade() {
            registry.refresh_later((tenant_id.clone(), user_id.clone()));
        }
    }

    fn reconnected(&self) {
        if let Some(registry) = self.0.upgrade() {
            registry.report_everything_again();
        }
    }
}

/// The presence of every user of every tenant on this node.
pub struct PresenceRegistry {
    clock: Arc<dyn Clock>,
    encoder: Arc<dyn EventEncoder>,
    state: Mutex<PresenceState>,
    cluster: Option<ClusterPresence>,
}

/// The most users one watch request may name.
pub const MAX_WATCHED_PER_REQUEST: usize = 100;

impl PresenceRegistry {
    /// An empty registry; with `cluster` (the bus and the directory), presence is the
    /// deployment's.
    pub fn new(
        clock: Arc<dyn Clock>,
        encoder: Arc<dyn EventEncoder>,
        cluster: Option<(Arc<dyn ClusterBus>, Arc<dyn PresenceDirectory>)>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|registry: &Weak<PresenceRegistry>| {
            let cluster = cluster.map(|(bus, directory)| {
                let (reports, queue) = tokio::sync::mpsc::unbounded_channel();
                #[allow(clippy::disallowed_methods)]
                // Ends when the registry (which holds the sender) is dropped.
                tokio::spawn(send_reports(
                    queue,
                    registry.clone(),
                    Arc::clone(&directory),
                    Arc::clone(&bus),
                ));
                let subscription =
                    bus.subscribe_presence(Arc::new(PresenceChanges(registry.clone())));
                ClusterPresence {
                    directory,
                    reports,
                    _subscription: subscription,
                }
            });
            PresenceRegistry {
                clock,
                encoder,
                state: Mutex::new(PresenceState::default()),
                cluster,
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, PresenceState> {
        // Only plain maps live here; a panic mid-update leaves at worst a stale status.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A session of `identity` opened.
    pub fn session_opened(&self, identity: &Identity) {
        self.update(identity, |presence, _| presence.n_sessions += 1);
    }

    /// A session of `identity` closed: it stops watching, and the user may go offline.
    pub fn session_closed(&self, identity: &Identity, session_id: SessionId) {
        {
            let mut state = self.lock();
            for watched in state.watching.remove(&session_id).unwrap_or_default() {
                if let Some(watchers) = state.watchers.get_mut(&watched) {
                    watchers.remove(&session_id);
                    if watchers.is_empty() {
                        state.watchers.remove(&watched);
                        state.last_pushed.remove(&watched);
                    }
                }
            }
        }
        self.update(identity, |presence, now| {
            presence.n_sessions = presence.n_sessions.saturating_sub(1);
            if presence.n_sessions == 0 {
                presence.away = false;
                presence.last_seen = Some(now);
            }
        });
    }

    /// The user says they are away (or back).
    pub fn set_away(&self, identity: &Identity, away: bool) {
        self.update(identity, |presence, _| presence.away = away);
    }

    /// Applies a change to a user's presence and tells the watchers if the status changed
    /// (with several nodes: reports it, and the watchers hear of the deployment-wide status).
    fn update(&self, identity: &Identity, change: impl FnOnce(&mut UserPresence, Timestamp)) {
        let now = self.clock.now();
        let key = (identity.tenant_id.clone(), identity.user_id.clone());
        let mut state = self.lock();
        let presence = state.users.entry(key.clone()).or_default();
        let before = presence.status();
        change(presence, now);
        let after = presence.status();
        let last_seen = presence.last_seen;
        if before == after {
            return;
        }
        if let Some(cluster) = &self.cluster {
            let report = match after {
                PresenceStatus::Online => NodePresence::Online,
                PresenceStatus::Away => NodePresence::Away,
                PresenceStatus::Offline => NodePresence::Gone { last_seen: now },
            };
            let _ = cluster.reports.send((key, report));
            return;
        }
        let Some(watchers) = state.watchers.get(&key) else {
            return;
        };
        let frame = self.encoder.encode(&ServerEvent::Presence {
            request_id: None,
            user_id: &identity.user_id,
            status: after,
            last_seen: (after == PresenceStatus::Offline)
                .then_some(last_seen)
                .flatten(),
        });
        for outbound in watchers.values() {
            outbound.push_if_room(frame.clone());
        }
    }

    /// The presence of a user: the deployment's with several nodes (this node's own view if
    /// the directory cannot be asked), else this node's.
    pub async fn view(&self, tenant_id: &TenantId, user_id: &UserId) -> PresenceEntry {
        if let Some(cluster) = &self.cluster {
            match cluster.directory.lookup(tenant_id, user_id).await {
                Ok(entry) => return entry,
                Err(error) => {
                    tracing::warn!(%error, "the presence directory did not answer; answering with this node's view");
                }
            }
        }
        self.local_view(tenant_id, user_id)
    }

    /// This node's own view of a user's presence.
    fn local_view(&self, tenant_id: &TenantId, user_id: &UserId) -> PresenceEntry {
        let state = self.lock();
        let presence = state.users.get(&(tenant_id.clone(), user_id.clone()));
        let status = presence.map_or(PresenceStatus::Offline, UserPresence::status);
        PresenceEntry {
            user_id: user_id.clone(),
            status,
            last_seen: presence
                .filter(|_| status == PresenceStatus::Offline)
                .and_then(|presence| presence.last_seen),
        }
    }

    /// Starts telling `session_id` about changes to each of `user_ids`' presence (the caller
    /// checked they share a conversation), and returns their presence now.
    pub async fn watch(
        &self,
        tenant_id: &TenantId,
        session_id: SessionId,
        outbound: &Outbound,
        user_ids: &[UserId],
    ) -> Vec<PresenceEntry> {
        {
            let mut state = self.lock();
            for user_id in user_ids {
                let key = (tenant_id.clone(), user_id.clone());
                state
                    .watchers
                    .entry(key.clone())
                    .or_default()
                    .insert(session_id, outbound.clone());
                let watching = state.watching.entry(session_id).or_default();
                if !watching.contains(&key) {
                    watching.push(key);
                }
            }
        }
        let mut entries = Vec::with_capacity(user_ids.len());
        for user_id in user_ids {
            let entry = self.view(tenant_id, user_id).await;
            if self.cluster.is_some() {
                self.lock()
                    .last_pushed
                    .entry((tenant_id.clone(), user_id.clone()))
                    .or_insert(entry.status);
            }
            entries.push(entry);
        }
        entries
    }

    /// With several nodes, after the bus reconnected: reports every user with sessions here
    /// again (reports made while Redis was away were lost) and refreshes every watched user.
    fn report_everything_again(self: Arc<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let (reports, watched): (Vec<(UserKey, NodePresence)>, Vec<UserKey>) = {
            let state = self.lock();
            let reports = state
                .users
                .iter()
                .filter_map(|(key, presence)| match presence.status() {
                    PresenceStatus::Online => Some((key.clone(), NodePresence::Online)),
                    PresenceStatus::Away => Some((key.clone(), NodePresence::Away)),
                    PresenceStatus::Offline => None,
                })
                .collect();
            (reports, state.watchers.keys().cloned().collect())
        };
        for report in reports {
            let _ = cluster.reports.send(report);
        }
        for key in watched {
            Arc::clone(&self).refresh_later(key);
        }
    }

    /// With several nodes: looks up a watched user's status in the directory (in the
    /// background) and tells the watchers if it changed.
    fn refresh_later(self: Arc<Self>, key: UserKey) {
        if !self.lock().watchers.contains_key(&key) {
            return;
        }
        #[allow(clippy::disallowed_methods)] // A single lookup that ends by itself.
        tokio::spawn(async move { self.refresh(key).await });
    }

    async fn refresh(&self, key: UserKey) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let entry = match cluster.directory.lookup(&key.0, &key.1).await {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, "the presence directory did not answer; watchers not told");
                return;
            }
        };
        let mut state = self.lock();
        let Some(watchers) = state.watchers.get(&key) else {
            return;
        };
        let frame = self.encoder.encode(&ServerEvent::Presence {
            request_id: None,
            user_id: &entry.user_id,
            status: entry.status,
            last_seen: entry.last_seen,
        });
        let outbounds: Vec<Outbound> = watchers.values().cloned().collect();
        if state.last_pushed.insert(key, entry.status) == Some(entry.status) {
            return;
        }
        for outbound in outbounds {
            outbound.push_if_room(frame.clone());
        }
    }
}

/// Sends this node's reports to the directory in the order they were made, tells the other
/// nodes, and refreshes this node's own watchers.
async fn send_reports(
    mut queue: tokio::sync::mpsc::UnboundedReceiver<(UserKey, NodePresence)>,
    registry: Weak<PresenceRegistry>,
    directory: Arc<dyn PresenceDirectory>,
    bus: Arc<dyn ClusterBus>,
) {
    while let Some(((tenant_id, user_id), report)) = queue.recv().await {
        if let Err(error) = directory.report(&tenant_id, &user_id, report).await {
            tracing::warn!(%error, "a presence report was lost: the directory did not answer");
            continue;
        }
        bus.publish_presence(&tenant_id, &user_id);
        let Some(registry) = registry.upgrade() else {
            return;
        };
        registry.refresh((tenant_id, user_id)).await;
    }
}

/// How many conversations of each user [`shares_a_conversation`] looks at.
const MAX_CONVERSATIONS_SCANNED: usize = 10_000;

/// Whether two users of a tenant are both members of some conversation: who may watch whom.
/// Looks at up to 10,000 conversations of each.
///
/// # Errors
/// Storage errors.
pub async fn shares_a_conversation(
    store: &dyn MessageStore,
    tenant_id: &TenantId,
    first: &UserId,
    second: &UserId,
) -> Result<bool, StoreError> {
    if first == second {
        return Ok(true);
    }
    let page_size = 500;
    let mut of_second = std::collections::HashSet::new();
    let mut after = None;
    while of_second.len() < MAX_CONVERSATIONS_SCANNED {
        let page = store
            .conversations_of_user(tenant_id, second, after, page_size)
            .await?;
        after = page.last().copied();
        let full = page.len() == page_size;
        of_second.extend(page);
        if !full {
            break;
        }
    }
    if of_second.is_empty() {
        return Ok(false);
    }
    let mut after = None;
    let mut n_scanned = 0;
    while n_scanned < MAX_CONVERSATIONS_SCANNED {
        let page = store
            .conversations_of_user(tenant_id, first, after, page_size)
            .await?;
        if page.iter().any(|id| of_second.contains(id)) {
            return Ok(true);
        }
        n_scanned += page.len();
        after = page.last().copied();
        if page.len() < page_size {
            break;
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
