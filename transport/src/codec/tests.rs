//! Codec tables: client frames with the exact request or error they produce, and every server
//! event with its exact wire form. These are the examples `docs/PROTOCOL.md` shows.

use expect_test::{Expect, expect};
use switchboard_engine::Error;
use switchboard_engine::event::{
    AckOutcome, EventEncoder as _, PresenceEntry, PresenceStatus, ServerEvent,
};
use switchboard_engine::ids::{
    ClientId, ConversationId, Emoji, MediaId, MessageId, RequestId, Seq, SessionId, TenantId,
    UserId,
};
use switchboard_engine::media::{AttachedThumbnail, Attachment, Dimensions};
use switchboard_engine::model::{
    DeleteMode, Message, MessageRef, MessageState, Reaction, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, ConversationEventBody, LogEntry};
use switchboard_engine::time::Timestamp;

use crate::wire_error::WireError;

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
            r#"Send { request_id: Some(Number(3)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("c-1"), text: "hi", reply_to: None, thread_root: None, forwarded_from: None, attachments: [] } }"#
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
            r#"Send { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("t1"), text: "in thread", reply_to: None, thread_root: Some(MessageId(01HF7YAT000000000000000007)), forwarded_from: None, attachments: [] } }"#
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
        &format!(r#"{{"type":"typing","conversation_id":"{c}","state":"stop"}}"#),
        expect![
            "Typing { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), started: false }"
        ],
    );
    check_parse(
        r#"{"type":"presence","status":"online"}"#,
        expect!["SetPresence { request_id: None, away: false }"],
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
        attachments: Vec::new(),
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
    let mut with_photo = message.clone();
    with_photo.text = String::new();
    with_photo.attachments = vec![Attachment {
        media_id: MediaId::from_parts(1_700_000_000_000, 11),
        file_name: "beach.jpg".to_owned(),
        mime: "image/jpeg".to_owned(),
        size_bytes: 52_431,
        dimensions: Some(Dimensions {
            width: 1600,
            height: 1200,
        }),
        thumbnails: vec![AttachedThumbnail {
            size: 256,
            dimensions: Dimensions {
                width: 256,
                height: 192,
            },
            mime: "image/webp".to_owned(),
        }],
        deleted: false,
    }];
    let mut with_deleted_file = message.clone();
    with_deleted_file.attachments = vec![Attachment {
        media_id: MediaId::from_parts(1_700_000_000_000, 12),
        file_name: "notes.pdf".to_owned(),
        mime: "application/pdf".to_owned(),
        size_bytes: 9_001,
        dimensions: None,
        thumbnails: Vec::new(),
        deleted: true,
    }];
    check_encode(
        ServerEvent::Entry(&LogEntry::Message(with_photo)),
        expect![[
            r#"{"type":"message","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":46,"message_id":"01HF7YAT000000000000000007","sender_id":"alice","client_id":"c-1","text":"","attachments":[{"media_id":"01HF7YAT00000000000000000B","file_name":"beach.jpg","content_type":"image/jpeg","size_bytes":52431,"dimensions":{"width":1600,"height":1200},"thumbnails":[{"size":256,"dimensions":{"width":256,"height":192},"content_type":"image/webp"}]}],"ts":1700000000000}"#
        ]],
    );
    check_encode(
        ServerEvent::Entry(&LogEntry::Message(with_deleted_file)),
        expect![[
            r#"{"type":"message","conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","seq":46,"message_id":"01HF7YAT000000000000000007","sender_id":"alice","client_id":"c-1","text":"hi \"there\"","attachments":[{"media_id":"01HF7YAT00000000000000000C","file_name":"notes.pdf","content_type":"application/pdf","size_bytes":9001,"deleted":true}],"ts":1700000000000}"#
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

/// Each frame's request or error, one per line.
fn check_parse_all<S: AsRef<str>>(frames: &[S], expect: Expect) {
    let rendered: Vec<String> = frames
        .iter()
        .map(|frame| match parse_client_frame(frame.as_ref(), 1000) {
            Ok(request) => format!("{request:?}"),
            Err(frame_error) => {
                let wire = WireError::from(&frame_error.error);
                format!(
                    "error id={:?} code={} message={}",
                    frame_error.request_id, wire.code, wire.message
                )
            }
        })
        .collect();
    expect.assert_eq(&rendered.join("\n"));
}

#[test]
fn parses_membership_frames_and_refuses_their_mistakes() {
    let c = CONVERSATION;
    let frames = [
        format!(
            r#"{{"type":"add_members","id":1,"conversation_id":"{c}","client_id":"a1","user_ids":["bob","carol"]}}"#
        ),
        format!(r#"{{"type":"add_members","id":2,"conversation_id":"{c}","client_id":"a2"}}"#),
        format!(
            r#"{{"type":"add_members","id":3,"conversation_id":"{c}","client_id":"a3","user_ids":["bad user"]}}"#
        ),
        format!(
            r#"{{"type":"remove_member","id":4,"conversation_id":"{c}","client_id":"r1","user_id":"bob"}}"#
        ),
        format!(r#"{{"type":"remove_member","id":5,"conversation_id":"{c}","client_id":"r2"}}"#),
        format!(r#"{{"type":"leave_conversation","conversation_id":"{c}","client_id":"l1"}}"#),
        format!(r#"{{"type":"leave_conversation","id":6,"conversation_id":"{c}"}}"#),
        format!(
            r#"{{"type":"change_role","id":7,"conversation_id":"{c}","client_id":"c1","user_id":"bob","role":"moderator"}}"#
        ),
        format!(
            r#"{{"type":"change_role","id":8,"conversation_id":"{c}","client_id":"c2","user_id":"bob","role":"owner"}}"#
        ),
        format!(
            r#"{{"type":"change_role","id":9,"conversation_id":"{c}","client_id":"c3","role":"owner"}}"#
        ),
        format!(
            r#"{{"type":"transfer_ownership","id":10,"conversation_id":"{c}","client_id":"t1","user_id":"bob"}}"#
        ),
        format!(
            r#"{{"type":"moderate","id":11,"conversation_id":"{c}","client_id":"m1","user_id":"bob","action":"mute","duration_ms":60000,"reason":"spam"}}"#
        ),
        format!(
            r#"{{"type":"moderate","id":12,"conversation_id":"{c}","client_id":"m2","action":"shout"}}"#
        ),
        format!(
            r#"{{"type":"moderate","id":13,"conversation_id":"{c}","client_id":"m3","action":"ban"}}"#
        ),
        r#"{"type":"moderate","id":14,"client_id":"m4","action":"ban","user_id":"bob"}"#.to_owned(),
    ];
    check_parse_all(
        &frames,
        expect![[r#"
        Change { request_id: Some(Number(1)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("a1"), change: AddMembers { user_ids: [UserId("bob"), UserId("carol")] } }
        error id=Some(Number(2)) code=invalid message=invalid user_ids: is required
        error id=Some(Number(3)) code=invalid message=invalid user: may contain only ASCII letters, digits and _ - . @ : +
        Change { request_id: Some(Number(4)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("r1"), change: RemoveMember { user_id: UserId("bob") } }
        error id=Some(Number(5)) code=invalid message=invalid user_id: is required
        Change { request_id: None, conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("l1"), change: Leave }
        error id=Some(Number(6)) code=invalid message=invalid client_id: is required
        Change { request_id: Some(Number(7)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("c1"), change: ChangeRole { user_id: UserId("bob"), role: Moderator } }
        Change { request_id: Some(Number(8)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("c2"), change: ChangeRole { user_id: UserId("bob"), role: Owner } }
        error id=Some(Number(9)) code=invalid message=invalid user_id: is required
        Change { request_id: Some(Number(10)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("t1"), change: TransferOwnership { user_id: UserId("bob") } }
        Change { request_id: Some(Number(11)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), client_id: ClientId("m1"), change: Moderate { action: Mute, user_id: UserId("bob"), duration_ms: Some(60000), reason: Some("spam") } }
        error id=Some(Number(12)) code=invalid message=invalid action: must be kick, ban, unban, mute or unmute
        error id=Some(Number(13)) code=invalid message=invalid user_id: is required
        error id=Some(Number(14)) code=invalid message=invalid conversation_id: is required"#]],
    );
}

#[test]
fn parses_call_frames_and_refuses_their_mistakes() {
    let c = CONVERSATION;
    let call = "01HF7YAT000000000000000009";
    let recording = "01HF7YAT00000000000000000A";
    let frames = [
        format!(r#"{{"type":"call.invite","id":1,"conversation_id":"{c}","kind":"video"}}"#),
        format!(r#"{{"type":"call.invite","id":2,"conversation_id":"{c}"}}"#),
        format!(r#"{{"type":"call.invite","id":3,"conversation_id":"{c}","kind":"hologram"}}"#),
        format!(r#"{{"type":"call.accept","id":4,"conversation_id":"{c}","call_id":"{call}"}}"#),
        format!(r#"{{"type":"call.reject","id":5,"conversation_id":"{c}","call_id":"nope"}}"#),
        format!(r#"{{"type":"call.cancel","id":6,"conversation_id":"{c}"}}"#),
        format!(r#"{{"type":"call.hangup","id":7,"conversation_id":"{c}","call_id":"{call}"}}"#),
        format!(
            r#"{{"type":"call.offer","id":8,"conversation_id":"{c}","call_id":"{call}","to_user_id":"bob","sdp":"v=0"}}"#
        ),
        format!(
            r#"{{"type":"call.answer","id":9,"conversation_id":"{c}","call_id":"{call}","to_user_id":"bob"}}"#
        ),
        format!(
            r#"{{"type":"call.answer","id":10,"conversation_id":"{c}","call_id":"{call}","sdp":"v=0"}}"#
        ),
        format!(
            r#"{{"type":"call.ice_candidate","id":11,"conversation_id":"{c}","call_id":"{call}","to_user_id":"bob","candidate":"candidate:1","sdp_mid":"0","sdp_mline_index":0}}"#
        ),
        format!(
            r#"{{"type":"call.ice_candidate","id":12,"conversation_id":"{c}","call_id":"{call}","to_user_id":"bob"}}"#
        ),
        format!(
            r#"{{"type":"call.recording.request","id":13,"conversation_id":"{c}","call_id":"{call}"}}"#
        ),
        format!(
            r#"{{"type":"call.recording.consent","id":14,"conversation_id":"{c}","call_id":"{call}","recording_id":"{recording}","granted":true}}"#
        ),
        format!(
            r#"{{"type":"call.recording.consent","id":15,"conversation_id":"{c}","call_id":"{call}","recording_id":"{recording}"}}"#
        ),
        format!(
            r#"{{"type":"call.recording.stop","id":16,"conversation_id":"{c}","call_id":"{call}","recording_id":"bad"}}"#
        ),
        format!(
            r#"{{"type":"call.recording.stop","id":17,"conversation_id":"{c}","call_id":"{call}"}}"#
        ),
        r#"{"type":"call.accept","id":18}"#.to_owned(),
    ];
    check_parse_all(
        &frames,
        expect![[r#"
        Call { request_id: Some(Number(1)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: Invite { kind: Video } }
        error id=Some(Number(2)) code=invalid message=invalid kind: is required
        error id=Some(Number(3)) code=invalid message=invalid kind: must be "audio" or "video"
        Call { request_id: Some(Number(4)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: Accept { call_id: CallId(01HF7YAT000000000000000009) } }
        error id=Some(Number(5)) code=invalid message=invalid call_id: must be a call id
        error id=Some(Number(6)) code=invalid message=invalid call_id: is required
        Call { request_id: Some(Number(7)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: HangUp { call_id: CallId(01HF7YAT000000000000000009) } }
        Call { request_id: Some(Number(8)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: Signal { call_id: CallId(01HF7YAT000000000000000009), to: UserId("bob"), payload: Offer { sdp: "v=0" } } }
        error id=Some(Number(9)) code=invalid message=invalid sdp: is required
        error id=Some(Number(10)) code=invalid message=invalid to_user_id: is required
        Call { request_id: Some(Number(11)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: Signal { call_id: CallId(01HF7YAT000000000000000009), to: UserId("bob"), payload: IceCandidate { candidate: "candidate:1", sdp_mid: Some("0"), sdp_mline_index: Some(0) } } }
        error id=Some(Number(12)) code=invalid message=invalid candidate: is required
        Call { request_id: Some(Number(13)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: RequestRecording { call_id: CallId(01HF7YAT000000000000000009) } }
        Call { request_id: Some(Number(14)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), action: AnswerRecording { call_id: CallId(01HF7YAT000000000000000009), recording_id: RecordingId(01HF7YAT00000000000000000A), granted: true } }
        error id=Some(Number(15)) code=invalid message=invalid granted: is required
        error id=Some(Number(16)) code=invalid message=invalid recording_id: must be a recording id
        error id=Some(Number(17)) code=invalid message=invalid recording_id: is required
        error id=Some(Number(18)) code=invalid message=invalid conversation_id: is required"#]],
    );
}

#[test]
fn refuses_frame_level_mistakes_before_looking_at_the_type() {
    let frames = [
        // A field of the wrong type is refused whatever the frame's type uses.
        r#"{"type":"ping","id":1,"seq":"x"}"#,
        r#"{"id":2,"granted":"yes"}"#,
        r#"{"type":"dance","id":3,"user_ids":"bob"}"#,
        r#"{"type":"ping","id":4,"type":"ping"}"#,
        r#"{"type":7,"id":5}"#,
        r#"{"type":"ping","id":{"a":1}}"#,
        r#"{"type":"ping","id":6"#,
        r#"{"type":"turn_credentials","id":"t","ttl_secs":600}"#,
        r#"{"type":"presence","id":8,"status":"busy"}"#,
        r#"{"type":"typing","id":9,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ"}"#,
        r#"{"type":"subscribe_presence","id":10}"#,
        r#"{"type":"leave","id":11}"#,
        r#"{"type":"send","id":12,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","client_id":"c"}"#,
        r#"{"type":"send","id":13,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","client_id":"c","text":"hi","thread_root":"x"}"#,
        r#"{"type":"unreact","id":14,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","client_id":"c","message_id":"01HF7YAT000000000000000007"}"#,
        r#"{"type":"edit","id":15,"conversation_id":"01HZZZZZZZZZZZZZZZZZZZZZZZ","client_id":"c","message_id":"bad","text":"t"}"#,
    ];
    check_parse_all(
        &frames,
        expect![[r#"
        error id=Some(Number(1)) code=invalid message=invalid frame: invalid type: string "x", expected u64 at line 1 column 31
        error id=Some(Number(2)) code=invalid message=invalid frame: invalid type: string "yes", expected a boolean at line 1 column 23
        error id=Some(Number(3)) code=invalid message=invalid frame: invalid type: string "bob", expected a sequence at line 1 column 39
        error id=Some(Number(4)) code=invalid message=invalid frame: duplicate field `type` at line 1 column 28
        error id=Some(Number(5)) code=invalid message=invalid frame: invalid type: integer `7`, expected a string at line 1 column 9
        error id=None code=invalid message=invalid frame: data did not match any variant of untagged enum WireRequestId at line 1 column 28
        error id=None code=invalid_json message=the frame is not a valid JSON object: EOF while parsing an object at line 1 column 21
        IceServers { request_id: Some(Text("t")), ttl_secs: Some(600) }
        error id=Some(Number(8)) code=invalid message=invalid status: must be "online" or "away"
        error id=Some(Number(9)) code=invalid message=invalid state: must be "start" or "stop"
        error id=Some(Number(10)) code=invalid message=invalid user_ids: is required
        error id=Some(Number(11)) code=invalid message=invalid conversation_id: is required
        error id=Some(Number(12)) code=invalid message=invalid text: is required
        error id=Some(Number(13)) code=invalid message=invalid thread_root: must be a message id
        error id=Some(Number(14)) code=invalid message=invalid emoji: is required
        error id=Some(Number(15)) code=invalid message=invalid message_id: must be a message id"#]],
    );
}

#[test]
fn parses_attachments_on_a_send_and_refuses_their_mistakes() {
    let c = CONVERSATION;
    let photo = "01HF7YAT00000000000000000B";
    let frames = [
        // A caption and a photo.
        format!(
            r#"{{"type":"send","id":1,"conversation_id":"{c}","client_id":"p1","text":"look","attachments":["{photo}"]}}"#
        ),
        // No text at all: a photo without a caption.
        format!(
            r#"{{"type":"send","id":2,"conversation_id":"{c}","client_id":"p2","attachments":["{photo}"]}}"#
        ),
        // No text and nothing attached.
        format!(
            r#"{{"type":"send","id":3,"conversation_id":"{c}","client_id":"p3","attachments":[]}}"#
        ),
        // Not a media id.
        format!(
            r#"{{"type":"send","id":4,"conversation_id":"{c}","client_id":"p4","attachments":["beach.jpg"]}}"#
        ),
        // Not a list of strings.
        format!(
            r#"{{"type":"send","id":5,"conversation_id":"{c}","client_id":"p5","attachments":"{photo}"}}"#
        ),
    ];
    check_parse_all(
        &frames,
        expect![[r#"
        Send { request_id: Some(Number(1)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("p1"), text: "look", reply_to: None, thread_root: None, forwarded_from: None, attachments: [MediaId(01HF7YAT00000000000000000B)] } }
        Send { request_id: Some(Number(2)), conversation_id: ConversationId(01HZZZZZZZZZZZZZZZZZZZZZZZ), new_message: NewMessage { client_id: ClientId("p2"), text: "", reply_to: None, thread_root: None, forwarded_from: None, attachments: [MediaId(01HF7YAT00000000000000000B)] } }
        error id=Some(Number(3)) code=invalid message=invalid text: is required
        error id=Some(Number(4)) code=invalid message=invalid attachments: must be a list of media ids
        error id=Some(Number(5)) code=invalid message=invalid frame: invalid type: string "01HF7YAT00000000000000000B", expected a sequence at line 1 column 128"#]],
    );
}
