//! Call signalling over the WebSocket protocol, with two or three clients: an invitation rings
//! the other members, an answer joins, offers, answers and ICE candidates reach only the
//! participant they are for, and the start and end of every call (with its duration and
//! participants) are stored in the conversation's stream. Rejection, cancellation, no answer,
//! hang-ups, a participant who disconnects past the grace period, a non-member and a second
//! call are covered too, and so is recording consent: everyone consents, one refuses, nobody
//! answers in time, and a participant joining a recorded call refuses (what is kept about a
//! recording is tested in `recordings.rs`). Ringing and grace times are short here so nothing
//! waits long; waiting is reading frames with a deadline.

use serde_json::{Value, json};

use crate::support::{Client, TestServer, next_of};

pub(crate) async fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.conversations.call_ringing_timeout_ms = 1_500;
        config.conversations.call_disconnect_grace_ms = 300;
        config.conversations.call_recording_consent_timeout_ms = 800;
    })
    .await
}

/// Alice, Bob and Carol in one group, each connected and joined.
pub(crate) async fn three_members(server: &TestServer) -> (String, Client, Client, Client) {
    let id = server
        .create_conversation("acme", "alice", &["bob", "carol"])
        .await;
    let mut clients = Vec::new();
    for user in ["alice", "bob", "carol"] {
        let mut client = server.connect("acme", user).await;
        assert_eq!(client.join(&id, None).await["type"], "joined");
        clients.push(client);
    }
    let carol = clients.pop().expect("carol");
    let bob = clients.pop().expect("bob");
    let alice = clients.pop().expect("alice");
    (id, alice, bob, carol)
}

pub(crate) async fn invite(client: &mut Client, id: &str, kind: &str) -> Value {
    client
        .send_json(
            json!({"type": "call.invite", "id": "invite", "conversation_id": id, "kind": kind}),
        )
        .await;
    next_of(client, "call.invited").await
}

pub(crate) async fn act(client: &mut Client, kind: &str, id: &str, call_id: &Value) {
    client
        .send_json(json!({"type": kind, "id": kind, "conversation_id": id, "call_id": call_id}))
        .await;
}

