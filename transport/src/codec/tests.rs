//! Codec tables: client frames with the exact request or error they produce, and every server
//! event with its exact wire form. These are the examples `docs/PROTOCOL.md` shows.

use expect_test::{Expect, expect};
use switchboard_engine::event::{PresenceEntry, PresenceStatus};
use switchboard_engine::ids::{SessionId, TenantId, UserId};
use switchboard_engine::model::{MessageRef, MessageState, Reaction, ReadCursors};
use switchboard_engine::time::Timestamp;

use super::*;

const CONVERSATION: &str = "01HZZZZZZZZZZZZZZZZZZZZZZZ";

fn check_parse(frame: &str, expect: Expect) {
    let rendered = match parse_client_frame(frame, 200) {
        Ok(request) => format!("{request:?}"),
        Err(frame_error) => {
            let wire = WireError::from(&frame_error.error);
            format!(
                "error id={:?} code={} message={}",
                frame_error.request_id, wire.code, wire.message
            )
        }
    };
    expect.assert_eq(&rendered);
}

#[test]
fn parses_every_request_type() {
    check_parse(
        r#"{"type":"ping","id":7}"#,
        expect!["Ping { request_id: Some(Number(7)) }"],
    );
    check_parse(
        &format!(r#"{{"type":"join","id":"j1","conversation_id":"{CONVERSATION}","since":41}}"#),
        expect![[
            r#"Join { request_id: Some(Text("j1")), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), since: Some(Seq(41)) }"#
        ]],
    );
    check_parse(
        &format!(r#"{{"type":"leave","conversation_id":"{CONVERSATION}","extra":true}}"#),
        expect![
            "Leave { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ) }"
        ],
    );
    check_parse(
        &format!(
            r#"{{"type":"send","id":3,"conversation_id":"{CONVERSATION}","client_id":"c-1","text":"hi","reply_to":null}}"#
        ),
        expect![[
            r#"Send { request_id: Some(Number(3)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("c-1"), text: "hi", reply_to: None, thread_root: None, forwarded_from: None } }"#
        ]],
    );
}

const MESSAGE: &str = "01HF7YAT000000000000000007";

#[test]
fn parses_operations_on_messages() {
    let c = CONVERSATION;
    let m = MESSAGE;
    check_parse(
        &format!(
            r#"{{"type":"edit","id":1,"conversation_id":"{c}","client_id":"e1","message_id":"{m}","text":"new"}}"#
        ),
        expect![[
            r#"Operate { request_id: Some(Number(1)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_operation: NewOperation { client_id: ClientId("e1"), operation: Edit { message_id: MessageId(01HF7YAT000000000000000007), text: "new" } } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"delete","conversation_id":"{c}","client_id":"d1","message_id":"{m}"}}"#
        ),
        expect![[
            r#"Operate { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_operation: NewOperation { client_id: ClientId("d1"), operation: Delete { message_id: MessageId(01HF7YAT000000000000000007), mode: ForEveryone } } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"delete","conversation_id":"{c}","client_id":"d2","message_id":"{m}","mode":"hard"}}"#
        ),
        expect![[
            r#"Operate { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_operation: NewOperation { client_id: ClientId("d2"), operation: Delete { message_id: MessageId(01HF7YAT000000000000000007), mode: Hard } } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"react","conversation_id":"{c}","client_id":"r1","message_id":"{m}","emoji":"👍"}}"#
        ),
        expect![[
            r#"Operate { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_operation: NewOperation { client_id: ClientId("r1"), operation: React { message_id: MessageId(01HF7YAT000000000000000007), emoji: Emoji("👍") } } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"unreact","conversation_id":"{c}","client_id":"r2","message_id":"{m}","emoji":":tada:"}}"#
        ),
        expect![[
            r#"Operate { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_operation: NewOperation { client_id: ClientId("r2"), operation: Unreact { message_id: MessageId(01HF7YAT000000000000000007), emoji: Emoji(":tada:") } } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"send","conversation_id":"{c}","client_id":"t1","text":"in thread","thread_root":"{m}"}}"#
        ),
        expect![[
            r#"Send { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("t1"), text: "in thread", reply_to: None, thread_root: Some(MessageId(01HF7YAT000000000000000007)), forwarded_from: None } }"#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"edit","id":2,"conversation_id":"{c}","client_id":"e1","text":"new"}}"#
        ),
        expect!["error id=Some(Number(2)) code=invalid message=invalid message_id: is required"],
    );
    check_parse(
        &format!(
            r#"{{"type":"react","id":3,"conversation_id":"{c}","client_id":"r1","message_id":"{m}","emoji":"xx"}}"#
        ),
        expect![
            "error id=Some(Number(3)) code=invalid message=invalid emoji: must be a single emoji or a :name:"
        ],
    );
    check_parse(
        &format!(
            r#"{{"type":"delete","id":4,"conversation_id":"{c}","client_id":"d1","message_id":"{m}","mode":"mine"}}"#
        ),
        expect![[
            r#"error id=Some(Number(4)) code=invalid message=invalid mode: must be "for_everyone", "hard" or "for_me""#
        ]],
    );
    check_parse(
        &format!(
            r#"{{"type":"delete","id":5,"conversation_id":"{c}","client_id":"d3","message_id":"{m}","mode":"for_me"}}"#
        ),
        expect![
            "Hide { request_id: Some(Number(5)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), message_id: MessageId(01HF7YAT000000000000000007) }"
        ],
    );
    check_parse(
        &format!(r#"{{"type":"typing","conversation_id":"{c}","state":"start"}}"#),
        expect![
            "Typing { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), started: true }"
        ],
    );
    check_parse(
        r#"{"type":"presence","status":"away"}"#,
        expect!["SetPresence { request_id: None, away: true }"],
    );
    check_parse(
        r#"{"type":"subscribe_presence","id":6,"user_ids":["bob","carol"]}"#,
        expect![[
            r#"SubscribePresence { request_id: Some(Number(6)), user_ids: [UserId("bob"), UserId("carol")] }"#
        ]],
    );
    check_parse(
        r#"{"type":"subscribe_presence","id":7,"user_ids":["not valid"]}"#,
        expect![
            "error id=Some(Number(7)) code=invalid message=invalid user: may contain only ASCII letters, digits and _ - . @ : +"
        ],
    );
    check_parse(
        &format!(r#"{{"type":"read","id":8,"conversation_id":"{c}","seq":12}}"#),
        expect![
            "Receipt { request_id: Some(Number(8)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), read: Some(Seq(12)), delivered: None }"
        ],
    );
    check_parse(
        &format!(r#"{{"type":"delivered","conversation_id":"{c}","seq":14}}"#),
        expect![
            "Receipt { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), read: None, delivered: Some(Seq(14)) }"
        ],
    );
    check_parse(
        &format!(r#"{{"type":"read","id":9,"conversation_id":"{c}"}}"#),
        expect!["error id=Some(Number(9)) code=invalid message=invalid seq: is required"],
    );
}

#[test]
fn refuses_bad_frames_with_codes_and_echoes_the_id() {
    check_parse(
        "not json",
        expect![
            "error id=None code=invalid_json message=the frame is not a valid JSON object: expected a JSON object"
        ],
    );
    check_parse(
        "[1,2]",
        expect![
            "error id=None code=invalid_json message=the frame is not a valid JSON object: expected a JSON object"
        ],
    );
    check_parse(
        r#"{"id":1}"#,
        expect![[r#"error id=Some(Number(1)) code=unknown_type message=the frame has no "type""#]],
    );
    check_parse(
        r#"{"type":"dance","id":2}"#,
        expect![[
            r#"error id=Some(Number(2)) code=unknown_type message=unknown frame type "dance""#
        ]],
    );
    check_parse(
        r#"{"type":"join","id":3}"#,
        expect![
            "error id=Some(Number(3)) code=invalid message=invalid conversation_id: is required"
        ],
    );
    check_parse(
        r#"{"type":"join","id":4,"conversation_id":"x"}"#,
        expect![
            "error id=Some(Number(4)) code=invalid message=invalid conversation_id: must be a 26-character ULID"
        ],
    );
    check_parse(
        r#"{"type":"join","id":5,"conversation_id":"x","since":"yesterday"}"#,
        expect![[
            r#"error id=Some(Number(5)) code=invalid message=invalid frame: invalid type: string "yesterday", expected u64 at line 1 column 63"#
        ]],
    );
    check_parse(
        &format!(r#"{{"type":"send","id":6,"conversation_id":"{CONVERSATION}","text":"hi"}}"#),
        expect!["error id=Some(Number(6)) code=invalid message=invalid client_id: is required"],
    );
    check_parse(
        &format!(
            r#"{{"type":"send","id":7,"conversation_id":"{CONVERSATION}","client_id":"c","text":"hi","reply_to":"nope"}}"#
        ),
        expect![
            "error id=Some(Number(7)) code=invalid message=invalid reply_to: must be a message id"
        ],
    );
    check_parse(
        &"x".repeat(201),
        expect![
            "error id=None code=frame_too_large message=the frame is 201 bytes; the limit is 200"
        ],
    );
    check_parse(
        &format!(r#"{{"type":"ping","id":"{}"}}"#, "i".repeat(65)),
        expect!["error id=None code=invalid message=invalid id: must be at most 64 bytes"],
    );
}

fn check_encode(event: ServerEvent<'_>, expect: Expect) {
    let frame = JsonEventEncoder.encode(&event);
    expect.assert_eq(std::str::from_utf8(frame.bytes()).expect("utf-8"));
}

#[test]
fn encodes_every_server_event() {
    let conversation_id = ConversationId::parse(CONVERSATION).expect("valid");
    let user_id = UserId::parse("alice").expect("valid");
    let tenant_id = TenantId::parse("acme").expect("valid");
    let client_id = ClientId::parse("c-1").expect("valid");
    let request_id = RequestId::Number(3);
    let message_ref = MessageRef {
        message_id: MessageId::from_parts(1_700_000_000_000, 7),
        seq: Seq(46),
        ts: Timestamp(1_700_000_000_000),
    };
    let message = Message {
        conversation_id,
        seq: Seq(46),
        message_id: message_ref.message_id,
        sender_id: user_id.clone(),
        client_id: client_id.clone(),
        text: "hi \"there\"".to_owned(),
        reply_to: None,
        thread_root: None,
        forwarded_from: None,
        ts: message_ref.ts,
        state: MessageState::default(),
    };
    let mut edited = message.clone();
    edited.seq = Seq(40);
    edited.reply_to = Some(MessageId::from_parts(1_700_000_000_000, 5));
    edited.state.edited_at = Some(Timestamp(1_700_000_000_500));
    edited.state.reactions = vec![Reaction {
        emoji: Emoji::parse("👍").expect("valid"),
        user_ids: vec![user_id.clone(), UserId::parse("bob").expect("valid")],
    }];
    edited.state.thread_reply_count = 2;
    edited.state.thread_last_reply_at = Some(Timestamp(1_700_000_000_900));
    let event = |body: ConversationEventBody| {
        LogEntry::Event(ConversationEvent {
            conversation_id,
            seq: Seq(47),
            event_id: MessageId::from_parts(1_700_000_000_001, 8),
            actor_id: user_id.clone(),
            client_id: client_id.clone(),
            ts: Timestamp(1_700_000_000_001),
            body,
        })
    };
    check_encode(
        ServerEvent::Welcome {
            session_id: SessionId::from_parts(1_700_000_000_000, 9),
            user_id: &user_id,
            tenant_id: &tenant_id,
            heartbeat_ms: 25_000,
        },
        expect![[
            r#"{"type":"welcome","session_id":"01HF7YAT000000000000000009","user_id":"alice","tenant_id":"acme","heartbeat_ms":25000,"protocol":1}"#
        ]],
    );
    check_encode(
        ServerEvent::Joined {
            request_id: Some(&request_id),
            conversation_id,
            head: Seq(45),
        },
        expect![[
            r#"{"type":"joined","id":3,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","head":45}"#
        ]],
    );
    check_encode(
        ServerEvent::Left {
            request_id: None,
            conversation_id,
        },
        expect![[r#"{"type":"left","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}"#]],
    );
    check_encode(
        ServerEvent::Ack {
            request_id: Some(&request_id),
            client_id: &client_id,
            outcome: &AckOutcome::Pending,
        },
        expect![[r#"{"type":"ack","id":3,"status":"pending","client_id":"c-1"}"#]],
    );
    check_encode(
        ServerEvent::Ack {
            request_id: Some(&request_id),
            client_id: &client_id,
            outcome: &AckOutcome::Delivered(message_ref),
        },
        expect![[
            r#"{"type":"ack","id":3,"status":"delivered","client_id":"c-1","message_id":"01HF7YAT000000000000000007","seq":46,"ts":1700000000000}"#
        ]],
    );
    check_encode(
        ServerEvent::Ack {
            request_id: Some(&request_id),
            client_id: &client_id,
            outcome: &AckOutcome::Rejected(Error::RateLimited {
                retry_after_ms: 1500,
            }),
        },
        expect![[
            r#"{"type":"ack","id":3,"status":"rejected","client_id":"c-1","code":"rate_limited","message":"rate limited, retry after 1500 ms","retry_after_ms":1500}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&LogEntry::Message(message.clone())),
        expect![[
            r#"{"type":"message","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":46,"message_id":"01HF7YAT000000000000000007","sender_id":"alice","client_id":"c-1","text":"hi \"there\"","ts":1700000000000}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&LogEntry::Message(edited)),
        expect![[
            r#"{"type":"message","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":40,"message_id":"01HF7YAT000000000000000007","sender_id":"alice","client_id":"c-1","text":"hi \"there\"","reply_to":"01HF7YAT000000000000000005","ts":1700000000000,"edited_at":1700000000500,"reactions":[{"emoji":"👍","count":2,"user_ids":["alice","bob"]}],"thread_reply_count":2,"thread_last_reply_at":1700000000900}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&event(ConversationEventBody::MessageEdited {
            message_id: message_ref.message_id,
            text: Some("new text".to_owned()),
        })),
        expect![[
            r#"{"type":"message.edited","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":47,"event_id":"01HF7YAT010000000000000008","actor_id":"alice","client_id":"c-1","ts":1700000000001,"message_id":"01HF7YAT000000000000000007","text":"new text","edited_at":1700000000001}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&event(ConversationEventBody::MessageEdited {
            message_id: message_ref.message_id,
            text: None,
        })),
        expect![[
            r#"{"type":"message.edited","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":47,"event_id":"01HF7YAT010000000000000008","actor_id":"alice","client_id":"c-1","ts":1700000000001,"message_id":"01HF7YAT000000000000000007","edited_at":1700000000001}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&event(ConversationEventBody::MessageDeleted {
            message_id: message_ref.message_id,
            mode: DeleteMode::ForEveryone,
        })),
        expect![[
            r#"{"type":"message.deleted","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":47,"event_id":"01HF7YAT010000000000000008","actor_id":"alice","client_id":"c-1","ts":1700000000001,"message_id":"01HF7YAT000000000000000007","mode":"for_everyone"}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&event(ConversationEventBody::ReactionAdded {
            message_id: message_ref.message_id,
            emoji: Emoji::parse(":tada:").expect("valid"),
            count: 3,
        })),
        expect![[
            r#"{"type":"reaction.added","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":47,"event_id":"01HF7YAT010000000000000008","actor_id":"alice","client_id":"c-1","ts":1700000000001,"message_id":"01HF7YAT000000000000000007","emoji":":tada:","count":3}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&event(ConversationEventBody::ReactionRemoved {
            message_id: message_ref.message_id,
            emoji: Emoji::parse(":tada:").expect("valid"),
            count: 2,
        })),
        expect![[
            r#"{"type":"reaction.removed","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":47,"event_id":"01HF7YAT010000000000000008","actor_id":"alice","client_id":"c-1","ts":1700000000001,"message_id":"01HF7YAT000000000000000007","emoji":":tada:","count":2}"#
        ]],
    );
    check_encode(
        ServerEvent::Receipt {
            request_id: Some(&request_id),
            conversation_id,
            user_id: &user_id,
            cursors: ReadCursors {
                read: Seq(44),
                delivered: Seq(46),
            },
        },
        expect![[
            r#"{"type":"receipt","id":3,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","user_id":"alice","read":44,"delivered":46}"#
        ]],
    );
    check_encode(
        ServerEvent::Skipped {
            conversation_id,
            seq: Seq(48),
        },
        expect![[r#"{"type":"skipped","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":48}"#]],
    );
    check_encode(
        ServerEvent::Hidden {
            request_id: Some(&request_id),
            conversation_id,
            message_id: message_ref.message_id,
        },
        expect![[
            r#"{"type":"hidden","id":3,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","message_id":"01HF7YAT000000000000000007"}"#
        ]],
    );
    check_encode(
        ServerEvent::Typing {
            conversation_id,
            user_id: &user_id,
            started: true,
            expires_in_ms: 6000,
        },
        expect![[
            r#"{"type":"typing","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","user_id":"alice","state":"start","expires_in_ms":6000}"#
        ]],
    );
    let presence = [PresenceEntry {
        user_id: UserId::parse("bob").expect("valid"),
        status: PresenceStatus::Offline,
        last_seen: Some(Timestamp(1_700_000_000_000)),
    }];
    check_encode(
        ServerEvent::PresenceState {
            request_id: Some(&request_id),
            users: &presence,
            refused: &[UserId::parse("carol").expect("valid")],
        },
        expect![[
            r#"{"type":"presence_state","id":3,"users":[{"user_id":"bob","status":"offline","last_seen":1700000000000}],"refused":["carol"]}"#
        ]],
    );
    check_encode(
        ServerEvent::Presence {
            request_id: None,
            user_id: &user_id,
            status: PresenceStatus::Away,
            last_seen: None,
        },
        expect![[r#"{"type":"presence","user_id":"alice","status":"away"}"#]],
    );
    check_encode(
        ServerEvent::Pong { request_id: None },
        expect![[r#"{"type":"pong"}"#]],
    );
    check_encode(
        ServerEvent::Error {
            request_id: Some(&request_id),
            error: &Error::NotMember,
        },
        expect![[
            r#"{"type":"error","id":3,"code":"not_member","message":"not a member of this conversation"}"#
        ]],
    );
}
