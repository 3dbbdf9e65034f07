//! Table tests for the forwarding rules: each request with the exact verdict a client would see,
//! and each original with the copy a forward makes of it.

use expect_test::{Expect, expect};

use super::*;
use crate::ids::Seq;
use crate::model::{DeleteMode, Deletion, MessageState};
use crate::test_fixtures::user;
use crate::time::Timestamp;

const LIMITS: ForwardLimits = ForwardLimits {
    max_messages: 3,
    max_targets: 2,
};

fn message_id(n: u128) -> MessageId {
    MessageId::from_parts(0, n)
}

fn conversation_id(n: u128) -> ConversationId {
    ConversationId::from_parts(0, n)
}

/// Names each of `ids` `<prefix><n>` by the number in `numbers` it was made from.
fn named<Id: PartialEq>(
    ids: &[Id],
    numbers: &[u128],
    make: fn(u128) -> Id,
    prefix: &str,
) -> String {
    let names: Vec<String> = ids
        .iter()
        .map(|id| {
            let n = numbers.iter().find(|n| make(**n) == *id);
            format!("{prefix}{}", n.expect("a named id"))
        })
        .collect();
    names.join(" ")
}

/// Checks a request to forward messages `m<n>` into conversations `c<n>`; the verdict names
/// them by number, in the plan's order.
fn check(messages: &[u128], targets: &[u128], client_id: &str, expect: Expect) {
    let client_id = ClientId::parse(client_id).expect("valid client id");
    let verdict = match check_forward(
        messages.iter().copied().map(message_id).collect(),
        targets.iter().copied().map(conversation_id).collect(),
        &client_id,
        LIMITS,
    ) {
        Ok(plan) => format!(
            "ok: {} into {}",
            named(&plan.message_ids, messages, message_id, "m"),
            named(&plan.targets, targets, conversation_id, "c"),
        ),
        Err(error) => error.to_string(),
    };
    expect.assert_eq(&verdict);
}

#[test]
fn forward_requests() {
    check(&[1], &[7], "f1", expect!["ok: m1 into c7"]);
    check(
        &[2, 1, 2, 3, 1],
        &[8, 7, 8],
        "f1",
        expect!["ok: m2 m1 m3 into c8 c7"],
    );
    check(
        &[],
        &[7],
        "f1",
        expect!["invalid message_ids: must name at least one message"],
    );
    check(
        &[1],
        &[],
        "f1",
        expect!["invalid to: must name at least one conversation"],
    );
    check(
        &[],
        &[],
        "f1",
        expect!["invalid message_ids: must name at least one message"],
    );
    check(
        &[1, 2, 3, 4],
        &[7],
        "f1",
        expect!["message_ids is too large: 4, the limit is 3"],
    );
    check(
        &[1],
        &[7, 8, 9],
        "f1",
        expect!["to is too large: 3, the limit is 2"],
    );
    check(
        &[1, 2, 3, 4],
        &[7, 8, 9],
        "f1",
        expect!["message_ids is too large: 4, the limit is 3"],
    );
    check(&[1], &[7], &"x".repeat(62), expect!["ok: m1 into c7"]);
    check(
        &[1],
        &[7],
        &"x".repeat(63),
        expect![
            "invalid client_id: must be at most 62 bytes for a forward (each copy appends +<index>)"
        ],
    );
    check(
        &[1, 2, 3, 4],
        &[7],
        &"x".repeat(63),
        expect!["message_ids is too large: 4, the limit is 3"],
    );
}

fn original(forwarded_from: Option<ForwardedFrom>, deleted: bool) -> Message {
    Message {
        conversation_id: conversation_id(1),
        seq: Seq(4),
        message_id: message_id(5),
        sender_id: user("alice"),
        client_id: ClientId::parse("a1").expect("valid client id"),
        text: "hello".to_owned(),
        reply_to: Some(message_id(3)),
        thread_root: Some(message_id(2)),
        forwarded_from,
        ts: Timestamp(10),
        state: MessageState {
            deleted: deleted.then(|| Deletion {
                mode: DeleteMode::ForEveryone,
                deleted_by: user("alice"),
                deleted_at: Timestamp(11),
            }),
            ..MessageState::default()
        },
        attachments: Vec::new(),
    }
}

fn check_copy(original: &Message, index: usize, expect: Expect) {
    let verdict = check_original(original)
        .and_then(|()| {
            forwarded_copy(
                conversation_id(1),
                original,
                &ClientId::parse("f1").expect("valid client id"),
                index,
            )
        })
        .map_or_else(
            |error| error.to_string(),
            |copy| {
                let origin = copy.forwarded_from.expect("a copy names its origin");
                let conversation = if origin.conversation_id == conversation_id(1) {
                    "c1"
                } else {
                    "elsewhere"
                };
                let message = if origin.message_id == message_id(5) {
                    "m5"
                } else {
                    "another message"
                };
                format!(
                    "{} {:?} reply_to={:?} thread_root={:?} from {conversation}/{message} by {}",
                    copy.client_id, copy.text, copy.reply_to, copy.thread_root, origin.sender_id,
                )
            },
        );
    expect.assert_eq(&verdict);
}

#[test]
fn forwarded_copies() {
    check_copy(
        &original(None, false),
        0,
        expect![[r#"f1+0 "hello" reply_to=None thread_root=None from c1/m5 by alice"#]],
    );
    check_copy(
        &original(None, false),
        12,
        expect![[r#"f1+12 "hello" reply_to=None thread_root=None from c1/m5 by alice"#]],
    );
    let first = ForwardedFrom {
        conversation_id: conversation_id(9),
        message_id: message_id(9),
        sender_id: user("carol"),
    };
    check_copy(
        &original(Some(first), false),
        0,
        expect![[
            r#"f1+0 "hello" reply_to=None thread_root=None from elsewhere/another message by carol"#
        ]],
    );
    check_copy(
        &original(None, true),
        0,
        expect!["conflict: message 00000000000000000000000005 was deleted"],
    );
}
