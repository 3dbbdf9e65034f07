//! The breaker's state machine, with time as an argument.

use std::time::Duration;

use tokio::time::Instant;

use super::{Admission, BreakerSettings, CircuitBreaker};

const SETTINGS: BreakerSettings = BreakerSettings {
    failures_to_open: 3,
    initial_cooldown: Duration::from_millis(100),
    max_cooldown: Duration::from_millis(350),
};

fn fail(breaker: &mut CircuitBreaker, now: Instant) {
    breaker.on_failure(now, "MongoDB is not reachable".to_owned());
}

/// A breaker just opened by `failures_to_open` failures at `now`.
fn opened_at(now: Instant) -> CircuitBreaker {
    let mut breaker = CircuitBreaker::new(SETTINGS);
    for _ in 0..SETTINGS.failures_to_open {
        fail(&mut breaker, now);
    }
    breaker
}

#[test]
fn it_opens_after_consecutive_failures_only() {
    let start = Instant::now();
    let mut breaker = CircuitBreaker::new(SETTINGS);
    fail(&mut breaker, start);
    fail(&mut breaker, start);
    breaker.on_success();
    fail(&mut breaker, start);
    fail(&mut breaker, start);
    assert_eq!(
        breaker.admit(start),
        Admission::Pass,
        "a success reset the count"
    );
    fail(&mut breaker, start);
    assert_eq!(breaker.admit(start), Admission::Refuse);
    let refusal = breaker.refusal(start).to_string();
    assert!(refusal.contains("next attempt in 100 ms"), "{refusal}");
    assert!(refusal.contains("MongoDB is not reachable"), "{refusal}");
}

#[test]
fn after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_breaker() {
    let start = Instant::now();
    let mut breaker = opened_at(start);
    let later = start + Duration::from_millis(100);
    assert_eq!(breaker.admit(later), Admission::Probe);
    assert_eq!(
        breaker.admit(later),
        Admission::Refuse,
        "one probe at a time"
    );
    breaker.on_success();
    assert_eq!(breaker.admit(later), Admission::Pass);
}

#[test]
fn a_failed_probe_doubles_the_cooldown_up_to_the_cap() {
    let mut now = Instant::now();
    let mut breaker = opened_at(now);
    for expected_ms in [200, 350, 350] {
        now += Duration::from_secs(1);
        assert_eq!(breaker.admit(now), Admission::Probe);
        fail(&mut breaker, now);
        let just_before = now + Duration::from_millis(expected_ms - 1);
        assert_eq!(breaker.admit(just_before), Admission::Refuse);
        assert_eq!(
            breaker.admit(now + Duration::from_millis(expected_ms)),
            Admission::Probe
        );
        // Put it back to open as the probe failed, for the next round.
        fail(&mut breaker, now);
    }
}

#[test]
fn an_abandoned_probe_lets_the_next_call_probe() {
    let start = Instant::now();
    let mut breaker = opened_at(start);
    let later = start + Duration::from_millis(100);
    assert_eq!(breaker.admit(later), Admission::Probe);
    breaker.on_probe_abandoned(later);
    assert_eq!(breaker.admit(later), Admission::Probe);
}
