//! Table tests for the validation rules: each input with the exact verdict a client would see.

use expect_test::{Expect, expect};

use super::*;
use crate::ids::ClientId;

fn check_text(text: &str, expect: Expect) {
    let new_message = NewMessage {
        client_id: ClientId::parse("c1").expect("valid client id"),
        text: text.to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        attachments: Vec::new(),
    };
    let limits = MessageLimits {
        max_text_bytes: 8,
        ..MessageLimits::default()
    };
    let verdict = match validate_new_message(&new_message, &limits) {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    expect.assert_eq(&verdict);
}

#[test]
fn message_text() {
    check_text("hi", expect!["ok"]);
    check_text("12345678", expect!["ok"]);
    check_text("123456789", expect!["text is too large: 9, the limit is 8"]);
    check_text("ééééé", expect!["text is too large: 10, the limit is 8"]);
    check_text("", expect!["invalid text: must not be empty"]);
    check_text("  \n", expect!["invalid text: must not be empty"]);
    check_text(
        "a\0b",
        expect!["invalid text: must not contain NUL characters"],
    );
}

fn check_conversation(
    kind: ConversationKind,
    title: Option<&str>,
    n_other_members: usize,
    creator_listed: bool,
    expect: Expect,
) {
    let verdict = match validate_new_conversation(kind, title, n_other_members, creator_listed, 10)
    {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    expect.assert_eq(&verdict);
}

#[test]
fn new_conversations() {
    use ConversationKind::*;
    check_conversation(Group, Some("team"), 3, false, expect!["ok"]);
    check_conversation(Group, None, 0, false, expect!["ok"]);
    check_conversation(Direct, None, 1, false, expect!["ok"]);
    check_conversation(
        Direct,
        None,
        2,
        false,
        expect!["invalid members: a direct conversation names exactly one other user"],
    );
    check_conversation(
        Direct,
        None,
        1,
        true,
        expect!["invalid members: a direct conversation names exactly one other user"],
    );
    check_conversation(
        Channel,
        Some(" "),
        0,
        false,
        expect!["invalid title: must not be blank when present"],
    );
    check_conversation(
        Group,
        None,
        10,
        false,
        expect!["members is too large: 11, the limit is 10"],
    );
}
