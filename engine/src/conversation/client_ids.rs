//! The conversation's memory of idempotency keys: which `client_id`s are being stored right now
//! and which were stored recently.
//!
//! Both are keyed by author and `client_id` (a key is its author's own, see
//! [`crate::idempotency`]). [`RecentClientIds`] is bounded by [`super::RECENT_CLIENT_IDS`] and
//! forgets the oldest first; a key it has forgotten is still deduplicated, by storage at append.
//! Kept apart from [`super::ConversationCore`] so the state machine reads as rules, not as
//! bookkeeping.

use std::collections::VecDeque;

use foldhash::HashMap;

use super::RECENT_CLIENT_IDS;
use crate::idempotency::RequestFingerprint;
use crate::ids::{ClientId, UserId};
use crate::model::MessageRef;

/// Values by idempotency key, a `client_id` being its author's own (see
/// [`crate::idempotency`]). Keyed by `client_id` first, with the (almost always one) authors who
/// used it beside it, so that a lookup on the send path borrows the ids instead of cloning them.
#[derive(Debug)]
pub(super) struct ByAuthorKey<V> {
    by_client_id: HashMap<ClientId, Vec<(UserId, V)>>,
}

impl<V> Default for ByAuthorKey<V> {
    fn default() -> Self {
        ByAuthorKey {
            by_client_id: HashMap::default(),
        }
    }
}

impl<V> ByAuthorKey<V> {
    pub(super) fn get(&self, author: &UserId, client_id: &ClientId) -> Option<&V> {
        self.by_client_id
            .get(client_id)?
            .iter()
            .find(|(user_id, _)| user_id == author)
            .map(|(_, value)| value)
    }

    /// Sets the value of `author`'s `client_id`; returns the one it replaced.
    pub(super) fn insert(&mut self, author: &UserId, client_id: &ClientId, value: V) -> Option<V> {
        let authors = self.by_client_id.entry(client_id.clone()).or_default();
        match authors.iter_mut().find(|(user_id, _)| user_id == author) {
            Some((_, existing)) => Some(std::mem::replace(existing, value)),
            None => {
                authors.push((author.clone(), value));
                None
            }
        }
    }

    pub(super) fn remove(&mut self, author: &UserId, client_id: &ClientId) -> Option<V> {
        let authors = self.by_client_id.get_mut(client_id)?;
        let position = authors.iter().position(|(user_id, _)| user_id == author)?;
        let (_, value) = authors.swap_remove(position);
        if authors.is_empty() {
            self.by_client_id.remove(client_id);
        }
        Some(value)
    }
}

/// A bounded memory of recently stored `client_id`s, by author, evicted oldest first.
#[derive(Debug, Default)]
pub(super) struct RecentClientIds {
    /// What each key resolved to, and the fingerprint of the request that made the entry.
    by_key: ByAuthorKey<(MessageRef, RequestFingerprint)>,
    order: VecDeque<(UserId, ClientId)>,
}

impl RecentClientIds {
    /// What `author`'s `client_id` resolved to, and the fingerprint of its request.
    pub(super) fn get(
        &self,
        author: &UserId,
        client_id: &ClientId,
    ) -> Option<(MessageRef, RequestFingerprint)> {
        self.by_key.get(author, client_id).copied()
    }

    pub(super) fn insert(
        &mut self,
        author: &UserId,
        client_id: &ClientId,
        message_ref: MessageRef,
        fingerprint: RequestFingerprint,
    ) {
        if self
            .by_key
            .insert(author, client_id, (message_ref, fingerprint))
            .is_none()
        {
            self.order.push_back((author.clone(), client_id.clone()));
        }
        while self.order.len() > RECENT_CLIENT_IDS {
            if let Some((oldest_author, oldest_client_id)) = self.order.pop_front() {
                self.by_key.remove(&oldest_author, &oldest_client_id);
            }
        }
    }
}
