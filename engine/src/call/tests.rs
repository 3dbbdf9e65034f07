//! The call rules, one scenario per test: answered calls and their duration, rejection,
//! cancellation, no answer, hang-ups, one call at a time, and who may signal whom.

use super::*;
use crate::test_fixtures::user;

fn call_id(n: u128) -> CallId {
    CallId::from_parts(1, n)
}

/// Alice calls Bob and Carol at t = 1000 ms, ringing for 30 s.
fn ringing() -> CallBoard {
    let mut board = CallBoard::default();
    board
        .invite(
            call_id(1),
            user("alice"),
            CallKind::Video,
            [user("alice"), user("bob"), user("carol")],
            Timestamp(1_000),
            30_000,
        )
        .expect("invited");
    board
}

#[test]
fn an_answered_call_lasts_from_the_first_answer_to_the_last_hang_up() {
    let mut board = ringing();
    let call = board.active().expect("active");
    assert_eq!(call.ringing, BTreeSet::from([user("bob"), user("carol")]));
    assert_eq!(call.ringing_until, Timestamp(31_000));

    board
        .accept(call_id(1), &user("bob"), Timestamp(2_000))
        .expect("accepted");
    board
        .check_signal(call_id(1), &user("alice"), &user("bob"))
        .expect("participants");
    assert_eq!(
        board.check_signal(call_id(1), &user("alice"), &user("carol")),
        Err(Error::NotFound),
        "carol is still ringing, not in the call"
    );
    assert_eq!(
        board.reject(call_id(1), &user("carol"), Timestamp(3_000)),
        Ok(None),
        "an answered call goes on"
    );
    assert_eq!(
        board.hang_up(call_id(1), &user("alice"), Timestamp(62_000)),
        Ok(Departure::Ended(CallEnded {
            call_id: call_id(1),
            kind: CallKind::Video,
            reason: CallEndReason::HungUp,
            duration_ms: 60_000,
            participants: vec![user("alice"), user("bob")],
            recording: None,
        })),
        "one participant left: the call ends"
    );
    assert_eq!(board.active(), None);
}

#[test]
fn a_call_everyone_rejects_ends_as_rejected() {
    let mut board = ringing();
    assert_eq!(
        board.reject(call_id(1), &user("bob"), Timestamp(2_000)),
        Ok(None)
    );
    let ended = board
        .reject(call_id(1), &user("carol"), Timestamp(3_000))
        .expect("rejected")
        .expect("ended");
    assert_eq!(ended.reason, CallEndReason::Rejected);
    assert_eq!(ended.duration_ms, 0);
    assert_eq!(ended.participants, vec![user("alice")]);
}

#[test]
fn only_the_caller_cancels_and_only_before_an_answer() {
    let mut board = ringing();
    assert!(matches!(
        board.cancel(call_id(1), &user("bob"), Timestamp(2_000)),
        Err(Error::Forbidden { .. })
    ));
    let ended = board
        .cancel(call_id(1), &user("alice"), Timestamp(2_000))
        .expect("cancelled");
    assert_eq!(ended.reason, CallEndReason::Cancelled);

    let mut board = ringing();
    board
        .accept(call_id(1), &user("bob"), Timestamp(2_000))
        .expect("accepted");
    assert!(matches!(
        board.cancel(call_id(1), &user("alice"), Timestamp(3_000)),
        Err(Error::Forbidden { .. })
    ));
}

#[test]
fn ringing_ends_at_its_time_and_an_unanswered_call_ends_then() {
    let mut board = ringing();
    assert_eq!(
        board.ringing_expired(call_id(1), Timestamp(30_999)),
        (Vec::new(), None),
        "not yet"
    );
    let (stopped, ended) = board.ringing_expired(call_id(1), Timestamp(31_000));
    assert_eq!(stopped, vec![user("bob"), user("carol")]);
    assert_eq!(ended.expect("ended").reason, CallEndReason::NoAnswer);

    // Answered by one: the other stops ringing and the call goes on.
    let mut board = ringing();
    board
        .accept(call_id(1), &user("bob"), Timestamp(2_000))
        .expect("accepted");
    assert_eq!(
        board.ringing_expired(call_id(1), Timestamp(31_000)),
        (vec![user("carol")], None)
    );
    assert_eq!(
        board.accept(call_id(1), &user("carol"), Timestamp(32_000)),
        Err(Error::NotFound),
        "too late to answer"
    );
}

