//! The restart policy as a table: failure times in, decisions out.

use super::*;

fn decisions(times_ms: &[u64]) -> Vec<String> {
    let policy = RestartPolicy {
        max_restarts: 3,
        window: Duration::from_secs(10),
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(300),
    };
    let mut tracker = RestartTracker::default();
    times_ms
        .iter()
        .map(
            |time_ms| match tracker.on_failure(&policy, Duration::from_millis(*time_ms), 0.0) {
                RestartDecision::RestartAfter(delay) => format!("{}ms", delay.as_millis()),
                RestartDecision::Escalate => "escalate".to_owned(),
            },
        )
        .collect()
}

#[test]
fn backs_off_then_escalates_within_the_window() {
    assert_eq!(
        decisions(&[0, 1, 2, 3]),
        ["100ms", "200ms", "300ms", "escalate"]
    );
}

#[test]
fn failures_outside_the_window_are_forgotten() {
    assert_eq!(
        decisions(&[0, 1, 2, 20_000, 20_001]),
        ["100ms", "200ms", "300ms", "100ms", "200ms"]
    );
}

#[test]
fn jitter_never_exceeds_the_cap() {
    let policy = RestartPolicy::default();
    let mut tracker = RestartTracker::default();
    for attempt in 0..5 {
        match tracker.on_failure(&policy, Duration::from_millis(attempt), 0.99) {
            RestartDecision::RestartAfter(delay) => assert!(delay <= policy.max_delay),
            RestartDecision::Escalate => panic!("escalated too early"),
        }
    }
}
