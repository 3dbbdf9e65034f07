//! The outbound queue's bound, close and pacing behaviour.

use super::*;

fn frame(n_bytes: usize) -> EncodedFrame {
    EncodedFrame::from_text("x".repeat(n_bytes))
}

#[tokio::test]
async fn overflow_closes_as_slow_consumer_and_refuses_more() {
    let (outbound, mut receiver) = outbound(100);
    assert_eq!(outbound.push(frame(60)), Ok(()));
    assert_eq!(outbound.push(frame(40)), Ok(()));
    assert_eq!(outbound.queued_bytes(), 100);
    assert_eq!(outbound.push(frame(1)), Err(PushError::SlowConsumer));
    assert_eq!(outbound.push(frame(1)), Err(PushError::Closed));
    assert!(matches!(
        receiver.recv().await,
        Some(OutboundEvent::Close(CloseReason::SlowConsumer))
    ));
    assert!(receiver.try_recv().is_none());
}

#[tokio::test]
async fn an_oversized_frame_fits_an_empty_queue() {
    let (outbound, mut receiver) = outbound(10);
    assert_eq!(outbound.push(frame(50)), Ok(()));
    match receiver.recv().await {
        Some(OutboundEvent::Frame(received)) => assert_eq!(received.len(), 50),
        other => panic!("expected a frame, got {other:?}"),
    }
    assert_eq!(outbound.queued_bytes(), 0);
    assert_eq!(outbound.push(frame(50)), Ok(()));
}

#[tokio::test]
async fn receiving_frees_room_and_wakes_a_waiter() {
    let (outbound, mut receiver) = outbound(100);
    outbound.push(frame(90)).expect("fits");
    #[allow(clippy::disallowed_methods)] // The test owns and joins this task.
    let waiter = {
        let outbound = outbound.clone();
        tokio::spawn(async move { outbound.wait_for_room().await })
    };
    assert!(matches!(
        receiver.recv().await,
        Some(OutboundEvent::Frame(_))
    ));
    waiter
        .await
        .expect("the waiter finishes once the queue drains");
    assert_eq!(outbound.queued_bytes(), 0);
}

#[tokio::test]
async fn dropping_every_sender_ends_the_stream() {
    let (outbound, mut receiver) = outbound(100);
    outbound.push(frame(1)).expect("fits");
    drop(outbound);
    assert!(matches!(
        receiver.recv().await,
        Some(OutboundEvent::Frame(_))
    ));
    assert!(receiver.recv().await.is_none());
}

#[test]
fn droppable_frames_are_queued_only_while_the_queue_is_at_most_half_full() {
    let (queue, _receiver) = outbound(100);
    let frame = |n: usize| EncodedFrame::from_text("x".repeat(n));
    assert!(queue.push_if_room(frame(40)));
    assert!(
        !queue.push_if_room(frame(20)),
        "40 + 20 is over half of 100"
    );
    assert!(!queue.is_closed(), "a dropped frame never closes the queue");
    assert!(queue.push(frame(20)).is_ok(), "ordinary frames still fit");
}

#[tokio::test]
async fn a_close_that_is_not_an_overflow_still_delivers_the_queued_frames_first() {
    let (outbound, mut receiver) = outbound(100);
    assert_eq!(outbound.push(frame(10)), Ok(()));
    assert_eq!(outbound.push(frame(20)), Ok(()));
    assert_eq!(outbound.push(frame(30)), Ok(()));
    outbound.close(CloseReason::ServerShutdown);
    assert_eq!(outbound.push(frame(1)), Err(PushError::Closed));
    match receiver.recv().await {
        Some(OutboundEvent::Frame(received)) => assert_eq!(received.len(), 10),
        other => panic!("expected the first frame, got {other:?}"),
    }
    assert_eq!(receiver.try_recv().map(|frame| frame.len()), Some(20));
    match receiver.recv().await {
        Some(OutboundEvent::Frame(received)) => assert_eq!(received.len(), 30),
        other => panic!("expected the last frame, got {other:?}"),
    }
    assert!(matches!(
        receiver.recv().await,
        Some(OutboundEvent::Close(CloseReason::ServerShutdown))
    ));
    assert!(receiver.try_recv().is_none());
}
