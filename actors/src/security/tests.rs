//! Every event is counted under its reason and tenant; lines are sampled per reason; tenant
//! labels are bounded; nothing secret reaches the log.

use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_engine::time::Timestamp;

use super::*;
use switchboard_testing::{CapturedLog, set_thread_subscriber};

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Relaxed))
    }
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant")
}

fn event(reason: SecurityReason, tenant_id: Option<&TenantId>) -> SecurityEvent<'_> {
    SecurityEvent {
        reason,
        code: "code",
        tenant_id,
        user_id: None,
        remote: Some(SocketAddr::from(([127, 0, 0, 1], 4242))),
    }
}

#[test]
fn a_flood_is_counted_in_full_and_logged_in_a_bounded_number_of_lines() {
    let log = CapturedLog::default();
    let _guard = set_thread_subscriber(
        tracing_subscriber::fmt()
            .with_writer(log.clone())
            .with_ansi(false)
            .finish(),
    );
    let clock = Arc::new(TestClock(AtomicU64::new(1_700_000_000_000)));
    let security = SecurityLog::new(Arc::clone(&clock) as Arc<dyn Clock>);
    let acme = tenant("acme");
    for _ in 0..10_000 {
        security.record(event(SecurityReason::TokenRefused, None));
        security.record(event(SecurityReason::NotFound, Some(&acme)));
    }
    assert_eq!(
        security.counts(),
        vec![
            (SecurityReason::TokenRefused, "unknown".to_owned(), 10_000),
            (SecurityReason::NotFound, "acme".to_owned(), 10_000),
        ]
    );
    let lines = log.lines();
    assert_eq!(lines.len(), 2 * LOG_BURST as usize, "{lines:?}");
    assert!(lines.iter().all(|line| line.contains("WARN")
        && line.contains("switchboard::security")
        && line.contains("remote_addr=\"127.0.0.1:4242\"")));
    assert!(
        lines
            .iter()
            .any(|line| line.contains("reason=\"not_found\"") && line.contains("tenant=\"acme\""))
    );

    // The next interval logs again, saying how many were left out.
    clock
        .0
        .fetch_add(LOG_INTERVAL.as_millis() as u64, Ordering::Relaxed);
    security.record(event(SecurityReason::TokenRefused, None));
    let lines = log.lines();
    let last = lines.last().expect("a line");
    assert!(
        last.contains(&format!(
            "n_not_logged_since_previous_line={}",
            10_000 - LOG_BURST
        )),
        "{last}"
    );
}

#[test]
fn tenant_labels_are_bounded() {
    let clock = Arc::new(TestClock(AtomicU64::new(0)));
    let security = SecurityLog::new(clock);
    let tenants: Vec<TenantId> = (0..MAX_TENANT_LABELS + 5)
        .map(|n| tenant(&format!("t{n}")))
        .collect();
    for tenant_id in &tenants {
        security.record(event(SecurityReason::RateLimited, Some(tenant_id)));
    }
    // A tenant seen before keeps its label after the cap is reached.
    security.record(event(SecurityReason::NotMember, Some(&tenants[0])));
    let counts = security.counts();
    assert_eq!(
        counts.len(),
        MAX_TENANT_LABELS + 2,
        "every labelled tenant, `other`, and t0 again"
    );
    assert!(counts.contains(&(SecurityReason::RateLimited, "other".to_owned(), 5)));
    assert!(counts.contains(&(SecurityReason::NotMember, "t0".to_owned(), 1)));
}

#[test]
fn access_denials_are_the_errors_a_probe_meets() {
    let reasons: Vec<Option<SecurityReason>> = [
        Error::NotMember,
        Error::NotFound,
        Error::Forbidden {
            reason: "no".into(),
        },
        Error::RateLimited { retry_after_ms: 1 },
        Error::invalid("text", "empty"),
    ]
    .iter()
    .map(SecurityReason::of_access_denial)
    .collect();
    assert_eq!(
        reasons,
        [
            Some(SecurityReason::NotMember),
            Some(SecurityReason::NotFound),
            Some(SecurityReason::Forbidden),
            None,
            None
        ]
    );
}
