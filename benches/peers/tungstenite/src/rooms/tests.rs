//! Tests for the room registry: fan-out to every member, cleanup of empty rooms, and the close
//! request of a full queue.

use std::collections::HashSet;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{CloseReason, ConnectionId, Outbound, Rooms};

#[test]
fn a_broadcast_reaches_every_member_once_with_the_same_bytes() {
    let rooms = Rooms::default();
    let (first, mut first_receiver) = Outbound::new(8);
    let (second, mut second_receiver) = Outbound::new(8);
    rooms.join("room-7", ConnectionId(1), &first);
    rooms.join("room-7", ConnectionId(2), &second);
    rooms.join("other", ConnectionId(2), &second);

    let frame = Utf8Bytes::from(String::from("frame"));
    assert_eq!(rooms.broadcast("room-7", &frame), 2);
    assert_eq!(rooms.broadcast("nobody-here", &frame), 0);

    let first_frame = first_receiver.try_recv().unwrap();
    let second_frame = second_receiver.try_recv().unwrap();
    assert_eq!(first_frame.as_str(), "frame");
    // Both queues hold the one encoded buffer, not copies of it.
    assert_eq!(
        first_frame.as_str().as_ptr(),
        second_frame.as_str().as_ptr()
    );
    assert!(first_receiver.try_recv().is_err());
    assert!(second_receiver.try_recv().is_err());
}

#[test]
fn leaving_drops_empty_rooms_and_keeps_the_others() {
    let rooms = Rooms::default();
    let (first, _first_receiver) = Outbound::new(8);
    let (second, mut second_receiver) = Outbound::new(8);
    rooms.join("shared", ConnectionId(1), &first);
    rooms.join("alone", ConnectionId(1), &first);
    rooms.join("shared", ConnectionId(2), &second);
    assert_eq!(rooms.n_rooms(), 2);

    let first_rooms: HashSet<String> = ["shared".to_owned(), "alone".to_owned()].into();
    rooms.leave_all(ConnectionId(1), &first_rooms);
    assert_eq!(rooms.n_rooms(), 1);
    assert_eq!(
        rooms.broadcast("shared", &Utf8Bytes::from_static("x")),
        1,
        "only the remaining member is reached"
    );
    assert_eq!(second_receiver.try_recv().unwrap().as_str(), "x");

    rooms.leave_all(ConnectionId(2), &["shared".to_owned()]);
    assert_eq!(rooms.n_rooms(), 0);
}

#[tokio::test]
async fn a_full_queue_requests_a_close_instead_of_growing() {
    let (outbound, mut receiver) = Outbound::new(2);
    assert!(outbound.push(Utf8Bytes::from_static("1")));
    assert!(outbound.push(Utf8Bytes::from_static("2")));
    assert!(!outbound.push(Utf8Bytes::from_static("3")));
    // The request was made before anyone waited, and is still delivered; a later reason loses.
    outbound.request_close(CloseReason::GoingAway);
    let reason = tokio::time::timeout(Duration::from_secs(5), outbound.close_requested())
        .await
        .unwrap();
    assert_eq!(reason, CloseReason::SlowConsumer);
    assert_eq!(receiver.try_recv().unwrap().as_str(), "1");
    assert_eq!(receiver.try_recv().unwrap().as_str(), "2");
    assert!(receiver.try_recv().is_err());
}
