//! Search's actors: the indexer that follows the event log into the search index and rebuilds
//! it into a new generation on request ([`indexer`], its batches run on a thread at the indexer's niceness, `niced`; [`live`] is the generation searches read), and the service that answers a caller's search within what the caller may
//! read ([`service`]; not an actor: a query reads the index through the port).

pub mod indexer;
pub mod live;
mod niced;
pub mod service;
