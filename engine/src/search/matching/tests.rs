//! The query language's meaning over analysed text: words, phrases, exclusions, prefixes, CJK
//! substrings, match ranges, and the filters.

use super::*;
use crate::ids::{ConversationId, MessageId, Seq, TenantId, UserId};
use crate::time::Timestamp;

fn found(query: &str, text: &str) -> Option<Vec<&'static str>> {
    let analyzer = Analyzer::new();
    let compiled = CompiledQuery::new(&analyzer, &SearchQuery::parse(query).expect("parses"));
    let text: &'static str = Box::leak(text.to_owned().into_boxed_str());
    compiled
        .matches(&analyzer.tokens(text, Purpose::Index))
        .map(|ranges| ranges.into_iter().map(|range| &text[range]).collect())
}

#[test]
fn words_phrases_and_prefixes_match_where_they_are() {
    let text = "Deploying the release notes today, not the draft.";
    assert_eq!(
        found(r#"deploy "release notes""#, text),
        Some(vec!["Deploying", "release", "notes"])
    );
    assert_eq!(found("DEPLOYED", text), Some(vec!["Deploying"]));
    assert_eq!(found("deplo* tod*", text), Some(vec!["Deploying", "today"]));
    assert_eq!(found("release -draft", text), None, "excluded");
    assert_eq!(
        found(r#"release -"draft plan""#, text),
        Some(vec!["release"])
    );
    assert_eq!(
        found(r#""notes release""#, text),
        None,
        "a phrase keeps its order"
    );
    assert_eq!(
        found("release missing", text),
        None,
        "every word is required"
    );
    assert_eq!(found("café", "Cafe au lait"), Some(vec!["Cafe"]));
}

#[test]
fn a_word_of_several_terms_is_a_phrase() {
    assert_eq!(found("e-mail", "send an e-mail"), Some(vec!["e", "mail"]));
    assert_eq!(found("e-mail", "the mail e"), None);
}

#[test]
fn chinese_and_japanese_are_found_by_substrings() {
    let text = "東京都に住む";
    assert_eq!(found("東京", text), Some(vec!["東京"]));
    assert_eq!(found("京都", text), Some(vec!["京都"]));
    assert_eq!(found("都に住", text), Some(vec!["都に住"]));
    assert_eq!(found("住", text), Some(vec!["住"]));
    assert_eq!(found("都東", text), None);
}

#[test]
fn the_filters_read_the_document() {
    let document = SearchDocument {
        tenant_id: TenantId::parse("acme").expect("valid"),
        conversation_id: ConversationId::from_parts(1, 1),
        message_id: MessageId::from_parts(1, 2),
        seq: Seq(3),
        sender_id: UserId::parse("alice").expect("valid"),
        // 2026-01-02T12:00:00Z
        sent_at: Timestamp(1_767_355_200_000),
        text: "hello".to_owned(),
        has_attachment: false,
    };
    let passes =
        |query: &str| passes_filters(&SearchQuery::parse(query).expect("parses"), &document);
    assert!(passes("hello from:alice from:bob"));
    assert!(!passes("hello from:bob"));
    assert!(passes("hello in:00000000010000000000000001"));
    assert!(!passes("hello in:00000000010000000000000002"));
    assert!(!passes("hello has:attachment"));
    assert!(passes("after:2026-01-01 before:2026-01-03"));
    assert!(!passes("after:2026-01-02"));
    assert!(!passes("before:2026-01-02"));
}
