//! Presence: online while any session is open (unless away), offline with `last_seen` after the
//! last one closes, and watchers hear of every change, and only of changes.

use switchboard_engine::event::EncodedFrame;

use super::*;
use crate::clock::ManualClock;
use crate::outbound::{OutboundReceiver, outbound};

struct LineEncoder;

impl EventEncoder for LineEncoder {
    fn encode(&self, event: &ServerEvent<'_>) -> EncodedFrame {
        let text = match event {
            ServerEvent::Presence {
                user_id,
                status,
                last_seen,
                ..
            } => format!("{user_id} {} {last_seen:?}", status.as_str()),
            _ => "other".to_owned(),
        };
        EncodedFrame::from_text(text)
    }
}

fn identity(user: &str) -> Identity {
    Identity {
        tenant_id: TenantId::parse("acme").expect("valid"),
        user_id: UserId::parse(user).expect("valid"),
    }
}

fn drain(receiver: &mut OutboundReceiver) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(frame) = receiver.try_recv() {
        lines.push(String::from_utf8(frame.bytes().to_vec()).expect("utf-8"));
    }
    lines
}

#[tokio::test]
async fn status_follows_sessions_and_away_and_watchers_hear_changes_only() {
    let clock = Arc::new(ManualClock::at(Timestamp(1_000)));
    let registry = PresenceRegistry::new(
        Arc::clone(&clock) as Arc<dyn Clock>,
        Arc::new(LineEncoder),
        None,
    );
    let alice = identity("alice");
    let tenant_id = alice.tenant_id.clone();
    let (queue, mut receiver) = outbound(1 << 16);
    let watcher = SessionId::from_parts(1, 1);
    let now = registry
        .watch(
            &tenant_id,
            watcher,
            &queue,
            std::slice::from_ref(&alice.user_id),
        )
        .await;
    assert_eq!(now[0].status, PresenceStatus::Offline);
    assert_eq!(now[0].last_seen, None, "never seen since start");

    let first = SessionId::from_parts(2, 1);
    let second = SessionId::from_parts(2, 2);
    registry.session_opened(&alice);
    registry.session_opened(&alice);
    registry.set_away(&alice, true);
    registry.set_away(&alice, true);
    clock.advance(500);
    registry.session_closed(&alice, first);
    clock.advance(500);
    registry.session_closed(&alice, second);
    assert_eq!(
        drain(&mut receiver),
        [
            "alice online None",
            "alice away None",
            "alice offline Some(Timestamp(2000))"
        ]
    );
    assert_eq!(
        registry.view(&tenant_id, &alice.user_id).await.last_seen,
        Some(Timestamp(2000))
    );

    // A closed watcher hears nothing more.
    registry.session_closed(&identity("watcher"), watcher);
    registry.session_opened(&alice);
    assert!(drain(&mut receiver).is_empty());
    assert_eq!(
        registry.view(&tenant_id, &alice.user_id).await.status,
        PresenceStatus::Online
    );
}
