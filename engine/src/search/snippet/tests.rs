//! Snippets: the window, the highlights in characters, and markup that cannot be injected.

use super::*;

#[test]
fn a_short_text_is_shown_whole_with_its_matches() {
    let text = "Café <b>launch</b> & plan";
    let launch = text.find("launch").expect("there");
    let matches = [Range {
        start: launch,
        end: launch + 6,
    }];
    let shown = snippet(text, &matches);
    assert_eq!(shown.text, text);
    assert_eq!(shown.highlights, vec![8..14]);
    let highlighted: String = shown.text.chars().skip(8).take(6).collect();
    assert_eq!(highlighted, "launch");
    assert_eq!(
        shown.html,
        "Café &lt;b&gt;<mark>launch</mark>&lt;/b&gt; &amp; plan"
    );
}

#[test]
fn a_long_text_is_cut_around_its_first_match() {
    let text = format!("{}needle{}", "a ".repeat(200), " b".repeat(200));
    let at = text.find("needle").expect("there");
    let matches = [Range {
        start: at,
        end: at + 6,
    }];
    let shown = snippet(&text, &matches);
    assert!(
        shown.text.starts_with('…') && shown.text.ends_with('…'),
        "{}",
        shown.text
    );
    assert_eq!(shown.text.chars().count(), SNIPPET_CHARS + 2);
    let range = shown.highlights[0].clone();
    let highlighted: String = shown
        .text
        .chars()
        .skip(range.start)
        .take(range.len())
        .collect();
    assert_eq!(highlighted, "needle");
    assert_eq!(range.start, 1 + 40);
}

#[test]
fn adjacent_matches_are_one_highlight_and_no_match_is_none() {
    let text = "東京都に住む";
    let shown = snippet(text, &[0..6, 3..9]);
    assert_eq!(shown.highlights, vec![0..3]);
    assert_eq!(shown.html, "<mark>東京都</mark>に住む");
    assert!(snippet("plain", &[]).highlights.is_empty());
}
