//! A user's recent searches: the queries they ran, newest first, at most
//! [`MAX_RECENT_SEARCHES`], each once (running a query again moves it to the front). Kept per
//! user and tenant behind the [`RecentSearches`] port, shown by `GET /v1/search/recent` and
//! erased by `DELETE /v1/search/recent`.
//!
//! [`remembered`] is the rule every adapter applies; the conformance suite
//! (`storage/tests/recent_searches.rs`) holds them to it.

use async_trait::async_trait;

use crate::StoreError;
use crate::ids::{TenantId, UserId};
use crate::time::Timestamp;

/// The most searches kept per user.
pub const MAX_RECENT_SEARCHES: usize = 20;

/// One search a user ran.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecentSearch {
    /// The query, as typed (trimmed).
    pub query: String,
    /// When it was last run.
    pub at: Timestamp,
}

/// `recent` (newest first) after `search` was run: `search` first, any earlier run of the same
/// query dropped, at most [`MAX_RECENT_SEARCHES`].
pub fn remembered(recent: Vec<RecentSearch>, search: RecentSearch) -> Vec<RecentSearch> {
    let earlier: Vec<RecentSearch> = recent
        .into_iter()
        .filter(|earlier| earlier.query != search.query)
        .collect();
    std::iter::once(search)
        .chain(earlier)
        .take(MAX_RECENT_SEARCHES)
        .collect()
}

/// Where users' recent searches are kept.
///
/// # Contract (checked by the conformance suite in `storage/tests/recent_searches.rs`)
/// - [`RecentSearches::recent`] gives what [`remembered`] would, applied to every
///   [`RecentSearches::remember`] of this user in order, since the last
///   [`RecentSearches::forget`]: newest first, each query once, at most
///   [`MAX_RECENT_SEARCHES`]. It is durable like the store it lives in.
/// - Every method is scoped by tenant and user: nobody else's searches are seen or erased.
#[async_trait]
pub trait RecentSearches: Send + Sync + 'static {
    /// Records that `user_id` ran `search`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn remember(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        search: RecentSearch,
    ) -> Result<(), StoreError>;

    /// The user's recent searches, newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn recent(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
    ) -> Result<Vec<RecentSearch>, StoreError>;

    /// Erases every recent search of the user; returns how many there were.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the backend failed.
    async fn forget(&self, tenant_id: &TenantId, user_id: &UserId) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(query: &str, at: u64) -> RecentSearch {
        RecentSearch {
            query: query.to_owned(),
            at: Timestamp(at),
        }
    }

    #[test]
    fn a_query_run_again_moves_to_the_front_and_the_list_is_capped() {
        let mut recent = Vec::new();
        for number in 0..(MAX_RECENT_SEARCHES as u64 + 5) {
            recent = remembered(recent, search(&format!("q{number}"), number));
        }
        assert_eq!(recent.len(), MAX_RECENT_SEARCHES);
        assert_eq!(recent[0].query, "q24");
        assert_eq!(recent[MAX_RECENT_SEARCHES - 1].query, "q5");
        recent = remembered(recent, search("q10", 100));
        assert_eq!(recent.len(), MAX_RECENT_SEARCHES);
        assert_eq!(recent[0], search("q10", 100));
        assert_eq!(
            recent
                .iter()
                .filter(|earlier| earlier.query == "q10")
                .count(),
            1
        );
    }
}