/// The next frame of `kind`, failing if an error frame comes first.
pub(crate) async fn expect_frame(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.next_json().await;
        assert_ne!(frame["type"], "error", "expected {kind}, got {frame}");
        if frame["type"] == kind {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_call_rings_is_answered_relays_signals_to_participants_only_and_is_recorded() {
    let server = server().await;
    let (id, mut alice, mut bob, mut carol) = three_members(&server).await;

    let invited = invite(&mut alice, &id, "video").await;
    assert_eq!(invited["id"], "invite");
    assert_eq!(invited["kind"], "video");
    assert_eq!(invited["ringing"], json!(["bob", "carol"]));
    let call_id = invited["call_id"].clone();
    for client in [&mut bob, &mut carol] {
        let ringing = expect_frame(client, "call.ringing").await;
        assert_eq!(ringing["call_id"], call_id);
        assert_eq!(ringing["caller_id"], "alice");
        assert_eq!(ringing["kind"], "video");
        assert_eq!(ringing["expires_in_ms"], 1_500);
    }
    // Everyone sees the call start in the conversation's stream.
    for client in [&mut alice, &mut bob, &mut carol] {
        let started = expect_frame(client, "call.started").await;
        assert_eq!(started["call_id"], call_id);
        assert_eq!(started["actor_id"], "alice");
        assert!(started["seq"].as_u64().is_some());
    }

    act(&mut bob, "call.accept", &id, &call_id).await;
    for client in [&mut alice, &mut bob] {
        let accepted = expect_frame(client, "call.accepted").await;
        assert_eq!(accepted["user_id"], "bob");
    }

    // Offer, answer and candidates reach the one participant they are for.
    alice
        .send_json(
            json!({"type": "call.offer", "conversation_id": id, "call_id": call_id,
            "to_user_id": "bob", "sdp": "v=0 offer"}),
        )
        .await;
    let offer = expect_frame(&mut bob, "call.offer").await;
    assert_eq!(offer["from_user_id"], "alice");
    assert_eq!(offer["sdp"], "v=0 offer");
    bob.send_json(
        json!({"type": "call.answer", "conversation_id": id, "call_id": call_id,
        "to_user_id": "alice", "sdp": "v=0 answer"}),
    )
    .await;
    assert_eq!(
        expect_frame(&mut alice, "call.answer").await["sdp"],
        "v=0 answer"
    );
    bob.send_json(
        json!({"type": "call.ice_candidate", "conversation_id": id, "call_id": call_id,
        "to_user_id": "alice", "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
        "sdp_mid": "0", "sdp_mline_index": 0}),
    )
    .await;
    let candidate = expect_frame(&mut alice, "call.ice_candidate").await;
    assert_eq!(candidate["from_user_id"], "bob");
    assert_eq!(candidate["sdp_mid"], "0");
    assert_eq!(candidate["sdp_mline_index"], 0);

    // Carol is still ringing, not in the call: nothing can be relayed to or from her.
    alice
        .send_json(
            json!({"type": "call.offer", "id": "to-carol", "conversation_id": id,
            "call_id": call_id, "to_user_id": "carol", "sdp": "v=0"}),
        )
        .await;
    let refused = next_of(&mut alice, "error").await;
    assert_eq!(refused["id"], "to-carol");
    assert_eq!(refused["code"], "not_found");
    carol
        .send_json(
            json!({"type": "call.offer", "id": "from-carol", "conversation_id": id,
            "call_id": call_id, "to_user_id": "alice", "sdp": "v=0"}),
        )
        .await;
    // Her refusal comes after everything the conversation pushed her before: if the
    // participants' signals had reached her, they would be among these frames.
    let mut seen_by_carol = Vec::new();
    loop {
        let frame = carol.next_json().await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "not_found");
            break;
        }
        seen_by_carol.push(frame);
    }
    assert!(
        seen_by_carol
            .iter()
            .all(|frame| !frame["type"].as_str().is_some_and(|kind| [
                "call.offer",
                "call.answer",
                "call.ice_candidate",
                "call.accepted"
            ]
            .contains(&kind))),
        "carol saw the participants' signals: {seen_by_carol:?}"
    );

    // Carol declines; alice hangs up; with one participant left the call ends, recorded with
    // its duration and everyone who took part.
    act(&mut carol, "call.reject", &id, &call_id).await;
    assert_eq!(
        expect_frame(&mut alice, "call.rejected").await["user_id"],
        "carol"
    );
    act(&mut alice, "call.hangup", &id, &call_id).await;
    for client in [&mut alice, &mut bob, &mut carol] {
        let ended = expect_frame(client, "call.ended").await;
        assert_eq!(ended["call_id"], call_id);
        assert_eq!(ended["reason"], "hung_up");
        assert_eq!(ended["kind"], "video");
        assert_eq!(ended["participants"], json!(["alice", "bob"]));
        assert!(ended["duration_ms"].as_u64().is_some(), "{ended}");
    }

    // Both records are in the stream: a client replaying it from the start gets them.
    let mut later = server.connect("acme", "carol").await;
    assert_eq!(later.join(&id, Some(0)).await["type"], "joined");
    let mut replayed = Vec::new();
    while replayed
        .last()
        .is_none_or(|frame: &Value| frame["type"] != "call.ended")
    {
        replayed.push(later.next_json().await);
    }
    let kinds: Vec<&str> = replayed
        .iter()
        .filter_map(|entry| entry["type"].as_str())
        .filter(|kind| kind.starts_with("call."))
        .collect();
    assert_eq!(kinds, ["call.started", "call.ended"], "{replayed:?}");
}

#[tokio::test]
async fn rejected_cancelled_and_unanswered_calls_end_with_their_reason() {
    let server = server().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(client.join(&id, None).await["type"], "joined");
    }

    // Rejected by the only invitee.
    let call_id = invite(&mut alice, &id, "audio").await["call_id"].clone();
    expect_frame(&mut bob, "call.ringing").await;
    act(&mut bob, "call.reject", &id, &call_id).await;
    assert_eq!(
        expect_frame(&mut alice, "call.rejected").await["user_id"],
        "bob"
    );
    let ended = expect_frame(&mut alice, "call.ended").await;
    assert_eq!(ended["reason"], "rejected");
    assert_eq!(ended["duration_ms"], 0);

    // Cancelled by the caller (bob may not cancel it).
    let call_id = invite(&mut alice, &id, "audio").await["call_id"].clone();
    expect_frame(&mut bob, "call.ringing").await;
    act(&mut bob, "call.cancel", &id, &call_id).await;
    assert_eq!(next_of(&mut bob, "error").await["code"], "forbidden");
    act(&mut alice, "call.cancel", &id, &call_id).await;
    assert_eq!(
        expect_frame(&mut bob, "call.ended").await["reason"],
        "cancelled"
    );

    // Not answered within the ringing time (1.5 s here).
    let call_id = invite(&mut alice, &id, "video").await["call_id"].clone();
    expect_frame(&mut bob, "call.ringing").await;
    let ended = expect_frame(&mut bob, "call.ended").await;
    assert_eq!(ended["call_id"], call_id);
    assert_eq!(ended["reason"], "no_answer");
    // Too late to answer.
    act(&mut bob, "call.accept", &id, &call_id).await;
    assert_eq!(next_of(&mut bob, "error").await["code"], "not_found");
}

