//! Text analysis: how a message's text, and a query's words, become index terms. One analyzer
//! serves every adapter (the tantivy index runs it as its tokenizer, the in-memory index
//! directly), so what the index stores and what a query looks for can never disagree.
//!
//! - **Words** are found by Unicode word segmentation (UAX #29, `unicode-segmentation`):
//!   spaces and punctuation separate words in every script that writes them; `e-mail` is two
//!   words, `3.14` and `don't` one.
//! - **Folding**: each word is decomposed (NFKD), lowercased and the marks on Latin, Greek
//!   and Cyrillic letters dropped, so `Café`, `CAFE` and `café` are one term, as are `ﬁle` and
//!   `file`; `ß` folds to `ss`. Marks in other scripts are kept (they change the word).
//! - **Stemming**: words in the Latin script are also reduced to their English stem (Snowball,
//!   `rust-stemmers`): `deploying`, `deployed` and `deploys` find one another. Other scripts are
//!   folded, not stemmed.
//! - **Chinese, Japanese and Korean** text is found by substrings: each run of Han, Hiragana,
//!   Katakana or Hangul characters is indexed as overlapping character pairs (bigrams), plus
//!   every character on its own; a query's run is looked for as the phrase of its pairs (one
//!   character: the character). So `東京` finds `東京都`, and `京都` does too.
//!
//! Each [`Token`] carries both its folded word (for prefixes and suggestions, which must be
//! whole words as written) and its stem (for words and phrases), its position (consecutive
//! for neighbouring words; a pair and the single character it starts with share one), and its
//! byte range in the text (for highlights).

use std::ops::Range;

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation as _;

/// The longest word indexed, in bytes once folded; longer runs (a pasted hash, base64) are
/// skipped, so one message cannot fill the term dictionary.
pub const MAX_TERM_BYTES: usize = 64;

/// What the text is analysed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A message's text, as stored: CJK runs give their pairs and their characters.
    Index,
    /// A query's words: CJK runs give their pairs only (one character: itself).
    Query,
}

/// One term of analysed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The word folded (case, marks, compatibility forms), not stemmed.
    pub folded: String,
    /// The term words and phrases match: the English stem of a Latin-script word, else the
    /// folded word.
    pub stem: String,
    /// Its place among the text's terms, from 0.
    pub position: u32,
    /// Where it is in the text, in bytes.
    pub bytes: Range<usize>,
}

/// The analyzer: stateless but for the stemmer, cheap to share.
pub struct Analyzer {
    stemmer: Stemmer,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Analyzer(english stemmer)")
    }
}

impl Analyzer {
    /// The analyzer with the English stemmer.
    pub fn new() -> Self {
        Self {
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    /// The terms of `text`, in order.
    pub fn tokens(&self, text: &str, purpose: Purpose) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut position = 0u32;
        // A run of CJK characters being gathered: (byte offset, character) each.
        let mut run: Vec<(usize, char)> = Vec::new();
        for (start, segment) in text.split_word_bound_indices() {
            if segment.chars().all(is_cjk) {
                let adjacent = run
                    .last()
                    .is_none_or(|(offset, character)| offset + character.len_utf8() == start);
                if !adjacent {
                    self.flush_run(&mut run, purpose, &mut position, &mut tokens);
                }
                run.extend(
                    segment
                        .char_indices()
                        .map(|(offset, character)| (start + offset, character)),
                );
                continue;
            }
            self.flush_run(&mut run, purpose, &mut position, &mut tokens);
            if !segment.chars().any(char::is_alphanumeric) {
                continue;
            }
            let folded = fold(segment);
            if folded.is_empty() || folded.len() > MAX_TERM_BYTES {
                continue;
            }
            let stem = if folded
                .chars()
                .any(|character| character.is_ascii_alphabetic())
            {
                self.stemmer.stem(&folded).into_owned()
            } else {
                folded.clone()
            };
            tokens.push(Token {
                folded,
                stem,
                position,
                bytes: start..start + segment.len(),
            });
            position += 1;
        }
        self.flush_run(&mut run, purpose, &mut position, &mut tokens);
        tokens
    }

    /// Emits the pairs (and, for the index, the characters) of a CJK run, and empties it.
    fn flush_run(
        &self,
        run: &mut Vec<(usize, char)>,
        purpose: Purpose,
        position: &mut u32,
        tokens: &mut Vec<Token>,
    ) {
        if run.is_empty() {
            return;
        }
        let term = |characters: &[(usize, char)], position: u32| {
            let folded = fold(&characters.iter().map(|(_, c)| *c).collect::<String>());
            let (first, _) = characters[0];
            let (last, last_character) = characters[characters.len() - 1];
            Token {
                stem: folded.clone(),
                folded,
                position,
                bytes: first..last + last_character.len_utf8(),
            }
        };
        if run.len() == 1 {
            tokens.push(term(run, *position));
            *position += 1;
        } else {
            for (index, pair) in run.windows(2).enumerate() {
                let at = *position + index as u32;
                if purpose == Purpose::Index {
                    tokens.push(term(&pair[..1], at));
                }
                tokens.push(term(pair, at));
            }
            let last = run.len() - 1;
            if purpose == Purpose::Index {
                tokens.push(term(&run[last..], *position + last as u32));
            }
            *position += run.len() as u32;
        }
        run.clear();
    }
}

/// Folds a word: compatibility decomposition, lowercase, `ß` → `ss`, and the marks on Latin,
/// Greek and Cyrillic letters dropped (`é` → `e`); marks elsewhere are kept (a Japanese voiced
/// mark, a Devanagari vowel sign change the word), and what remains is recomposed (NFC), so
/// Hangul syllables come back whole.
pub fn fold(word: &str) -> String {
    let mut decomposed = String::with_capacity(word.len());
    let mut base_is_european = false;
    for character in word.nfkd() {
        if is_combining_mark(character) {
            if base_is_european {
                continue;
            }
        } else {
            base_is_european = character < '\u{0530}';
        }
        for lower in character.to_lowercase() {
            if lower == 'ß' {
                decomposed.push_str("ss");
            } else {
                decomposed.push(lower);
            }
        }
    }
    decomposed.nfc().collect()
}

/// Whether a character is written in a script without spaces between words (or, for Hangul,
/// one whose words are long enough to be searched inside): Han, Hiragana, Katakana, Hangul.
pub fn is_cjk(character: char) -> bool {
    matches!(
        character,
        '\u{1100}'..='\u{11FF}'
            | '\u{2E80}'..='\u{2FDF}'
            | '\u{3040}'..='\u{30FF}'
            | '\u{3130}'..='\u{318F}'
            | '\u{31F0}'..='\u{31FF}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7AF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{2FA1F}'
    )
}

#[cfg(test)]
mod tests;
