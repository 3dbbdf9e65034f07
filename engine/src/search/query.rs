//! The search query language a chat user types, parsed into a [`SearchQuery`]: words,
//! `"phrases"`, `-excluded` words and phrases, `prefix*`, and the filters `from:<user>`,
//! `in:<conversation>`, `has:attachment`, `before:<date>` and `after:<date>`.
//!
//! Parsing is pure and total: any string gets either a query or one [`Error::Invalid`] (field
//! `q`) that says what is wrong and where, counted in characters from 1. The limits are checked
//! here, before any index is touched: at most [`MAX_QUERY_BYTES`] bytes and
//! [`MAX_QUERY_TERMS`] terms (each word of a phrase and each filter counts), no control
//! characters, a prefix of at least [`MIN_PREFIX_CHARS`] characters (a lone `*` would match
//! everything), well-formed dates (`YYYY-MM-DD`, a day in UTC) and ids. Words stay as typed:
//! turning them into index terms (segmentation, folding, stemming) is the analyzer's work
//! (`analyzer.rs`), the same for the query as for the text, so the two always agree.
//!
//! `before:D` finds what was sent before day `D` began, `after:D` what was sent after it
//! ended (as in Slack): `after:2026-01-01 before:2026-01-03` is 2 January. A filter cannot be
//! excluded, nor given twice, except `from:` and `in:`, which take any of several values.
//! A word with a colon that is not one of the filters (`https://example.com`, `10:30`) is a
//! word.

use crate::ids::{ConversationId, UserId};
use crate::time::Timestamp;
use crate::{Error, Result};

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;

/// The most terms a query may have: words (each word of a phrase) and filters.
pub const MAX_QUERY_TERMS: usize = 32;

/// The fewest characters before a prefix's `*`.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Milliseconds in a day.
const DAY_MILLIS: u64 = 24 * 60 * 60 * 1000;

/// Something a message's text must (or, excluded, must not) contain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Clause {
    /// A word as typed (the analyzer may split it further: `e-mail`, `東京都`); each of its
    /// terms must be found.
    Word(String),
    /// Words that must be found next to each other, in this order.
    Phrase(String),
    /// The start of a word, at least [`MIN_PREFIX_CHARS`] characters.
    Prefix(String),
}

/// A parsed query: what the text must contain and the filters on the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SearchQuery {
    /// Every one of these must be found.
    pub required: Vec<Clause>,
    /// None of these may be found.
    pub excluded: Vec<Clause>,
    /// Sent by any of these users (`from:`); anyone when empty.
    pub from: Vec<UserId>,
    /// In any of these conversations (`in:`); any the caller may read when empty.
    pub conversations: Vec<ConversationId>,
    /// Only messages with attachments (`has:attachment`).
    pub has_attachment: bool,
    /// Sent before this time (exclusive).
    pub before: Option<Timestamp>,
    /// Sent at or after this time.
    pub after: Option<Timestamp>,
}

impl SearchQuery {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `q`) naming the first problem and, where it has one, its
    /// position in characters from 1.
    pub fn parse(text: &str) -> Result<SearchQuery> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(invalid(format!(
                "the query is {} bytes; at most {MAX_QUERY_BYTES} are accepted",
                text.len()
            )));
        }
        if let Some((index, _)) = text
            .chars()
            .enumerate()
            .find(|(_, character)| character.is_control() && !character.is_whitespace())
        {
            return Err(invalid(format!(
                "character {} is a control character",
                index + 1
            )));
        }
        let mut query = SearchQuery::default();
        let mut n_terms = 0usize;
        for token in lex(text)? {
            n_terms += token.n_terms();
            if n_terms > MAX_QUERY_TERMS {
                return Err(invalid(format!(
                    "the query has more than {MAX_QUERY_TERMS} terms (words and filters)"
                )));
            }
            query.add(token)?;
        }
        if query.required.is_empty() && !query.has_filter() {
            return Err(invalid(if query.excluded.is_empty() {
                "the query is empty: give a word, a phrase or a filter"
            } else {
                "the query only excludes: give a word, a phrase or a filter to search for"
            }));
        }
        if let (Some(after), Some(before)) = (query.after, query.before)
            && after >= before
        {
            return Err(invalid("after: must be a day before before:'s day"));
        }
        Ok(query)
    }

    /// Whether any filter is set.
    pub fn has_filter(&self) -> bool {
        !self.from.is_empty()
            || !self.conversations.is_empty()
            || self.has_attachment
            || self.before.is_some()
            || self.after.is_some()
    }

    fn add(&mut self, token: Token) -> Result<()> {
        let Token {
            negated,
            kind,
            column,
        } = token;
        match kind {
            TokenKind::Clause(clause) if negated => self.excluded.push(clause),
            TokenKind::Clause(clause) => self.required.push(clause),
            TokenKind::Filter(name, _) if negated => {
                return Err(invalid(format!(
                    "{name}: at character {column} cannot be excluded"
                )));
            }
            TokenKind::Filter(name, value) => self.add_filter(name, &value, column)?,
        }
        Ok(())
    }

    fn add_filter(&mut self, name: FilterName, value: &str, column: usize) -> Result<()> {
        if value.is_empty() {
            return Err(invalid(format!(
                "{name}: at character {column} needs a value"
            )));
        }
        let bad_value = |what: &str| {
            invalid(format!(
                "{name}:{value} at character {column} is not {what}"
            ))
        };
        match name {
            FilterName::From => {
                let user_id = UserId::parse(value).map_err(|_| bad_value("a user id"))?;
                if !self.from.contains(&user_id) {
                    self.from.push(user_id);
                }
            }
            FilterName::In => {
                let conversation_id =
                    ConversationId::parse(value).map_err(|_| bad_value("a conversation id"))?;
                if !self.conversations.contains(&conversation_id) {
                    self.conversations.push(conversation_id);
                }
            }
            FilterName::Has => {
                if !value.eq_ignore_ascii_case("attachment") {
                    return Err(bad_value("a known has: filter (has:attachment)"));
                }
                self.has_attachment = true;
            }
            FilterName::Before | FilterName::After => {
                let day = day_start(value).ok_or_else(|| bad_value("a date (YYYY-MM-DD)"))?;
                let (slot, at) = if name == FilterName::Before {
                    (&mut self.before, day)
                } else {
                    (&mut self.after, Timestamp(day.0 + DAY_MILLIS))
                };
                if slot.is_some() {
                    return Err(invalid(format!(
                        "{name}: at character {column} is given twice"
                    )));
                }
                *slot = Some(at);
            }
        }
        Ok(())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::invalid("q", reason)
}

