//! Table tests for id parsing: what is accepted, and the exact error for what is not.

use expect_test::{Expect, expect};

use super::*;

fn check(input: &str, expect: Expect) {
    let rendered = match UserId::parse(input) {
        Ok(user_id) => format!("ok {user_id}"),
        Err(error) => format!("err {error}"),
    };
    expect.assert_eq(&rendered);
}

#[test]
fn user_ids() {
    check("alice", expect!["ok alice"]);
    check("alice@example.com", expect!["ok alice@example.com"]);
    check("u-1_2.3:4+5", expect!["ok u-1_2.3:4+5"]);
    check("", expect!["err invalid user: must not be empty"]);
    check(
        "has space",
        expect!["err invalid user: may contain only ASCII letters, digits and _ - . @ : +"],
    );
    check(
        "ünïcode",
        expect!["err invalid user: may contain only ASCII letters, digits and _ - . @ : +"],
    );
    check(
        &"x".repeat(129),
        expect!["err invalid user: must be at most 128 bytes"],
    );
}

#[test]
fn ulid_ids_round_trip_through_text_and_bytes() {
    let conversation_id = ConversationId::from_parts(1_700_000_000_000, 42);
    let text = conversation_id.to_string();
    assert_eq!(text.len(), 26);
    assert_eq!(ConversationId::parse(&text), Ok(conversation_id));
    assert_eq!(
        ConversationId::from_bytes(conversation_id.to_bytes()),
        conversation_id
    );
    expect!["err invalid conversation_id: must be a 26-character ULID"].assert_eq(&format!(
        "err {}",
        ConversationId::parse("nope").expect_err("not a ulid")
    ));
}

#[test]
fn request_ids_are_bounded() {
    assert!(RequestId::text("a".repeat(64)).is_ok());
    assert!(RequestId::text("a".repeat(65)).is_err());
}

#[test]
fn emoji_reactions() {
    let accepted = [
        "👍",
        "👍🏽",
        "❤️",
        "🇫🇷",
        "👨‍👩‍👧",
        ":party_parrot:",
        ":+1:",
        ":a-b:",
    ];
    for input in accepted {
        assert!(Emoji::parse(input).is_ok(), "{input:?} should be accepted");
    }
    let refused = [
        ("", "invalid emoji: must be a single emoji or a :name:"),
        ("👍👍", "invalid emoji: must be a single emoji or a :name:"),
        ("a", "invalid emoji: must be a single emoji or a :name:"),
        ("👍 ", "invalid emoji: must be a single emoji or a :name:"),
        (
            "::",
            "invalid emoji: a :name: reaction is at most 34 bytes of lowercase letters, digits, _ + -",
        ),
        (
            ":Upper:",
            "invalid emoji: a :name: reaction is at most 34 bytes of lowercase letters, digits, _ + -",
        ),
    ];
    for (input, message) in refused {
        match Emoji::parse(input) {
            Ok(_) => panic!("{input:?} should be refused"),
            Err(error) => assert_eq!(error.to_string(), message, "for {input:?}"),
        }
    }
    let too_long = format!(":{}:", "a".repeat(33));
    assert!(Emoji::parse(&too_long).is_err());
}
