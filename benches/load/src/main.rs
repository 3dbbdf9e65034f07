//! `switchboard-load`: the load harness.
//!
//! It opens N WebSocket connections in rooms of S members against one server on 127.0.0.1, has
//! them send at a fixed total rate (open loop), as fast as acknowledgements allow with a window
//! (closed loop), or nothing at all (idle capacity), and reports connection setup, send and
//! delivery rates, end-to-end and acknowledgement latencies (HDR histograms), the delivery ratio
//! (every lost, duplicated or out-of-order delivery counted) and the server's CPU and memory.
//! The same code drives Switchboard and the peers (`benches/peers/`), so their figures compare.
//!
//! Every run is bounded: `--warmup`, `--duration` and `--drain` shape it and `--max-time` is a
//! hard stop. Only loopback addresses are accepted as targets.

#![allow(clippy::print_stdout)] // Printing the report is the program's job.
#![allow(clippy::disallowed_methods)] // A benchmark reads the wall clock and spawns its clients.

mod client;
mod protocol;
mod report;
mod summary;
mod wire;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use crate::client::{ClientSpec, Phases, Progress, SendPlan, Shared};
use crate::protocol::Target;
use crate::report::{TICKS_PER_SECOND, merge, quantiles_line, quantiles_ms, sample_process};

/// How the clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// A fixed total rate, whatever the server does.
    Open,
    /// As fast as acknowledgements allow, `--window` in flight per sender.
    Closed,
    /// Connect, join and hold; nobody sends.
    Idle,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|character: char| !character.is_ascii_digit() && character != '.')
        .map_or((text, "s"), |split| text.split_at(split));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

/// Drives a chat server with N WebSocket clients in rooms and measures it.
#[derive(Debug, Parser)]
#[command(name = "switchboard-load", version, about, args_override_self = true)]
struct Args {
    /// Which server protocol to speak.
    #[arg(long, value_enum, default_value_t = Target::Switchboard)]
    target: Target,
    /// The server address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Number of connections.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// Members per room (must divide --connections).
    #[arg(long, default_value_t = 10)]
    room_size: usize,
    /// Senders per room (the first K members of each room send); default: every member.
    #[arg(long)]
    senders_per_room: Option<usize>,
    /// How clients send.
    #[arg(long, value_enum, default_value_t = Mode::Closed)]
    mode: Mode,
    /// Open loop: total messages per second across all senders.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Closed loop: sends in flight per sender.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    message_bytes: usize,
    /// Sending before measurements start.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// The measured window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// How long to wait for outstanding deliveries after sending stops.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    drain: Duration,
    /// Hard limit on the whole run, setup included.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    max_time: Duration,
    /// Connection setups in progress at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Comma-separated local addresses in 127.0.0.0/8 to spread connections over.
    #[arg(long, value_delimiter = ',')]
    source_ips: Vec<IpAddr>,
    /// The server's process id, for CPU and memory figures.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Switchboard: the HS256 development secret (or use --data-dir).
    #[arg(long, env = "SWITCHBOARD_LOAD_SECRET")]
    secret: Option<String>,
    /// Switchboard: the server's data directory, to read `dev-secret` from.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Switchboard: the tenant the load runs in.
    #[arg(long, default_value = "load")]
    tenant: String,
    /// A label for this run in the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Append the JSON result line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Instead of running, print a Markdown summary of this JSON-lines result file.
    #[arg(long)]
    summarize: Option<PathBuf>,
}

fn check_loopback(args: &Args) -> anyhow::Result<()> {
    if !args.addr.ip().is_loopback() {
        bail!(
            "refusing to load {}: only loopback addresses (127.0.0.0/8) may be targets",
            args.addr
        );
    }
    for source_ip in &args.source_ips {
        if !source_ip.is_loopback() {
            bail!("source address {source_ip} is not a loopback address");
        }
    }
    if args.connections == 0
        || args.room_size == 0
        || !args.connections.is_multiple_of(args.room_size)
    {
        bail!("--room-size must divide --connections");
    }
    if args.mode == Mode::Open && args.rate <= 0.0 {
        bail!("--rate must be positive in open loop");
    }
    Ok(())
}

