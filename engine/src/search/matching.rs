//! Whether one document matches a query, and where: the meaning of the query language over
//! the analyzer's tokens, written once. The in-memory index runs it on every document; an
//! index with its own query engine (tantivy) builds the same query from the same
//! [`CompiledQuery`], and the conformance suite holds the two to the same answers.
//!
//! A word that analyzes to several terms (`e-mail`, `東京都`) is looked for as a phrase, as a
//! quoted phrase is: its terms at the same distances as in the query. A prefix is matched
//! against whole folded words (not stems), so `deplo*` finds `deploying`.

use std::ops::Range;

use super::analyzer::{Analyzer, Purpose, Token, fold};
use super::index::SearchDocument;
use super::query::{Clause, SearchQuery};

/// One clause, analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompiledClause {
    /// Stems at these positions relative to the first (0 for the first): one term, or a
    /// phrase.
    Terms(Vec<(u32, String)>),
    /// A folded prefix of a word.
    Prefix(String),
    /// A clause with no term (a word too long to index): it is never found.
    Nothing,
}

/// A query, analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledQuery {
    /// Every one must match.
    pub required: Vec<CompiledClause>,
    /// None may match.
    pub excluded: Vec<CompiledClause>,
}

impl CompiledQuery {
    /// Analyses the clauses of `query`.
    pub fn new(analyzer: &Analyzer, query: &SearchQuery) -> Self {
        let compile = |clause: &Clause| match clause {
            Clause::Word(text) | Clause::Phrase(text) => {
                let tokens = analyzer.tokens(text, Purpose::Query);
                match tokens.first() {
                    None => CompiledClause::Nothing,
                    Some(first) => CompiledClause::Terms(
                        tokens
                            .iter()
                            .map(|token| (token.position - first.position, token.stem.clone()))
                            .collect(),
                    ),
                }
            }
            Clause::Prefix(text) => CompiledClause::Prefix(fold(text)),
        };
        Self {
            required: query.required.iter().map(compile).collect(),
            excluded: query.excluded.iter().map(compile).collect(),
        }
    }

    /// Where the required clauses match in a document of `tokens`, or `None` if the text does
    /// not match (a required clause is missing, or an excluded one is there). Without
    /// required clauses (a query of filters only) every text matches, at no place.
    pub fn matches(&self, tokens: &[Token]) -> Option<Vec<Range<usize>>> {
        if self
            .excluded
            .iter()
            .any(|clause| !clause_matches(clause, tokens).is_empty())
        {
            return None;
        }
        let mut ranges = Vec::new();
        for clause in &self.required {
            let found = clause_matches(clause, tokens);
            if found.is_empty() {
                return None;
            }
            ranges.extend(found);
        }
        Some(merged(ranges))
    }
}

/// Whether a document passes the query's filters (sender, conversation, attachment, time).
pub fn passes_filters(query: &SearchQuery, document: &SearchDocument) -> bool {
    (query.from.is_empty() || query.from.contains(&document.sender_id))
        && (query.conversations.is_empty()
            || query.conversations.contains(&document.conversation_id))
        && (!query.has_attachment || document.has_attachment)
        && query.before.is_none_or(|before| document.sent_at < before)
        && query.after.is_none_or(|after| document.sent_at >= after)
}

/// The byte ranges where `clause` matches, each occurrence's tokens; empty if nowhere.
fn clause_matches(clause: &CompiledClause, tokens: &[Token]) -> Vec<Range<usize>> {
    match clause {
        CompiledClause::Nothing => Vec::new(),
        CompiledClause::Prefix(prefix) => tokens
            .iter()
            .filter(|token| token.folded.starts_with(prefix.as_str()))
            .map(|token| token.bytes.clone())
            .collect(),
        CompiledClause::Terms(terms) => {
            let Some((_, first)) = terms.first() else {
                return Vec::new();
            };
            let mut found = Vec::new();
            for start in tokens.iter().filter(|token| &token.stem == first) {
                let occurrence: Option<Vec<Range<usize>>> = terms
                    .iter()
                    .map(|(offset, stem)| {
                        tokens
                            .iter()
                            .find(|token| {
                                token.position == start.position + offset && &token.stem == stem
                            })
                            .map(|token| token.bytes.clone())
                    })
                    .collect();
                if let Some(occurrence) = occurrence {
                    found.extend(occurrence);
                }
            }
            found
        }
    }
}

/// Sorted, with overlapping and touching ranges joined.
pub(crate) fn merged(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|range| (range.start, range.end));
    let mut joined: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match joined.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => joined.push(range),
        }
    }
    joined
}

#[cfg(test)]
mod tests;
