//! Turning per-client statistics into one report: merged histograms, rates, the delivery ratio,
//! and the server's CPU and memory read from `/proc/<pid>`.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;

use crate::client::ClientStats;

/// Server resource use sampled from `/proc`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct ProcSample {
    /// user + system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// Resident set size, KiB.
    pub(crate) rss_kib: u64,
    /// Peak resident set size, KiB.
    pub(crate) peak_rss_kib: u64,
}

/// Reads a process's CPU time and memory.
pub(crate) fn sample_process(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|line| line.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_kib: field("VmRSS:")?,
        peak_rss_kib: field("VmHWM:")?,
    })
}

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
pub(crate) const TICKS_PER_SECOND: f64 = 100.0;

/// Everything a run measured.
pub(crate) struct Merged {
    /// Setup latencies.
    pub(crate) setup: Histogram<u64>,
    /// End-to-end latencies.
    pub(crate) end_to_end: Histogram<u64>,
    /// Pending-ack latencies.
    pub(crate) ack_pending: Histogram<u64>,
    /// Delivered-ack latencies.
    pub(crate) ack_delivered: Histogram<u64>,
    /// Sums of the counters.
    pub(crate) n_sent: u64,
    /// Sends in the measured window.
    pub(crate) n_sent_measured: u64,
    /// Deliveries to other members.
    pub(crate) n_received: u64,
    /// Duplicate deliveries.
    pub(crate) n_duplicates: u64,
    /// Deliveries after a gap.
    pub(crate) n_out_of_order: u64,
    /// Refused sends.
    pub(crate) n_rejected: u64,
    /// Error frames.
    pub(crate) n_error_frames: u64,
    /// Clients that stopped early, with a sample reason.
    pub(crate) n_failed: usize,
    /// One failure reason, for the report.
    pub(crate) first_failure: Option<String>,
}

/// Merges every client's statistics.
pub(crate) fn merge(all: Vec<ClientStats>) -> Merged {
    let histogram =
        || Histogram::<u64>::new_with_bounds(1_000, 120_000_000_000, 3).expect("valid bounds");
    let mut merged = Merged {
        setup: histogram(),
        end_to_end: histogram(),
        ack_pending: histogram(),
        ack_delivered: histogram(),
        n_sent: 0,
        n_sent_measured: 0,
        n_received: 0,
        n_duplicates: 0,
        n_out_of_order: 0,
        n_rejected: 0,
        n_error_frames: 0,
        n_failed: 0,
        first_failure: None,
    };
    for stats in all {
        if let Some(setup_ns) = stats.setup_ns {
            merged.setup.saturating_record(setup_ns);
        }
        merged
            .end_to_end
            .add(&stats.end_to_end)
            .expect("same bounds");
        merged
            .ack_pending
            .add(&stats.ack_pending)
            .expect("same bounds");
        merged
            .ack_delivered
            .add(&stats.ack_delivered)
            .expect("same bounds");
        merged.n_sent += stats.n_sent;
        merged.n_sent_measured += stats.n_sent_measured;
        merged.n_received += stats.n_received;
        merged.n_duplicates += stats.n_duplicates;
        merged.n_out_of_order += stats.n_out_of_order;
        merged.n_rejected += stats.n_rejected;
        merged.n_error_frames += stats.n_error_frames;
        if let Some(failure) = stats.failure {
            merged.n_failed += 1;
            merged.first_failure.get_or_insert(failure);
        }
    }
    merged
}

/// Latency quantiles in milliseconds.
pub(crate) fn quantiles_ms(histogram: &Histogram<u64>) -> serde_json::Value {
    if histogram.is_empty() {
        return serde_json::Value::Null;
    }
    let ms = |nanos: u64| (nanos as f64 / 1e6 * 1000.0).round() / 1000.0;
    json!({
        "n": histogram.len(),
        "p50": ms(histogram.value_at_quantile(0.50)),
        "p99": ms(histogram.value_at_quantile(0.99)),
        "p999": ms(histogram.value_at_quantile(0.999)),
        "max": ms(histogram.max()),
    })
}

/// Formats quantiles for the human-readable report.
pub(crate) fn quantiles_line(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "-".to_owned();
    }
    let ms = |nanos: u64| nanos as f64 / 1e6;
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  p999 {:.3} ms  max {:.3} ms  (n={})",
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.value_at_quantile(0.999)),
        ms(histogram.max()),
        histogram.len()
    )
}