#[test]
fn one_call_at_a_time_and_nobody_calls_an_empty_conversation() {
    let mut board = ringing();
    assert!(matches!(
        board.invite(
            call_id(2),
            user("bob"),
            CallKind::Audio,
            [user("alice"), user("bob")],
            Timestamp(2_000),
            30_000
        ),
        Err(Error::Conflict { .. })
    ));
    let mut alone = CallBoard::default();
    assert!(matches!(
        alone.invite(
            call_id(3),
            user("alice"),
            CallKind::Audio,
            [user("alice")],
            Timestamp(2_000),
            30_000
        ),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn the_caller_hanging_up_before_an_answer_cancels_and_a_stranger_cannot_act() {
    let mut board = ringing();
    assert_eq!(
        board.accept(call_id(9), &user("bob"), Timestamp(2_000)),
        Err(Error::NotFound),
        "another call id"
    );
    assert_eq!(
        board.hang_up(call_id(1), &user("bob"), Timestamp(2_000)),
        Err(Error::NotFound),
        "bob is ringing, not in the call"
    );
    match board.hang_up(call_id(1), &user("alice"), Timestamp(2_000)) {
        Ok(Departure::Ended(ended)) => assert_eq!(ended.reason, CallEndReason::Cancelled),
        other => panic!("expected a cancelled call, got {other:?}"),
    }
}

#[test]
fn a_three_way_call_goes_on_when_one_leaves() {
    let mut board = ringing();
    board
        .accept(call_id(1), &user("bob"), Timestamp(2_000))
        .expect("accepted");
    board
        .accept(call_id(1), &user("carol"), Timestamp(3_000))
        .expect("accepted");
    assert_eq!(
        board.hang_up(call_id(1), &user("bob"), Timestamp(4_000)),
        Ok(Departure::Left)
    );
    board
        .check_signal(call_id(1), &user("carol"), &user("alice"))
        .expect("still in");
    assert_eq!(
        board.check_signal(call_id(1), &user("carol"), &user("bob")),
        Err(Error::NotFound)
    );
}

fn recording_id(n: u128) -> RecordingId {
    RecordingId::from_parts(2, n)
}

/// Alice's call answered by Bob and Carol at t = 2000 ms.
fn three_in_a_call() -> CallBoard {
    let mut board = ringing();
    for name in ["bob", "carol"] {
        board
            .accept(call_id(1), &user(name), Timestamp(2_000))
            .expect("accepted");
    }
    board
}

/// Alice's call `n` (of `kind`) to `invited`: Bob answers at 1 s, Alice asks at 2 s to record
/// it as recording `n`, and Bob's consent at 3 s starts the recording.
fn recording_with_bob(n: u128, kind: CallKind, invited: &[&str]) -> CallBoard {
    let mut board = CallBoard::default();
    board
        .invite(
            call_id(n),
            user("alice"),
            kind,
            invited.iter().map(|name| user(name)),
            Timestamp(0),
            60_000,
        )
        .expect("invited");
    board
        .accept(call_id(n), &user("bob"), Timestamp(1_000))
        .expect("accepted");
    alice_asks_to_record(&mut board, n, n, 2_000).expect("asked");
    assert!(matches!(
        answer(&mut board, n, n, "bob", true, 3_000),
        Ok(Some(RecordingChange::Started { .. }))
    ));
    board
}

/// `who` answers, at `at_ms`, the request to record call `call` as recording `recording`.
fn answer(
    board: &mut CallBoard,
    call: u128,
    recording: u128,
    who: &str,
    consents: bool,
    at_ms: u64,
) -> Result<Option<RecordingChange>> {
    board.answer_recording(
        call_id(call),
        recording_id(recording),
        &user(who),
        consents,
        Timestamp(at_ms),
    )
}

/// Alice asks, at `at_ms`, to record call `call` as recording `recording`, leaving the others
/// 30 seconds to consent.
fn alice_asks_to_record(
    board: &mut CallBoard,
    call: u128,
    recording: u128,
    at_ms: u64,
) -> Result<Vec<UserId>> {
    board.request_recording(
        call_id(call),
        &user("alice"),
        recording_id(recording),
        Timestamp(at_ms),
        30_000,
    )
}

#[test]
fn recording_starts_only_when_everyone_consented() {
    let mut board = three_in_a_call();
    let asked = alice_asks_to_record(&mut board, 1, 1, 3_000).expect("asked");
    assert_eq!(asked, vec![user("bob"), user("carol")]);
    assert!(matches!(
        board.request_recording(
            call_id(1),
            &user("bob"),
            recording_id(2),
            Timestamp(3_000),
            30_000
        ),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        answer(&mut board, 1, 1, "bob", true, 4_000),
        Ok(None),
        "carol has not answered"
    );
    assert_eq!(
        answer(&mut board, 1, 1, "bob", true, 4_500),
        Err(Error::NotFound),
        "bob already answered"
    );
    assert_eq!(
        answer(&mut board, 1, 1, "carol", true, 5_000),
        Ok(Some(RecordingChange::Started {
            recording_id: recording_id(1),
            requested_by: user("alice"),
            consents: vec![
                (user("alice"), Timestamp(3_000)),
                (user("bob"), Timestamp(4_000)),
                (user("carol"), Timestamp(5_000)),
            ],
        }))
    );
    // The call ends: so does the recording, with how long it ran.
    match board.hang_up(call_id(1), &user("alice"), Timestamp(9_000)) {
        Ok(Departure::Left) => {}
        other => panic!("two remain, got {other:?}"),
    }
    let Ok(Departure::Ended(ended)) = board.hang_up(call_id(1), &user("bob"), Timestamp(10_000))
    else {
        panic!("the call ends");
    };
    assert_eq!(
        ended.recording,
        Some(RecordingChange::Ended {
            recording_id: recording_id(1),
            reason: RecordingEndReason::CallEnded,
            by: None,
            was_recording: true,
            duration_ms: 5_000,
        })
    );
}

#[test]
fn a_refusal_or_the_deadline_cancels_and_a_late_joiner_must_consent() {
    let mut board = three_in_a_call();
    alice_asks_to_record(&mut board, 1, 1, 3_000).expect("asked");
    assert_eq!(
        answer(&mut board, 1, 1, "carol", false, 4_000),
        Ok(Some(RecordingChange::Ended {
            recording_id: recording_id(1),
            reason: RecordingEndReason::Refused,
            by: Some(user("carol")),
            was_recording: false,
            duration_ms: 0,
        }))
    );

    alice_asks_to_record(&mut board, 1, 2, 5_000).expect("asked again");
    assert_eq!(
        board.recording_deadline(call_id(1), recording_id(2), Timestamp(34_999)),
        None
    );
    assert!(matches!(
        board.recording_deadline(call_id(1), recording_id(2), Timestamp(35_000)),
        Some(RecordingChange::Ended {
            reason: RecordingEndReason::ConsentTimeout,
            was_recording: false,
            ..
        })
    ));

    // Alice calls Bob and Dave; Bob answers and they record; Dave joins late and never
    // consents.
    let mut board = recording_with_bob(3, CallKind::Audio, &["bob", "dave"]);
    assert_eq!(
        board.accept(call_id(3), &user("dave"), Timestamp(10_000)),
        Ok(Some(recording_id(3))),
        "dave must consent"
    );
    assert!(matches!(
        board.recording_deadline(call_id(3), recording_id(3), Timestamp(40_000)),
        Some(RecordingChange::Ended {
            reason: RecordingEndReason::ConsentTimeout,
            was_recording: true,
            duration_ms: 37_000,
            ..
        })
    ));
}

#[test]
fn a_late_joiner_who_consents_is_reported_and_the_recording_runs_on() {
    let mut board = recording_with_bob(4, CallKind::Video, &["bob", "dave"]);
    assert_eq!(
        board.accept(call_id(4), &user("dave"), Timestamp(10_000)),
        Ok(Some(recording_id(4)))
    );
    assert_eq!(
        answer(&mut board, 4, 4, "dave", true, 11_000),
        Ok(Some(RecordingChange::Consented {
            recording_id: recording_id(4),
            user_id: user("dave"),
            at: Timestamp(11_000),
        }))
    );
    assert_eq!(
        board.recording_deadline(call_id(4), recording_id(4), Timestamp(40_000)),
        None,
        "everyone consented: the deadline changes nothing"
    );
}

#[test]
fn a_recording_whose_metadata_cannot_be_stored_is_aborted_once() {
    let mut board = recording_with_bob(5, CallKind::Audio, &["bob"]);
    assert_eq!(
        board.abort_recording(
            call_id(5),
            recording_id(6),
            RecordingEndReason::MetadataUnavailable,
            Timestamp(3_500)
        ),
        None,
        "another recording is not aborted"
    );
    assert_eq!(
        board.abort_recording(
            call_id(5),
            recording_id(5),
            RecordingEndReason::MetadataUnavailable,
            Timestamp(4_000)
        ),
        Some(RecordingChange::Ended {
            recording_id: recording_id(5),
            reason: RecordingEndReason::MetadataUnavailable,
            by: None,
            was_recording: true,
            duration_ms: 1_000,
        })
    );
    assert_eq!(
        board.abort_recording(
            call_id(5),
            recording_id(5),
            RecordingEndReason::Erased,
            Timestamp(5_000)
        ),
        None,
        "an aborted recording is gone"
    );
    assert!(board.active().is_some(), "the call goes on");
}
