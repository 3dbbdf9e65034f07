//! Search's actors: the indexer that follows the event log into the search index
//! ([`indexer`]). Queries are not an actor's work: they read the index through the port.

pub mod indexer;
