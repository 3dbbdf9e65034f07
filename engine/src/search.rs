//! Search: the rules of finding messages, independent of any index. The query language a
//! chat user types ([`query`]: words, phrases, exclusions, prefixes and the `from:`, `in:`,
//! `has:`, `before:` and `after:` filters, with every limit checked) and the text analysis
//! both the index and the query go through ([`analyzer`]: Unicode word segmentation, case,
//! mark and compatibility folding, English stemming, and character pairs for Chinese,
//! Japanese and Korean).
//!
//! Both are pure and total (property-tested on arbitrary text), so a query's refusal and the
//! terms a message is found by are decided here, before any adapter is involved. [`matching`]
//! says once what a query means over analysed text (the in-memory index runs it; a real index
//! is held to its answers), and [`index`] is the `SearchIndex` port: documents, changes with
//! their event-log checkpoint, and requests that carry the caller's scope; [`indexing`] says
//! what each event-log entry does to the index. [`directory`] finds conversations and people
//! by name with the same matcher, and [`recent`] keeps each user's recent searches.

pub mod analyzer;
pub mod directory;
pub mod index;
pub mod indexing;
pub mod matching;
pub mod query;
pub mod recent;
pub mod snippet;

pub use analyzer::{Analyzer, Purpose, Token};
pub use index::{SearchIndex, SearchRequest};
pub use query::{Clause, SearchQuery};
