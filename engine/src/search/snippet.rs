//! What a hit shows of its message: a window of the text around the first match, the matches
//! in it as ranges (in characters, counted from the start of the snippet, so any client can
//! render them without parsing markup), and the same text HTML-escaped with `<mark>` around
//! the matches for clients that want markup.

use std::ops::Range;

/// The most characters a snippet shows.
pub const SNIPPET_CHARS: usize = 200;

/// How many characters of context a snippet keeps before its first match.
const CONTEXT_BEFORE_CHARS: usize = 40;

/// A snippet of a message's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// The text shown: a window of the message, with `…` where it was cut.
    pub text: String,
    /// The matches within `text`, in characters, in order.
    pub highlights: Vec<Range<usize>>,
    /// `text` HTML-escaped, with each match in `<mark>…</mark>`.
    pub html: String,
}

/// The snippet of `text` whose matches are at the byte ranges `matches` (in order, not
/// overlapping, on character boundaries).
pub fn snippet(text: &str, matches: &[Range<usize>]) -> Snippet {
    let characters: Vec<(usize, char)> = text.char_indices().collect();
    let char_at = |byte: usize| {
        characters
            .iter()
            .position(|(offset, _)| *offset >= byte)
            .unwrap_or(characters.len())
    };
    let first_match = matches.first().map_or(0, |range| char_at(range.start));
    let start = if characters.len() <= SNIPPET_CHARS {
        0
    } else {
        first_match
            .saturating_sub(CONTEXT_BEFORE_CHARS)
            .min(characters.len() - SNIPPET_CHARS)
    };
    let end = (start + SNIPPET_CHARS).min(characters.len());
    let mut shown = String::new();
    let mut html = String::new();
    let mut highlights = Vec::new();
    let mut shown_chars = 0;
    if start > 0 {
        shown.push('…');
        html.push('…');
        shown_chars += 1;
    }
    let char_ranges: Vec<Range<usize>> = matches
        .iter()
        .map(|range| char_at(range.start)..char_at(range.end))
        .collect();
    let mut open: Option<usize> = None;
    for (index, (_, character)) in characters.iter().enumerate().take(end).skip(start) {
        let in_match = char_ranges.iter().any(|range| range.contains(&index));
        match (in_match, open) {
            (true, None) => {
                open = Some(shown_chars);
                html.push_str("<mark>");
            }
            (false, Some(from)) => {
                highlights.push(from..shown_chars);
                open = None;
                html.push_str("</mark>");
            }
            _ => {}
        }
        shown.push(*character);
        push_escaped(&mut html, *character);
        shown_chars += 1;
    }
    if let Some(from) = open {
        highlights.push(from..shown_chars);
        html.push_str("</mark>");
    }
    if end < characters.len() {
        shown.push('…');
        html.push('…');
    }
    Snippet {
        text: shown,
        highlights,
        html,
    }
}

fn push_escaped(html: &mut String, character: char) {
    match character {
        '&' => html.push_str("&amp;"),
        '<' => html.push_str("&lt;"),
        '>' => html.push_str("&gt;"),
        '"' => html.push_str("&quot;"),
        '\'' => html.push_str("&#39;"),
        other => html.push(other),
    }
}

#[cfg(test)]
mod tests;
