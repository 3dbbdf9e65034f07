//! Summarising a JSON-lines result file as Markdown: one table row per run, grouped by scenario
//! label, with each target's deliveries per second as a ratio to Socket.IO's and Bun's in the
//! same scenario. A run whose harness used over [`HARNESS_SATURATED_PERCENT`] of its core is
//! flagged (⚠), with a note under the table.

use crate::HARNESS_SATURATED_PERCENT;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_owned(), |value| format!("{value:.decimals$}"))
}

/// Reads `path` (one JSON result per line) and renders the Markdown summary.
///
/// # Errors
/// If the file cannot be read or a line is not JSON.
pub(crate) fn summarize(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut by_label: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (line_number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let result: Value =
            serde_json::from_str(line).with_context(|| format!("line {}", line_number + 1))?;
        let label = result["label"].as_str().unwrap_or_default().to_owned();
        by_label.entry(label).or_default().push(result);
    }
    let mut out = String::new();
    let mut any_saturated = false;
    writeln!(
        out,
        "| scenario | target | conns | room | mode | sent/s | deliveries/s | vs Socket.IO | vs Bun | e2e p50 ms | e2e p99 ms | delivered-ack p99 ms | delivery ratio | server CPU % | harness CPU % | RSS/conn B | connects/s |"
    )?;
    writeln!(
        out,
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for (label, results) in &by_label {
        let deliveries_of = |target: &str| {
            results
                .iter()
                .find(|result| result["target"] == target)
                .and_then(|result| number(&result["deliveries_per_s"]))
                .filter(|deliveries| *deliveries > 0.0)
        };
        let socketio = deliveries_of("socketio");
        let bun = deliveries_of("bun");
        for result in results {
            let deliveries = number(&result["deliveries_per_s"]);
            let ratio_to = |base: Option<f64>| match (deliveries, base) {
                (Some(deliveries), Some(base)) if deliveries > 0.0 => {
                    format!("{:.2}×", deliveries / base)
                }
                _ => "-".to_owned(),
            };
            let harness_percent = number(&result["harness_cpu_percent"]);
            let saturated = crate::harness_saturated(harness_percent);
            any_saturated |= saturated;
            let harness = if saturated {
                format!("{} ⚠", cell(harness_percent, 0))
            } else {
                cell(harness_percent, 0)
            };
            let mode = result["mode"].as_str().unwrap_or_default();
            let mode = match mode {
                "open" => format!("open {}/s", cell(number(&result["rate"]), 0)),
                "closed" => format!("closed w={}", cell(number(&result["window"]), 0)),
                other => other.to_owned(),
            };
            writeln!(
                out,
                "| {label} | {target} | {connected} | {room} | {mode} | {sent} | {deliveries} | {vs_socketio} | {vs_bun} | {p50} | {p99} | {ack99} | {ratio} | {cpu} | {harness} | {rss} | {connects} |",
                target = result["target"].as_str().unwrap_or_default(),
                connected = cell(number(&result["connected"]), 0),
                room = cell(number(&result["room_size"]), 0),
                sent = cell(number(&result["sent_per_s"]), 0),
                deliveries = cell(deliveries, 0),
                vs_socketio = ratio_to(socketio),
                vs_bun = ratio_to(bun),
                p50 = cell(number(&result["end_to_end_ms"]["p50"]), 3),
                p99 = cell(number(&result["end_to_end_ms"]["p99"]), 3),
                ack99 = cell(number(&result["ack_delivered_ms"]["p99"]), 3),
                ratio = cell(number(&result["delivery_ratio"]), 6),
                cpu = cell(number(&result["server"]["cpu_percent"]), 0),
                harness = harness,
                rss = cell(number(&result["server"]["rss_per_connection_bytes"]), 0),
                connects = cell(number(&result["connect"]["per_s"]), 0),
            )?;
        }
    }
    if any_saturated {
        writeln!(
            out,
            "\n⚠: the harness used over {HARNESS_SATURATED_PERCENT:.0}% of its core in this run: it may be the bottleneck, so the server's figure is a lower bound."
        )?;
    }
    Ok(out)
}
