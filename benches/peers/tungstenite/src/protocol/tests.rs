//! Tests for the peers' JSON protocol: what parses, what is rejected, and that encoded frames
//! carry ids verbatim and text losslessly.

use std::borrow::Cow;

use super::{
    ClientRequest, InvalidFrame, encode_ack, encode_joined, encode_message, encode_pong,
    parse_client_frame,
};

#[test]
fn a_join_with_a_numeric_id_is_answered_with_the_same_id() {
    let request = parse_client_frame(r#"{"type":"join","id":1,"conversation_id":"room-7"}"#);
    let Ok(ClientRequest::Join {
        request_id,
        conversation_id,
    }) = request
    else {
        panic!("expected a join, got {request:?}");
    };
    assert_eq!(
        encode_joined(request_id, &conversation_id).as_str(),
        r#"{"type":"joined","id":1,"conversation_id":"room-7"}"#
    );
}

#[test]
fn ids_are_echoed_byte_for_byte() {
    for id in [
        r#""abc""#,
        "1.50",
        "-7",
        "12345678901234567890123",
        r#""\u00e9""#,
    ] {
        let text = format!(r#"{{"type":"ping","id":{id}}}"#);
        let Ok(ClientRequest::Ping { request_id }) = parse_client_frame(&text) else {
            panic!("expected a ping for id {id}");
        };
        assert_eq!(
            request_id.map(|id| id.as_json().to_owned()).as_deref(),
            Some(id)
        );
        assert_eq!(
            encode_pong(request_id).as_str(),
            format!(r#"{{"type":"pong","id":{id}}}"#)
        );
    }
}

#[test]
fn a_missing_or_null_id_is_left_out_of_the_reply() {
    for text in [r#"{"type":"ping"}"#, r#"{"type":"ping","id":null}"#] {
        let Ok(ClientRequest::Ping { request_id }) = parse_client_frame(text) else {
            panic!("expected a ping from {text}");
        };
        assert_eq!(encode_pong(request_id).as_str(), r#"{"type":"pong"}"#);
    }
}

#[test]
fn a_send_becomes_one_message_frame_and_an_ack() {
    let request = parse_client_frame(
        r#"{"type":"send","id":5,"conversation_id":"room-7","client_id":"c-1","text":"hi","extra":[1,{"a":2}]}"#,
    );
    let Ok(ClientRequest::Send {
        request_id,
        conversation_id,
        client_id,
        text,
    }) = request
    else {
        panic!("expected a send, got {request:?}");
    };
    assert_eq!(
        encode_message(&conversation_id, &client_id, &text).as_str(),
        r#"{"type":"message","conversation_id":"room-7","client_id":"c-1","text":"hi"}"#
    );
    assert_eq!(
        encode_ack(request_id, &client_id).as_str(),
        r#"{"type":"ack","id":5,"status":"delivered","client_id":"c-1"}"#
    );
}

#[test]
fn text_survives_escapes_unicode_and_control_characters() {
    let original = "quote \" backslash \\ slash / newline \n tab \t nul \u{0} emoji 🎉 é </script>";
    let frame = serde_json::json!({
        "type": "send", "id": "s-1", "conversation_id": "r", "client_id": "c", "text": original,
    })
    .to_string();
    let Ok(ClientRequest::Send {
        conversation_id,
        client_id,
        text,
        ..
    }) = parse_client_frame(&frame)
    else {
        panic!("expected a send");
    };
    assert_eq!(text, original);
    let encoded = encode_message(&conversation_id, &client_id, &text);
    let decoded: serde_json::Value = serde_json::from_str(encoded.as_str()).unwrap();
    assert_eq!(decoded["text"], original);
}

#[test]
fn strings_without_escapes_are_borrowed_from_the_frame() {
    let Ok(ClientRequest::Send {
        conversation_id,
        text,
        ..
    }) = parse_client_frame(
        r#"{"type":"send","conversation_id":"room","client_id":"c","text":"a \"quoted\" word"}"#,
    )
    else {
        panic!("expected a send");
    };
    assert!(matches!(conversation_id, Cow::Borrowed("room")));
    assert!(matches!(text, Cow::Owned(_)));
}

#[test]
fn malformed_and_incomplete_frames_are_invalid() {
    for text in [
        "",
        "not json",
        "[]",
        "5",
        r#"{"id":1}"#,
        r#"{"type":"dance"}"#,
        r#"{"type":7}"#,
        r#"{"type":"join"}"#,
        r#"{"type":"join","conversation_id":7}"#,
        r#"{"type":"join","id":true,"conversation_id":"r"}"#,
        r#"{"type":"join","id":{"a":1},"conversation_id":"r"}"#,
        r#"{"type":"send","conversation_id":"r","client_id":"c"}"#,
        r#"{"type":"send","conversation_id":"r","text":"t"}"#,
        r#"{"type":"send","conversation_id":"r","client_id":"c","text":null}"#,
        r#"{"type":"ping","type":"ping"}"#,
    ] {
        assert_eq!(
            parse_client_frame(text).err(),
            Some(InvalidFrame),
            "{text:?} should be invalid"
        );
    }
}