fn mint_token(secret: &str, tenant: &str, user: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs();
    let claims = json!({"sub": user, "tenant": tenant, "iat": now, "exp": now + 24 * 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing a token")
}

fn user_name(index: usize) -> String {
    format!("load-u{index}")
}

/// For Switchboard: creates one conversation per room and mints every user's token.
async fn prepare_switchboard(
    args: &Args,
    n_rooms: usize,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let secret = match (&args.secret, &args.data_dir) {
        (Some(secret), _) => secret.clone(),
        (None, Some(data_dir)) => std::fs::read_to_string(data_dir.join("dev-secret"))
            .with_context(|| format!("reading {}/dev-secret", data_dir.display()))?
            .trim()
            .to_owned(),
        (None, None) => bail!("switchboard needs --secret or --data-dir to mint tokens"),
    };
    let tokens: Vec<String> = (0..args.connections)
        .map(|index| mint_token(&secret, &args.tenant, &user_name(index)))
        .collect::<anyhow::Result<_>>()?;
    let http = reqwest::Client::new();
    let mut rooms = Vec::with_capacity(n_rooms);
    for room in 0..n_rooms {
        let first = room * args.room_size;
        let members: Vec<String> = (first + 1..first + args.room_size).map(user_name).collect();
        let response = http
            .post(format!("http://{}/v1/conversations", args.addr))
            .bearer_auth(&tokens[first])
            .json(
                &json!({"kind": "group", "title": format!("load room {room}"), "members": members}),
            )
            .send()
            .await
            .context("creating a conversation")?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.context("conversation body")?;
        if status.as_u16() != 201 {
            bail!("creating a conversation failed: {status} {body}");
        }
        let id = body["conversation_id"]
            .as_str()
            .context("conversation id")?;
        rooms.push(id.to_owned());
    }
    Ok((rooms, tokens))
}

fn print_and_record(args: &Args, result: &serde_json::Value, human: &str) -> anyhow::Result<()> {
    println!("{human}");
    println!("{result}");
    if let Some(path) = &args.json_out {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{result}")?;
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    check_loopback(&args)?;
    let started = Instant::now();
    let n_rooms = args.connections / args.room_size;
    let senders_per_room = args
        .senders_per_room
        .unwrap_or(args.room_size)
        .min(args.room_size);
    let (rooms, tokens) = match args.target {
        Target::Switchboard => prepare_switchboard(&args, n_rooms).await?,
        _ => (
            (0..n_rooms).map(|room| format!("room-{room}")).collect(),
            Vec::new(),
        ),
    };
    let n_senders = match args.mode {
        Mode::Idle => 0,
        _ => n_rooms * senders_per_room,
    };
    let (finish_sender, finish) = watch::channel(false);
    let (go_sender, go) = watch::channel(false);
    let shared = Arc::new(Shared {
        target: args.target,
        addr: args.addr,
        message_bytes: args.message_bytes.max(48),
        epoch: started,
        phases: Phases::default(),
        progress: Progress::default(),
        connect_permits: Semaphore::new(args.connect_concurrency.max(1)),
        finish,
        go,
    });
    let baseline = args.server_pid.and_then(sample_process);
    let harness_before_setup = sample_process(std::process::id());
    let setup_started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for index in 0..args.connections {
        let room_index = index / args.room_size;
        let is_sender = n_senders > 0 && index % args.room_size < senders_per_room;
        let plan = match (args.mode, is_sender) {
            (Mode::Idle, _) | (_, false) => SendPlan::Silent,
            (Mode::Closed, true) => SendPlan::ClosedLoop {
                window: args.window.max(1),
            },
            (Mode::Open, true) => {
                let interval = Duration::from_secs_f64(n_senders as f64 / args.rate);
                let offset = interval.mul_f64((index as f64 * 0.618_033_988_7) % 1.0);
                SendPlan::OpenLoop { interval, offset }
            }
        };
        let spec = ClientSpec {
            index: u32::try_from(index).context("too many connections")?,
            room: rooms[room_index].clone(),
            url: args.target.url(
                &args.addr.to_string(),
                tokens.get(index).map(String::as_str),
            ),
            source_ip: (!args.source_ips.is_empty())
                .then(|| args.source_ips[index % args.source_ips.len()]),
            plan,
        };
        tasks.push(tokio::spawn(client::run(Arc::clone(&shared), spec)));
    }
    // Wait for every client to be ready (or to fail).
    let deadline = started + args.max_time;
    loop {
        let n_done = shared.progress.n_ready.load(Ordering::Acquire)
            + shared.progress.n_failed.load(Ordering::Acquire);
        if n_done >= args.connections {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "setup did not finish within --max-time ({n_done} of {} clients)",
                args.connections
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let n_ready = shared.progress.n_ready.load(Ordering::Acquire);
    let after_setup = args.server_pid.and_then(sample_process);
    let harness_after_setup = sample_process(std::process::id());
    // The share of a core each side used while the clients connected.
    let setup_cpu = |before: Option<report::ProcSample>, after: Option<report::ProcSample>| {
        before.zip(after).map(|(before, after)| {
            let percent = (after.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64
                / TICKS_PER_SECOND
                / setup_seconds
                * 100.0;
            (percent * 10.0).round() / 10.0
        })
    };
    let setup_server_cpu = setup_cpu(baseline, after_setup);
    let setup_harness_cpu = setup_cpu(harness_before_setup, harness_after_setup);

    let mut measured = None;
    let mut harness_cpu_percent: Option<f64> = None;
    let mut drained_all = true;
    if args.mode == Mode::Idle {
        tokio::time::sleep(
            args.duration
                .min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    } else {
        let go_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let measure_ns = go_ns + u64::try_from(args.warmup.as_nanos()).unwrap_or(u64::MAX);
        let stop_ns = measure_ns + u64::try_from(args.duration.as_nanos()).unwrap_or(u64::MAX);
        shared.phases.go_ns.store(go_ns, Ordering::Release);
        shared
            .phases
            .measure_ns
            .store(measure_ns, Ordering::Release);
        shared.phases.stop_send_ns.store(stop_ns, Ordering::Release);
        let _ = go_sender.send(true);
        tokio::time::sleep(args.warmup).await;
        let cpu_start = args.server_pid.and_then(sample_process);
        let harness_start = sample_process(std::process::id());
        let measure_started = Instant::now();
        tokio::time::sleep(args.duration).await;
        let cpu_end = args.server_pid.and_then(sample_process);
        let harness_end = sample_process(std::process::id());
        let measured_seconds = measure_started.elapsed().as_secs_f64();
        measured = Some((cpu_start, cpu_end, measured_seconds));
        if let (Some(start), Some(end)) = (harness_start, harness_end) {
            harness_cpu_percent = Some(
                ((end.cpu_ticks - start.cpu_ticks) as f64 / TICKS_PER_SECOND) / measured_seconds
                    * 100.0,
            );
        }
        // Let sends that were already under way when the window closed be counted first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Drain: wait until every expected delivery has arrived, or the drain time is up.
        let drain_deadline = (Instant::now() + args.drain).min(deadline);
        loop {
            let expected =
                shared.progress.n_sent.load(Ordering::Acquire) * (args.room_size as u64 - 1);
            if shared.progress.n_received.load(Ordering::Acquire) >= expected {
                break;
            }
            if Instant::now() >= drain_deadline {
                drained_all = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let end_sample = args.server_pid.and_then(sample_process);
    let _ = finish_sender.send(true);
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(Ok(stats)) = tokio::time::timeout(Duration::from_secs(10), task).await {
            all.push(stats);
        }
    }
    let merged = merge(all);
    let expected = merged.totals.n_sent * (args.room_size as u64 - 1);
    let delivery_ratio = if expected == 0 {
        1.0
    } else {
        merged.totals.n_received as f64 / expected as f64
    };
    let n_lost = expected.saturating_sub(merged.totals.n_received);

    let (cpu_percent, duration_seconds) = match measured {
        Some((Some(start), Some(end), seconds)) => (
            Some(((end.cpu_ticks - start.cpu_ticks) as f64 / TICKS_PER_SECOND) / seconds * 100.0),
            seconds,
        ),
        Some((_, _, seconds)) => (None, seconds),
        None => (None, args.duration.as_secs_f64()),
    };
    let rss_per_connection_bytes = match (baseline, after_setup) {
        (Some(before), Some(after)) if n_ready > 0 => {
            Some(((after.rss_kib.saturating_sub(before.rss_kib)) * 1024) as f64 / n_ready as f64)
        }
        _ => None,
    };
    let deliveries_measured = merged.totals.end_to_end.len();
    let result = json!({
        "target": args.target,
        "label": args.label,
        "mode": args.mode,
        "connections": args.connections,
        "connected": n_ready,
        "room_size": args.room_size,
        "senders": n_senders,
        "rate": if args.mode == Mode::Open { json!(args.rate) } else { serde_json::Value::Null },
        "window": if args.mode == Mode::Closed { json!(args.window) } else { serde_json::Value::Null },
        "message_bytes": shared.message_bytes,
        "duration_s": duration_seconds,
        "connect": {
            "per_s": (n_ready as f64 / setup_seconds).round(),
            "setup_ms": quantiles_ms(&merged.setup),
            "server_cpu_percent": setup_server_cpu,
            "harness_cpu_percent": setup_harness_cpu,
            "harness_saturated": harness_saturated(setup_harness_cpu),
        },
        "sent": merged.totals.n_sent,
        "sent_per_s": (merged.totals.n_sent_measured as f64 / duration_seconds).round(),
        "deliveries_per_s": (deliveries_measured as f64 / duration_seconds).round(),
        "end_to_end_ms": quantiles_ms(&merged.totals.end_to_end.histogram()),
        "ack_pending_ms": quantiles_ms(&merged.totals.ack_pending.histogram()),
        "ack_delivered_ms": quantiles_ms(&merged.totals.ack_delivered.histogram()),
        "expected_deliveries": expected,
        "received_deliveries": merged.totals.n_received,
        "delivery_ratio": delivery_ratio,
        "lost": n_lost,
        "duplicates": merged.totals.n_duplicates,
        "out_of_order": merged.totals.n_out_of_order,
        "rejected": merged.totals.n_rejected,
        "error_frames": merged.totals.n_error_frames,
        "failed_clients": merged.n_failed,
        "first_failure": merged.first_failure,
        "drained": drained_all,
        "server": {
            "cpu_percent": cpu_percent.map(|percent| (percent * 10.0).round() / 10.0),
            "rss_kib_before": baseline.map(|sample| sample.rss_kib),
            "rss_kib_after_setup": after_setup.map(|sample| sample.rss_kib),
            "peak_rss_kib": end_sample.map(|sample| sample.peak_rss_kib),
            "rss_per_connection_bytes": rss_per_connection_bytes.map(f64::round),
        },
        "harness_cpu_percent": harness_cpu_percent.map(|percent| (percent * 10.0).round() / 10.0),
        "harness_saturated": harness_saturated(harness_cpu_percent),
    });
    let human = format!(
        "{target} {label} mode={mode:?} connections={connected}/{connections} room={room} senders={senders}\n  \
         connect: {connect_rate:.0}/s, setup {setup}; server cpu {setup_server_cpu}, harness cpu {setup_harness_cpu}\n  \
         sent {sent_rate:.0} msg/s, deliveries {delivery_rate:.0}/s, ratio {ratio:.6} (lost {lost}, dup {dup}, out-of-order {ooo}, rejected {rejected})\n  \
         end-to-end {e2e}\n  \
         ack pending {pending}\n  \
         ack delivered {delivered}\n  \
         server cpu {cpu} rss per connection {rss}; harness cpu {harness_cpu}",
        target = args.target,
        label = args.label,
        mode = args.mode,
        connected = n_ready,
        connections = args.connections,
        room = args.room_size,
        senders = n_senders,
        connect_rate = n_ready as f64 / setup_seconds,
        setup = quantiles_line(&merged.setup),
        setup_server_cpu =
            setup_server_cpu.map_or("-".to_owned(), |percent| format!("{percent:.0}%")),
        setup_harness_cpu = harness_cell(setup_harness_cpu),
        sent_rate = merged.totals.n_sent_measured as f64 / duration_seconds,
        delivery_rate = deliveries_measured as f64 / duration_seconds,
        ratio = delivery_ratio,
        lost = n_lost,
        dup = merged.totals.n_duplicates,
        ooo = merged.totals.n_out_of_order,
        rejected = merged.totals.n_rejected,
        e2e = quantiles_line(&merged.totals.end_to_end.histogram()),
        pending = quantiles_line(&merged.totals.ack_pending.histogram()),
        delivered = quantiles_line(&merged.totals.ack_delivered.histogram()),
        cpu = cpu_percent.map_or("-".to_owned(), |percent| format!("{percent:.0}%")),
        rss = rss_per_connection_bytes.map_or("-".to_owned(), |bytes| format!("{bytes:.0} B")),
        harness_cpu = harness_cell(harness_cpu_percent),
    );
    print_and_record(&args, &result, &human)
}

/// Past this share of one core the harness may be what limits a run: such runs are flagged.
pub(crate) const HARNESS_SATURATED_PERCENT: f64 = 90.0;

/// Whether a run's harness CPU (percent of one core) flags it.
pub(crate) fn harness_saturated(percent: Option<f64>) -> bool {
    percent.is_some_and(|percent| percent > HARNESS_SATURATED_PERCENT)
}

/// The harness's CPU for the human-readable report, flagged when it may be the bottleneck.
fn harness_cell(percent: Option<f64>) -> String {
    match percent {
        None => "-".to_owned(),
        Some(percent) if harness_saturated(Some(percent)) => format!(
            "{percent:.0}% ⚠ over {HARNESS_SATURATED_PERCENT:.0}% of its core: the harness may be the bottleneck"
        ),
        Some(percent) => format!("{percent:.0}%"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.summarize {
        print!("{}", summary::summarize(path)?);
        return Ok(());
    }
    let max_time = args.max_time;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        match tokio::time::timeout(max_time + Duration::from_secs(15), run(args)).await {
            Ok(result) => result,
            Err(_) => bail!("hard --max-time reached; the run was abandoned"),
        }
    })
}