#[tokio::test]
async fn one_call_at_a_time_and_only_members_call() {
    let server = server().await;
    let (id, mut alice, mut bob) = server.conversation_of_two("alice", "bob").await;
    let mut mallory = server.connect("acme", "mallory").await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(client.join(&id, None).await["type"], "joined");
    }
    invite(&mut alice, &id, "audio").await;
    bob.send_json(
        json!({"type": "call.invite", "id": "second", "conversation_id": id, "kind": "audio"}),
    )
    .await;
    let refused = next_of(&mut bob, "error").await;
    assert_eq!(refused["id"], "second");
    assert_eq!(refused["code"], "conflict");

    // A member must have joined the conversation (where call frames arrive) to call.
    let other = server.create_conversation("acme", "bob", &["alice"]).await;
    bob.send_json(
        json!({"type": "call.invite", "id": "unjoined", "conversation_id": other, "kind": "audio"}),
    )
    .await;
    let refused = next_of(&mut bob, "error").await;
    assert_eq!(refused["id"], "unjoined");
    assert_eq!(refused["code"], "invalid");

    mallory
        .send_json(
            json!({"type": "call.invite", "id": "m", "conversation_id": id, "kind": "audio"}),
        )
        .await;
    let refused = next_of(&mut mallory, "error").await;
    assert_eq!(refused["id"], "m");
    assert_eq!(refused["code"], "not_member");

    for (frame, field) in [
        (
            json!({"type": "call.invite", "id": "k", "conversation_id": id, "kind": "hologram"}),
            "kind",
        ),
        (
            json!({"type": "call.accept", "id": "k", "conversation_id": id}),
            "call_id",
        ),
        (
            json!({"type": "call.offer", "id": "k", "conversation_id": id,
            "call_id": "01J00000000000000000000000", "sdp": "v=0"}),
            "to_user_id",
        ),
    ] {
        alice.send_json(frame.clone()).await;
        let refused = next_of(&mut alice, "error").await;
        assert_eq!(refused["code"], "invalid", "{frame}");
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|message| message.contains(field)),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn a_participant_who_disconnects_leaves_after_the_grace_period() {
    let server = server().await;
    let (id, mut alice, mut bob, mut carol) = three_members(&server).await;
    let call_id = invite(&mut alice, &id, "audio").await["call_id"].clone();
    act(&mut bob, "call.accept", &id, &call_id).await;
    act(&mut carol, "call.accept", &id, &call_id).await;
    for _ in 0..2 {
        expect_frame(&mut alice, "call.accepted").await;
    }
    // Carol's only connection goes away: after the grace period she leaves, the call goes on.
    drop(carol);
    let left = expect_frame(&mut alice, "call.left").await;
    assert_eq!(left["user_id"], "carol");
    assert_eq!(
        expect_frame(&mut bob, "call.left").await["user_id"],
        "carol"
    );
    // Then bob's: alice is alone, and the call ends.
    drop(bob);
    let ended = expect_frame(&mut alice, "call.ended").await;
    assert_eq!(ended["reason"], "hung_up");
    assert_eq!(ended["participants"], json!(["alice", "bob", "carol"]));
}

pub(crate) async fn request_recording(client: &mut Client, id: &str, call_id: &Value) -> Value {
    client
        .send_json(json!({"type": "call.recording.request", "id": "rec",
            "conversation_id": id, "call_id": call_id}))
        .await;
    expect_frame(client, "call.recording.requested").await
}

pub(crate) async fn consent(
    client: &mut Client,
    id: &str,
    call_id: &Value,
    recording_id: &Value,
    granted: bool,
) {
    client
        .send_json(
            json!({"type": "call.recording.consent", "conversation_id": id,
            "call_id": call_id, "recording_id": recording_id, "granted": granted}),
        )
        .await;
}

