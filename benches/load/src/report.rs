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

/// Everything a run measured: every client's counters and histograms summed into one
/// [`ClientStats`], plus what only exists across clients.
pub(crate) struct Merged {
    /// Setup latencies.
    pub(crate) setup: Histogram<u64>,
    /// The sums (its `setup_ns` and `failure` are unused).
    pub(crate) totals: ClientStats,
    /// Clients that stopped early.
    pub(crate) n_failed: usize,
    /// One failure reason, for the report.
    pub(crate) first_failure: Option<String>,
}

/// Merges every client's statistics.
pub(crate) fn merge(all: Vec<ClientStats>) -> Merged {
    let mut merged = Merged {
        setup: Histogram::<u64>::new_with_bounds(1_000, 120_000_000_000, 3).expect("valid bounds"),
        totals: ClientStats::new(),
        n_failed: 0,
        first_failure: None,
    };
    for mut stats in all {
        if let Some(setup_ns) = stats.setup_ns {
            merged.setup.saturating_record(setup_ns);
        }
        if let Some(failure) = stats.failure.take() {
            merged.n_failed += 1;
            merged.first_failure.get_or_insert(failure);
        }
        merged.totals.absorb(&stats);
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
