//! The query language: what each form parses to, and every refusal with its position.

use proptest::prelude::*;

use super::*;

fn parsed(text: &str) -> SearchQuery {
    SearchQuery::parse(text).unwrap_or_else(|error| panic!("{text:?} parses: {error}"))
}

fn refusal(text: &str) -> String {
    match SearchQuery::parse(text) {
        Err(Error::Invalid { field, reason }) => {
            assert_eq!(field, "q");
            reason
        }
        other => panic!("{text:?} is refused, not {other:?}"),
    }
}

fn word(text: &str) -> Clause {
    Clause::Word(text.to_owned())
}

#[test]
fn words_phrases_exclusions_and_prefixes() {
    let query = parsed(r#"  launch "release notes" -draft -"old plan" deplo* naïve  "#);
    assert_eq!(
        query.required,
        vec![
            word("launch"),
            Clause::Phrase("release notes".to_owned()),
            Clause::Prefix("deplo".to_owned()),
            word("naïve"),
        ]
    );
    assert_eq!(
        query.excluded,
        vec![word("draft"), Clause::Phrase("old plan".to_owned())]
    );
    assert!(!query.has_filter());
    // A quote inside a word starts a phrase; a dash inside a word is part of it.
    let query = parsed(r#"e-mail"to bob""#);
    assert_eq!(
        query.required,
        vec![word("e-mail"), Clause::Phrase("to bob".to_owned())]
    );
    // Punctuation alone is left out; a colon that names no filter is part of a word.
    let query = parsed("- ... https://example.com 10:30 **hey");
    assert_eq!(
        query.required,
        vec![word("https://example.com"), word("10:30"), word("**hey")]
    );
}

#[test]
fn filters() {
    let query = parsed(
        "report FROM:alice from:bob from:alice in:01JB0000000000000000000000 has:Attachment \
         after:2026-01-01 before:2026-01-03",
    );
    assert_eq!(query.required, vec![word("report")]);
    assert_eq!(
        query.from,
        vec![
            UserId::parse("alice").expect("valid"),
            UserId::parse("bob").expect("valid")
        ]
    );
    assert_eq!(
        query.conversations,
        vec![ConversationId::parse("01JB0000000000000000000000").expect("valid")]
    );
    assert!(query.has_attachment);
    // 2 January 2026, UTC: from the end of the 1st to the start of the 3rd.
    assert_eq!(query.after, Some(Timestamp(1_767_312_000_000)));
    assert_eq!(query.before, Some(Timestamp(1_767_398_400_000)));
    // Filters alone are a query.
    assert!(parsed("from:alice").has_filter());
}

#[test]
fn dates_are_days_in_utc() {
    assert_eq!(day_start("1970-01-01"), Some(Timestamp(0)));
    assert_eq!(day_start("2000-03-01"), Some(Timestamp(951_868_800_000)));
    assert_eq!(day_start("2024-02-29"), Some(Timestamp(1_709_164_800_000)));
    assert_eq!(
        day_start("9999-12-31"),
        Some(Timestamp(253_402_214_400_000))
    );
    for bad in [
        "2023-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "1969-12-31",
        "2026-1-01",
        "2026/01/01",
        "yesterday",
        "+026-01-01",
        "2026-01-0١",
    ] {
        assert_eq!(day_start(bad), None, "{bad}");
    }
}

#[test]
fn bad_queries_are_refused_saying_what_and_where() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("   ", "empty"),
        ("-draft", "only excludes"),
        (r#"hello "world"#, "quote at character 7 is never closed"),
        ("*", "lone *"),
        ("ok **", "lone * at character 4"),
        ("a*", "too short"),
        ("from:", "from: at character 1 needs a value"),
        (
            "x from:al/ice",
            "from:al/ice at character 3 is not a user id",
        ),
        ("in:general", "not a conversation id"),
        ("has:link", "not a known has: filter"),
        ("before:2026-02-30", "not a date"),
        ("after:tomorrow", "not a date"),
        ("before:2026-01-01 before:2026-01-02", "given twice"),
        (
            "after:2026-01-02 before:2026-01-03",
            "after: must be a day before",
        ),
        ("-from:alice report", "cannot be excluded"),
        (
            "tab\tis fine but bell \u{7} is not",
            "character 22 is a control character",
        ),
    ];
    for (text, expected) in cases {
        let reason = refusal(text);
        assert!(reason.contains(expected), "{text:?}: {reason}");
    }
    let long = "a".repeat(MAX_QUERY_BYTES + 1);
    assert!(refusal(&long).contains("at most 1024"));
    let many = vec!["word"; MAX_QUERY_TERMS + 1].join(" ");
    assert!(refusal(&many).contains("more than 32 terms"));
    let phrase_words = format!("\"{}\"", vec!["w"; MAX_QUERY_TERMS + 1].join(" "));
    assert!(refusal(&phrase_words).contains("more than 32 terms"));
    assert_eq!(
        parsed(&vec!["word"; MAX_QUERY_TERMS].join(" "))
            .required
            .len(),
        MAX_QUERY_TERMS
    );
}

proptest! {
    /// Any text within the size limit parses or is refused as invalid; it never panics, and
    /// what parses keeps its promises.
    #[test]
    fn any_text_parses_or_is_refused(text in "\\PC{0,80}|[a-z\"* :-]{0,80}") {
        match SearchQuery::parse(&text) {
            Ok(query) => {
                prop_assert!(!query.required.is_empty() || query.has_filter());
                for clause in query.required.iter().chain(&query.excluded) {
                    if let Clause::Prefix(prefix) = clause {
                        prop_assert!(prefix.chars().count() >= MIN_PREFIX_CHARS);
                    }
                }
            }
            Err(Error::Invalid { field, .. }) => prop_assert_eq!(field, "q"),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
