//! The analyzer on the cases the module promises: folding, stemming, segmentation, CJK pairs,
//! positions and byte ranges.

use proptest::prelude::*;

use super::*;

fn stems(text: &str, purpose: Purpose) -> Vec<String> {
    Analyzer::new()
        .tokens(text, purpose)
        .into_iter()
        .map(|token| token.stem)
        .collect()
}

fn folded(text: &str) -> Vec<String> {
    Analyzer::new()
        .tokens(text, Purpose::Index)
        .into_iter()
        .map(|token| token.folded)
        .collect()
}

#[test]
fn case_marks_and_compatibility_forms_fold_away() {
    assert_eq!(folded("Café CAFE café"), ["cafe", "cafe", "cafe"]);
    assert_eq!(
        folded("Straße ﬁle Ångström"),
        ["strasse", "file", "angstrom"]
    );
    assert_eq!(folded("ΣΊΣΥΦΟΣ"), ["σισυφοσ"]);
    // Marks that change a word elsewhere stay: が is not か, and Hangul stays whole.
    assert_eq!(fold("が"), "が");
    assert_eq!(fold("ｶﾞ"), "ガ");
    assert_eq!(fold("한국어"), "한국어");
    assert_eq!(fold("हिंदी"), "हिंदी");
}

#[test]
fn english_words_meet_at_their_stem_and_other_scripts_are_only_folded() {
    let analyzer = Analyzer::new();
    let tokens = analyzer.tokens("Deploying deployed deploys", Purpose::Index);
    assert!(
        tokens.iter().all(|token| token.stem == "deploy"),
        "{tokens:?}"
    );
    assert_eq!(tokens[0].folded, "deploying");
    assert_eq!(stems("Привет мир", Purpose::Index), ["привет", "мир"]);
}

#[test]
fn words_are_separated_by_spaces_and_punctuation_with_positions_and_byte_ranges() {
    let text = "Re: the e-mail, v3.14 — don't!";
    let tokens = Analyzer::new().tokens(text, Purpose::Index);
    let words: Vec<&str> = tokens
        .iter()
        .map(|token| &text[token.bytes.clone()])
        .collect();
    assert_eq!(words, ["Re", "the", "e", "mail", "v3.14", "don't"]);
    let positions: Vec<u32> = tokens.iter().map(|token| token.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    // A pasted hash is not a word anyone searches for.
    assert!(folded(&"f".repeat(MAX_TERM_BYTES + 1)).is_empty());
    assert_eq!(folded(&"f".repeat(MAX_TERM_BYTES)).len(), 1);
}

#[test]
fn chinese_and_japanese_runs_are_indexed_as_pairs_and_characters() {
    let text = "東京都に住む";
    let tokens = Analyzer::new().tokens(text, Purpose::Index);
    let at = |position: u32| -> Vec<&str> {
        tokens
            .iter()
            .filter(|token| token.position == position)
            .map(|token| token.stem.as_str())
            .collect()
    };
    assert_eq!(at(0), ["東", "東京"]);
    assert_eq!(at(1), ["京", "京都"]);
    assert_eq!(at(4), ["住", "住む"]);
    assert_eq!(at(5), ["む"]);
    for token in &tokens {
        assert_eq!(&text[token.bytes.clone()], token.stem, "{token:?}");
    }
    // A query looks for its run's pairs, in order; a single character for itself.
    assert_eq!(stems("東京", Purpose::Query), ["東京"]);
    assert_eq!(stems("京都に", Purpose::Query), ["京都", "都に"]);
    assert_eq!(stems("東", Purpose::Query), ["東"]);
    // Consecutive query pairs sit at consecutive positions, as they do in the text.
    let query = Analyzer::new().tokens("京都に", Purpose::Query);
    assert_eq!(query[1].position, query[0].position + 1);
}

#[test]
fn korean_words_are_searchable_inside_and_mixed_text_keeps_its_order() {
    assert_eq!(
        stems("안녕하세요 세계", Purpose::Query),
        ["안녕", "녕하", "하세", "세요", "세계"]
    );
    let tokens = Analyzer::new().tokens("Tokyo 東京 2026", Purpose::Query);
    let stems: Vec<&str> = tokens.iter().map(|token| token.stem.as_str()).collect();
    assert_eq!(stems, ["tokyo", "東京", "2026"]);
    let positions: Vec<u32> = tokens.iter().map(|token| token.position).collect();
    assert_eq!(positions, [0, 1, 3]);
}

proptest! {
    /// Whatever the text, every token names a real slice of it, has a term, and positions
    /// never go back.
    #[test]
    fn tokens_are_slices_of_the_text_in_order(text in "\\PC{0,60}") {
        let analyzer = Analyzer::new();
        for purpose in [Purpose::Index, Purpose::Query] {
            let tokens = analyzer.tokens(&text, purpose);
            let mut last_position = 0;
            for token in &tokens {
                prop_assert!(text.get(token.bytes.clone()).is_some());
                prop_assert!(!token.folded.is_empty() && !token.stem.is_empty());
                prop_assert!(token.position >= last_position);
                last_position = token.position;
            }
        }
    }
}
