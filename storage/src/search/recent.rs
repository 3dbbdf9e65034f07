//! Adapters of the [`RecentSearches`](switchboard_engine::search::recent::RecentSearches)
//! port: each user's recent searches, one record per user holding the whole (capped) list,
//! rewritten with the engine's rule
//! ([`remembered`](switchboard_engine::search::recent::remembered)) on every search. `memory`
//! is the test double; `embedded` keeps them in a fjall database of their own
//! (`<data_dir>/recent-searches`); `mongo` in the message store's database, shared by every
//! node. One suite, `tests/recent_searches.rs`, holds all three to the contract.

pub(crate) mod embedded;
pub(crate) mod memory;
#[cfg(feature = "mongodb")]
pub(crate) mod mongo;