/// The filters the language knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilterName {
    From,
    In,
    Has,
    Before,
    After,
}

impl FilterName {
    fn of(name: &str) -> Option<FilterName> {
        [
            ("from", FilterName::From),
            ("in", FilterName::In),
            ("has", FilterName::Has),
            ("before", FilterName::Before),
            ("after", FilterName::After),
        ]
        .into_iter()
        .find(|(known, _)| name.eq_ignore_ascii_case(known))
        .map(|(_, filter)| filter)
    }
}

impl std::fmt::Display for FilterName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            FilterName::From => "from",
            FilterName::In => "in",
            FilterName::Has => "has",
            FilterName::Before => "before",
            FilterName::After => "after",
        })
    }
}

/// One piece of the query as typed.
#[derive(Debug)]
struct Token {
    /// Written with a leading `-`.
    negated: bool,
    kind: TokenKind,
    /// Where it starts, in characters from 1.
    column: usize,
}

#[derive(Debug)]
enum TokenKind {
    Clause(Clause),
    Filter(FilterName, String),
}

impl Token {
    /// How many terms it counts for against [`MAX_QUERY_TERMS`].
    fn n_terms(&self) -> usize {
        match &self.kind {
            TokenKind::Clause(Clause::Phrase(text)) => text.split_whitespace().count().max(1),
            TokenKind::Clause(_) | TokenKind::Filter(..) => 1,
        }
    }
}

/// Splits the query into tokens: runs of non-space characters, and quoted phrases (which may
/// hold spaces; a quote inside a word starts one too).
fn lex(text: &str) -> Result<Vec<Token>> {
    let characters: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < characters.len() {
        if characters[index].is_whitespace() {
            index += 1;
            continue;
        }
        let column = index + 1;
        let negated = characters[index] == '-'
            && characters
                .get(index + 1)
                .is_some_and(|next| !next.is_whitespace());
        if negated {
            index += 1;
        }
        if characters[index] == '"' {
            let opening = index;
            let closing = characters[opening + 1..]
                .iter()
                .position(|character| *character == '"')
                .map(|offset| opening + 1 + offset)
                .ok_or_else(|| {
                    invalid(format!(
                        "unbalanced quote: the quote at character {} is never closed",
                        opening + 1
                    ))
                })?;
            let phrase: String = characters[opening + 1..closing].iter().collect();
            index = closing + 1;
            if findable(&phrase) {
                tokens.push(Token {
                    negated,
                    kind: TokenKind::Clause(Clause::Phrase(phrase.trim().to_owned())),
                    column,
                });
            }
            continue;
        }
        let start = index;
        while index < characters.len()
            && !characters[index].is_whitespace()
            && characters[index] != '"'
        {
            index += 1;
        }
        let word: String = characters[start..index].iter().collect();
        let kind = word_kind(&word, column)?;
        if matches!(&kind, TokenKind::Clause(Clause::Word(text) | Clause::Prefix(text)) if !findable(text))
        {
            continue;
        }
        tokens.push(Token {
            negated,
            kind,
            column,
        });
    }
    Ok(tokens)
}

/// Whether text has anything the analyzer indexes: punctuation alone (`-`, `...`) is never
/// found, so it is left out of the query rather than matching nothing.
fn findable(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// What a run of non-space characters is: a filter, a prefix or a word.
fn word_kind(word: &str, column: usize) -> Result<TokenKind> {
    if let Some((name, value)) = word.split_once(':')
        && let Some(filter) = FilterName::of(name)
    {
        return Ok(TokenKind::Filter(filter, value.to_owned()));
    }
    if let Some(stem) = word.strip_suffix('*') {
        let stem = stem.trim_end_matches('*');
        let n_chars = stem.chars().count();
        if n_chars == 0 {
            return Err(invalid(format!(
                "a lone * at character {column} would match everything: give at least \
                 {MIN_PREFIX_CHARS} characters before it"
            )));
        }
        if n_chars < MIN_PREFIX_CHARS {
            return Err(invalid(format!(
                "the prefix {stem}* at character {column} is too short: give at least \
                 {MIN_PREFIX_CHARS} characters before the *"
            )));
        }
        return Ok(TokenKind::Clause(Clause::Prefix(stem.to_owned())));
    }
    Ok(TokenKind::Clause(Clause::Word(word.to_owned())))
}

/// The start of day `text` (`YYYY-MM-DD`, UTC), from 1970 to 9999.
fn day_start(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        digits
            .bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp(days * DAY_MILLIS))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the date (Howard Hinnant's `days_from_civil`, for years from 1970).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let year = u64::from(if month <= 2 { year - 1 } else { year });
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month = u64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests;
