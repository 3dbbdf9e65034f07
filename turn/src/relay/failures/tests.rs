//! The sampler logs the first refusal and then at most one per interval, each line counting
//! what it left out; the counters count every refusal by reason and are what `/metrics` shows.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;

use super::*;

const INTERVAL: Duration = Duration::from_secs(10);

fn at(seconds: u64) -> Timestamp {
    Timestamp(1_700_000_000_000 + seconds * 1000)
}

#[test]
fn the_first_event_is_logged_then_at_most_one_per_interval_counting_the_rest() {
    let mut sampler = LogSampler::new(INTERVAL);
    assert_eq!(sampler.record(at(0)), Some(0), "the first is logged");
    for _ in 0..999 {
        assert_eq!(
            sampler.record(at(0)),
            None,
            "then nothing in the same instant"
        );
    }
    assert_eq!(
        sampler.record(at(9)),
        None,
        "nor before the interval is over"
    );
    assert_eq!(
        sampler.record(at(10)),
        Some(1000),
        "the next line comes an interval later and counts the 1000 left out"
    );
    assert_eq!(sampler.record(at(15)), None);
    assert_eq!(sampler.record(at(20)), Some(1));
    assert_eq!(
        sampler.record(at(100)),
        Some(0),
        "after a quiet spell the next is logged at once"
    );
}

#[test]
fn a_clock_that_steps_back_does_not_silence_the_log() {
    let mut sampler = LogSampler::new(INTERVAL);
    assert_eq!(sampler.record(at(100)), Some(0));
    assert_eq!(sampler.record(at(101)), None);
    assert_eq!(
        sampler.record(at(50)),
        Some(1),
        "an hour back is not an hour of silence"
    );
    assert_eq!(sampler.record(at(51)), None);
}

#[test]
fn lines_per_stream_are_bounded_by_the_time_it_takes() {
    // 100 000 events spread evenly over 60 s: at most one line per 10 s, plus the first.
    let mut sampler = LogSampler::new(INTERVAL);
    let n_events: u64 = 100_000;
    let mut n_lines = 0;
    let mut n_reported = 0;
    for event in 0..n_events {
        let now = Timestamp(at(0).as_millis() + event * 60_000 / n_events);
        if let Some(n_left_out) = sampler.record(now) {
            n_lines += 1;
            n_reported += 1 + n_left_out;
        }
    }
    assert!(n_lines <= 1 + 60 / 10, "{n_lines} lines");
    assert!(n_lines >= 6, "{n_lines} lines: it still logs");
    // Every event up to the last line is logged or counted by a line (those after it wait for
    // the next line): the last line came at 50 s of 60.
    assert!(
        n_reported <= n_events && n_reported >= n_events * 5 / 6,
        "{n_reported} of {n_events} reported"
    );
}

struct FixedClock(AtomicU64);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }
}

#[test]
fn every_refusal_is_counted_by_reason_and_exported() {
    let failures = RelayAuthFailures::new(Arc::new(FixedClock(AtomicU64::new(at(0).as_millis()))));
    let source: SocketAddr = "192.0.2.7:5000".parse().expect("an address");
    for _ in 0..3 {
        failures.record(RefusalReason::BadPassword, source);
    }
    failures.record(RefusalReason::Expired, source);
    failures.record(CredentialError::UnknownKey.into(), source);
    assert_eq!(failures.count(RefusalReason::BadPassword), 3);
    assert_eq!(failures.count(RefusalReason::Expired), 1);
    assert_eq!(failures.count(RefusalReason::UnknownKey), 1);
    assert_eq!(failures.count(RefusalReason::Malformed), 0);

    let mut registry = Registry::default();
    failures.register_metrics(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).expect("encoded");
    for line in [
        "switchboard_turn_relay_auth_failures_total{reason=\"malformed\"} 0",
        "switchboard_turn_relay_auth_failures_total{reason=\"expired\"} 1",
        "switchboard_turn_relay_auth_failures_total{reason=\"unknown_key\"} 1",
        "switchboard_turn_relay_auth_failures_total{reason=\"bad_password\"} 3",
    ] {
        assert!(
            text.lines().any(|exported| exported == line),
            "{line} in\n{text}"
        );
    }
}
