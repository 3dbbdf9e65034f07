//! The counters count every refusal by reason and are what `/metrics` shows (the sampler itself
//! is tested in `switchboard_engine::sampling`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use switchboard_engine::time::Timestamp;

use super::*;

fn at(seconds: u64) -> Timestamp {
    Timestamp(1_700_000_000_000 + seconds * 1000)
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