/// Alice calls Bob and Carol; `answering` accept.
pub(crate) async fn call_answered_by(
    server: &TestServer,
    answering: &[&str],
) -> (String, Value, Client, Client, Client) {
    let (id, mut alice, mut bob, mut carol) = three_members(server).await;
    let call_id = invite(&mut alice, &id, "video").await["call_id"].clone();
    for (name, client) in [("bob", &mut bob), ("carol", &mut carol)] {
        if answering.contains(&name) {
            act(client, "call.accept", &id, &call_id).await;
            expect_frame(&mut alice, "call.accepted").await;
        }
    }
    (id, call_id, alice, bob, carol)
}

#[tokio::test]
async fn recording_starts_when_everyone_consents_and_a_refusal_cancels_it() {
    let server = server().await;
    let (id, call_id, mut alice, mut bob, mut carol) =
        call_answered_by(&server, &["bob", "carol"]).await;

    let requested = request_recording(&mut alice, &id, &call_id).await;
    assert_eq!(requested["id"], "rec");
    assert_eq!(requested["asked"], json!(["bob", "carol"]));
    let recording_id = requested["recording_id"].clone();
    for client in [&mut bob, &mut carol] {
        let asked = expect_frame(client, "call.recording.consent_requested").await;
        assert_eq!(asked["recording_id"], recording_id);
        assert_eq!(asked["requested_by"], "alice");
        assert_eq!(asked["expires_in_ms"], 800);
    }
    consent(&mut bob, &id, &call_id, &recording_id, true).await;
    consent(&mut carol, &id, &call_id, &recording_id, true).await;
    for client in [&mut alice, &mut bob, &mut carol] {
        let started = expect_frame(client, "recording.started").await;
        assert_eq!(started["recording_id"], recording_id);
        assert_eq!(started["call_id"], call_id);
        assert_eq!(started["actor_id"], "alice");
        // The consent trail is the recording's metadata (tests/integration/recordings.rs),
        // never the seq stream's, so that erasing the recording erases it.
        assert!(started.get("consents").is_none(), "{started}");
    }
    // Bob stops it.
    bob.send_json(json!({"type": "call.recording.stop", "conversation_id": id,
        "call_id": call_id, "recording_id": recording_id}))
        .await;
    for client in [&mut alice, &mut bob, &mut carol] {
        let ended = expect_frame(client, "recording.ended").await;
        assert_eq!(ended["reason"], "stopped");
        assert_eq!(ended["actor_id"], "bob");
        assert_eq!(ended["was_recording"], true);
    }

    // Asked again; Carol refuses: it never starts.
    let recording_id = request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording_id, true).await;
    consent(&mut carol, &id, &call_id, &recording_id, false).await;
    let ended = expect_frame(&mut bob, "recording.ended").await;
    assert_eq!(ended["recording_id"], recording_id);
    assert_eq!(ended["reason"], "refused");
    assert_eq!(ended["actor_id"], "carol");
    assert_eq!(ended["was_recording"], false);
    assert_eq!(ended["duration_ms"], 0);
}

#[tokio::test]
async fn recording_without_every_consent_in_time_is_cancelled() {
    let server = server().await;
    let (id, call_id, mut alice, mut bob, _carol) =
        call_answered_by(&server, &["bob", "carol"]).await;
    let recording_id = request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording_id, true).await;
    // Carol never answers.
    let ended = expect_frame(&mut alice, "recording.ended").await;
    assert_eq!(ended["recording_id"], recording_id);
    assert_eq!(ended["reason"], "consent_timeout");
    assert_eq!(ended["was_recording"], false);
    // A consent after the deadline is refused.
    consent(&mut bob, &id, &call_id, &recording_id, true).await;
    assert_eq!(next_of(&mut bob, "error").await["code"], "not_found");
}

#[tokio::test]
async fn a_late_joiner_must_consent_or_the_recording_stops() {
    let server = server().await;
    let (id, call_id, mut alice, mut bob, mut carol) = call_answered_by(&server, &["bob"]).await;
    let recording_id = request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording_id, true).await;
    let started = expect_frame(&mut alice, "recording.started").await;
    assert_eq!(started["recording_id"], recording_id);

    // Carol, still ringing, answers: she is asked for her consent, and refuses.
    act(&mut carol, "call.accept", &id, &call_id).await;
    let asked = expect_frame(&mut carol, "call.recording.consent_requested").await;
    assert_eq!(asked["recording_id"], recording_id);
    assert_eq!(asked["requested_by"], "alice");
    consent(&mut carol, &id, &call_id, &recording_id, false).await;
    let ended = expect_frame(&mut bob, "recording.ended").await;
    assert_eq!(ended["reason"], "refused");
    assert_eq!(ended["actor_id"], "carol");
    assert_eq!(ended["was_recording"], true);
}
