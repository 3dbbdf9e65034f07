//! One simulated client: connect, greet, join its room, then send (open or closed loop) and
//! receive until told to finish, recording what it saw.
//!
//! Each client runs as one task that owns its socket, spoken to with the harness's own
//! WebSocket codec ([`crate::wire`]): every read takes whatever the kernel has and walks all the
//! frames in it in place, and the sends of one turn go out in one write. Statistics are kept per
//! task (no shared locks on the hot path) and merged when the run ends; the only shared state is
//! a few atomic counters the coordinator polls to know when every expected delivery has arrived,
//! updated once per read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, watch};

use crate::protocol::{Header, Incoming, Target, write_message_text};
use crate::wire::{Frame, FrameReader, FrameWriter};

/// The read buffer of a connection that never sends (it grows for a larger frame).
const SETUP_READ_BYTES: usize = 4 * 1024;
/// The read buffer of a connection that sends: room for hundreds of frames per read.
const EXCHANGE_READ_BYTES: usize = 64 * 1024;

/// How a client sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SendPlan {
    /// Never sends (idle capacity runs and pure receivers).
    Silent,
    /// Sends one message every `interval`, whatever happens to earlier ones.
    OpenLoop {
        /// Time between sends.
        interval: Duration,
        /// Delay before the first send, to spread senders.
        offset: Duration,
    },
    /// Keeps `window` sends in flight, sending the next as soon as one is acknowledged.
    ClosedLoop {
        /// Sends in flight.
        window: usize,
    },
}

/// Run phases, as nanoseconds since the harness epoch (0 = not yet set).
#[derive(Default)]
pub(crate) struct Phases {
    /// Sending starts.
    pub(crate) go_ns: AtomicU64,
    /// Latencies of messages sent from here on are recorded.
    pub(crate) measure_ns: AtomicU64,
    /// No sends from here on.
    pub(crate) stop_send_ns: AtomicU64,
}

/// Counters the coordinator reads while the run is going.
#[derive(Default)]
pub(crate) struct Progress {
    /// Clients that finished connecting and joining.
    pub(crate) n_ready: AtomicUsize,
    /// Clients that failed to set up.
    pub(crate) n_failed: AtomicUsize,
    /// Messages sent so far.
    pub(crate) n_sent: AtomicU64,
    /// Message frames received from another sender so far.
    pub(crate) n_received: AtomicU64,
}

/// What every client shares.
pub(crate) struct Shared {
    /// The dialect.
    pub(crate) target: Target,
    /// The server address.
    pub(crate) addr: SocketAddr,
    /// Body size of each message.
    pub(crate) message_bytes: usize,
    /// The clock all timestamps are relative to.
    pub(crate) epoch: Instant,
    /// Phase boundaries.
    pub(crate) phases: Phases,
    /// Progress counters.
    pub(crate) progress: Progress,
    /// Limits concurrent connection setups.
    pub(crate) connect_permits: Semaphore,
    /// Flips to true when clients must stop.
    pub(crate) finish: watch::Receiver<bool>,
    /// Flips to true when senders may start.
    pub(crate) go: watch::Receiver<bool>,
}

/// One client's assignment.
pub(crate) struct ClientSpec {
    /// The client's index (its sender id).
    pub(crate) index: u32,
    /// The room (conversation id) it joins.
    pub(crate) room: String,
    /// The full WebSocket URL (with token for Switchboard).
    pub(crate) url: String,
    /// The local address to bind, if any.
    pub(crate) source_ip: Option<IpAddr>,
    /// How it sends.
    pub(crate) plan: SendPlan,
}

/// What one client measured.
pub(crate) struct ClientStats {
    /// Connect-to-joined time, nanoseconds.
    pub(crate) setup_ns: Option<u64>,
    /// Send → receipt by another member, for messages sent in the measured window.
    pub(crate) end_to_end: Latencies,
    /// Send → `pending` ack.
    pub(crate) ack_pending: Latencies,
    /// Send → `delivered` ack.
    pub(crate) ack_delivered: Latencies,
    /// Messages sent (all phases).
    pub(crate) n_sent: u64,
    /// Messages sent in the measured window.
    pub(crate) n_sent_measured: u64,
    /// Message frames from other senders received.
    pub(crate) n_received: u64,
    /// Received again (number not above the last seen from that sender).
    pub(crate) n_duplicates: u64,
    /// Received after a skipped number from that sender.
    pub(crate) n_out_of_order: u64,
    /// Sends refused by the server.
    pub(crate) n_rejected: u64,
    /// Error frames received.
    pub(crate) n_error_frames: u64,
    /// Why the client stopped early, if it did.
    pub(crate) failure: Option<String>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 120_000_000_000, 3).expect("valid histogram bounds")
}

/// A latency histogram made on its first value. One histogram of this range and precision
/// holds about 150 KiB of counters: three made up front per client were most of the harness's
/// time (zeroing fresh pages) and memory when 10,000 clients connect, and idle clients never
/// record anything.
#[derive(Default)]
pub(crate) struct Latencies(Option<Histogram<u64>>);

impl Latencies {
    /// Records one latency, in nanoseconds (clamped to the range).
    pub(crate) fn record(&mut self, nanos: u64) {
        self.0
            .get_or_insert_with(histogram)
            .saturating_record(nanos);
    }

    /// Adds every value of `other`.
    fn absorb(&mut self, other: &Latencies) {
        if let Some(values) = &other.0 {
            self.0
                .get_or_insert_with(histogram)
                .add(values)
                .expect("same bounds");
        }
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> u64 {
        self.0.as_ref().map_or(0, Histogram::len)
    }

    /// The values as a histogram (an empty one if there are none).
    pub(crate) fn histogram(&self) -> Histogram<u64> {
        self.0.clone().unwrap_or_else(histogram)
    }
}

impl ClientStats {
    /// Adds another client's counters and histograms to these.
    pub(crate) fn absorb(&mut self, other: &ClientStats) {
        self.end_to_end.absorb(&other.end_to_end);
        self.ack_pending.absorb(&other.ack_pending);
        self.ack_delivered.absorb(&other.ack_delivered);
        self.n_sent += other.n_sent;
        self.n_sent_measured += other.n_sent_measured;
        self.n_received += other.n_received;
        self.n_duplicates += other.n_duplicates;
        self.n_out_of_order += other.n_out_of_order;
        self.n_rejected += other.n_rejected;
        self.n_error_frames += other.n_error_frames;
    }

    pub(crate) fn new() -> Self {
        ClientStats {
            setup_ns: None,
            end_to_end: Latencies::default(),
            ack_pending: Latencies::default(),
            ack_delivered: Latencies::default(),
            n_sent: 0,
            n_sent_measured: 0,
            n_received: 0,
            n_duplicates: 0,
            n_out_of_order: 0,
            n_rejected: 0,
            n_error_frames: 0,
            failure: None,
        }
    }
}

fn now_ns(shared: &Shared) -> u64 {
    u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One open WebSocket: the reader and writer of its frames and the halves of its stream.
struct Connection {
    reader: FrameReader,
    read: OwnedReadHalf,
    writer: FrameWriter,
    write: OwnedWriteHalf,
}

impl Connection {
    /// Sends one text frame now.
    async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.writer.text(text.as_bytes());
        self.writer.flush(&mut self.write).await.context("send")
    }

    /// The next text message (answering pings meanwhile).
    async fn next_text(&mut self) -> anyhow::Result<Vec<u8>> {
        loop {
            while let Some(frame) = self.reader.next_frame()? {
                match frame {
                    Frame::Text(payload) => return Ok(self.reader.payload(&payload).to_vec()),
                    Frame::Ping(payload) => self.writer.pong(self.reader.payload(&payload)),
                    Frame::Close => bail!("closed by the server"),
                    Frame::Ignored => {}
                }
            }
            self.writer.flush(&mut self.write).await.context("pong")?;
            if self
                .reader
                .fill(&mut self.read)
                .await
                .context("read failed")?
                == 0
            {
                bail!("connection ended");
            }
        }
    }
}

async fn connect(shared: &Shared, spec: &ClientSpec) -> anyhow::Result<Connection> {
    let socket = TcpSocket::new_v4().context("socket")?;
    if let Some(source_ip) = spec.source_ip {
        socket
            .bind(SocketAddr::new(source_ip, 0))
            .with_context(|| format!("binding {source_ip}"))?;
    }
    let stream = socket.connect(shared.addr).await.context("tcp connect")?;
    stream.set_nodelay(true).context("nodelay")?;
    let read_bytes = match spec.plan {
        SendPlan::Silent => SETUP_READ_BYTES,
        SendPlan::OpenLoop { .. } | SendPlan::ClosedLoop { .. } => EXCHANGE_READ_BYTES,
    };
    let (reader, read, write) = crate::wire::handshake(stream, &spec.url, read_bytes)
        .await
        .context("websocket upgrade")?;
    Ok(Connection {
        reader,
        read,
        writer: FrameWriter::new(),
        write,
    })
}

/// Connects, greets and joins; returns the ready connection.
async fn set_up(shared: &Shared, spec: &ClientSpec) -> anyhow::Result<Connection> {
    let mut socket = connect(shared, spec).await?;
    let target = shared.target;
    if let Some(greeting) = target.greeting() {
        let frame = socket.next_text().await?;
        if target.classify(&frame) != greeting {
            bail!(
                "expected a greeting, got {}",
                String::from_utf8_lossy(&frame)
            );
        }
        if target == Target::Socketio {
            socket.send_text("40").await.context("namespace connect")?;
            loop {
                let frame = socket.next_text().await?;
                match target.classify(&frame) {
                    Incoming::Connected => break,
                    Incoming::Ping => socket.send_text("3").await.context("pong")?,
                    _ => bail!(
                        "expected the namespace connect, got {}",
                        String::from_utf8_lossy(&frame)
                    ),
                }
            }
        }
    }
    socket
        .send_text(&target.join_frame(&spec.room))
        .await
        .context("join")?;
    loop {
        let frame = socket.next_text().await?;
        match target.classify(&frame) {
            Incoming::Joined => return Ok(socket),
            Incoming::Ping => socket.send_text("3").await.context("pong")?,
            Incoming::Error => bail!("join refused: {}", String::from_utf8_lossy(&frame)),
            _ => {}
        }
    }
}

/// Runs one client to the end and returns what it measured.
pub(crate) async fn run(shared: Arc<Shared>, spec: ClientSpec) -> ClientStats {
    let mut stats = ClientStats::new();
    let setup_started = now_ns(&shared);
    let socket = {
        let _permit = shared.connect_permits.acquire().await;
        set_up(&shared, &spec).await
    };
    let socket = match socket {
        Ok(socket) => socket,
        Err(error) => {
            stats.failure = Some(format!("setup: {error:#}"));
            shared.progress.n_failed.fetch_add(1, Ordering::AcqRel);
            return stats;
        }
    };
    stats.setup_ns = Some(now_ns(&shared).saturating_sub(setup_started));
    shared.progress.n_ready.fetch_add(1, Ordering::AcqRel);
    if let Err(error) = exchange(&shared, &spec, socket, &mut stats).await {
        stats.failure = Some(format!("{error:#}"));
    }
    stats
}

async fn exchange(
    shared: &Shared,
    spec: &ClientSpec,
    mut socket: Connection,
    stats: &mut ClientStats,
) -> anyhow::Result<()> {
    let target = shared.target;
    let mut finish = shared.finish.clone();
    let mut go = shared.go.clone();
    let mut last_seen: Vec<u64> = Vec::new();
    let mut sent_at: HashMap<u64, u64> = HashMap::new();
    let mut n_in_flight = 0usize;
    let mut next_number = 1u64;
    let mut scratch = SendScratch::default();
    // The open-loop schedule starts when sending starts, offset to spread the senders.
    let make_ticker = || match spec.plan {
        SendPlan::OpenLoop { interval, offset } => {
            let mut ticker =
                tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            Some(ticker)
        }
        SendPlan::Silent | SendPlan::ClosedLoop { .. } => None,
    };
    let window = match spec.plan {
        SendPlan::ClosedLoop { window } => window,
        _ => 0,
    };
    // Frames are handled from the first moment, so nothing that arrives before this client sees
    // the start signal is missed; only sending waits for it.
    let mut started = *go.borrow();
    let mut ticker = if started { make_ticker() } else { None };
    loop {
        let sending_allowed = started && {
            let stop = shared.phases.stop_send_ns.load(Ordering::Acquire);
            stop == 0 || now_ns(shared) < stop
        };
        // Every send the closed loop allows now, written at once.
        while window > 0 && n_in_flight < window && sending_allowed {
            if !queue_send(
                shared,
                spec,
                &mut scratch,
                &mut socket.writer,
                &mut next_number,
                &mut sent_at,
                stats,
            ) {
                break;
            }
            n_in_flight += 1;
        }
        socket
            .writer
            .flush(&mut socket.write)
            .await
            .context("send")?;
        tokio::select! {
            biased;
            _ = finish.changed() => {
                socket.writer.close();
                let _ = socket.writer.flush(&mut socket.write).await;
                return Ok(());
            }
            changed = go.changed(), if !started => {
                changed.context("coordinator gone")?;
                started = *go.borrow();
                if started {
                    ticker = make_ticker();
                }
            }
            read = socket.reader.fill(&mut socket.read) => {
                if read.context("read failed")? == 0 {
                    bail!("connection ended");
                }
                let now = now_ns(shared);
                let n_before = stats.n_received;
                while let Some(frame) = socket.reader.next_frame()? {
                    let payload = match frame {
                        Frame::Text(payload) => payload,
                        Frame::Ping(payload) => {
                            socket.writer.pong(socket.reader.payload(&payload));
                            continue;
                        }
                        Frame::Close => bail!("closed by the server"),
                        Frame::Ignored => continue,
                    };
                    match target.classify(socket.reader.payload(&payload)) {
                        Incoming::Message(header)
                            if header.sender != spec.index => {
                                receive(shared, header, now, &mut last_seen, stats);
                            }
                        Incoming::AckPending { request } => {
                            if let Some(sent) = sent_at.get(&request)
                                && *sent >= shared.phases.measure_ns.load(Ordering::Acquire) {
                                    stats.ack_pending.record(now.saturating_sub(*sent));
                                }
                        }
                        Incoming::AckDelivered { request } => {
                            if let Some(sent) = sent_at.remove(&request) {
                                if sent >= shared.phases.measure_ns.load(Ordering::Acquire) {
                                    stats.ack_delivered.record(now.saturating_sub(sent));
                                }
                                n_in_flight = n_in_flight.saturating_sub(1);
                            }
                        }
                        Incoming::AckRejected { request }
                            if sent_at.remove(&request).is_some() => {
                                stats.n_rejected += 1;
                                n_in_flight = n_in_flight.saturating_sub(1);
                            }
                        Incoming::Ping => socket.writer.text(b"3"),
                        Incoming::Error => stats.n_error_frames += 1,
                        _ => {}
                    }
                }
                let n_new = stats.n_received - n_before;
                if n_new > 0 {
                    shared.progress.n_received.fetch_add(n_new, Ordering::AcqRel);
                }
            }
            _ = async { ticker.as_mut().expect("checked by the guard").tick().await }, if ticker.is_some() && sending_allowed => {
                queue_send(shared, spec, &mut scratch, &mut socket.writer, &mut next_number, &mut sent_at, stats);
            }
        }
    }
}

fn receive(
    shared: &Shared,
    header: Header,
    now: u64,
    last_seen: &mut Vec<u64>,
    stats: &mut ClientStats,
) {
    let sender = header.sender as usize;
    if sender >= last_seen.len() {
        last_seen.resize(sender + 1, 0);
    }
    let last = &mut last_seen[sender];
    if header.number <= *last {
        stats.n_duplicates += 1;
        return;
    }
    if header.number != *last + 1 {
        stats.n_out_of_order += 1;
    }
    *last = header.number;
    stats.n_received += 1;
    let measure = shared.phases.measure_ns.load(Ordering::Acquire);
    let stop = shared.phases.stop_send_ns.load(Ordering::Acquire);
    if measure > 0 && header.sent_ns >= measure && (stop == 0 || header.sent_ns < stop) {
        stats.end_to_end.record(now.saturating_sub(header.sent_ns));
    }
}

/// The buffers one client builds its sends in, reused from send to send.
#[derive(Default)]
struct SendScratch {
    text: String,
    client_id: String,
    frame: String,
}

impl SendScratch {
    fn clear(&mut self) {
        self.text.clear();
        self.client_id.clear();
        self.frame.clear();
    }
}

/// Queues one message in `writer` (unless the send window has closed: then `false`).
fn queue_send(
    shared: &Shared,
    spec: &ClientSpec,
    scratch: &mut SendScratch,
    writer: &mut FrameWriter,
    next_number: &mut u64,
    sent_at: &mut HashMap<u64, u64>,
    stats: &mut ClientStats,
) -> bool {
    let sent_ns = now_ns(shared);
    let stop = shared.phases.stop_send_ns.load(Ordering::Acquire);
    if stop != 0 && sent_ns >= stop {
        // The send window closed while this send was being scheduled.
        return false;
    }
    let number = *next_number;
    *next_number += 1;
    let header = Header {
        sender: spec.index,
        number,
        sent_ns,
    };
    scratch.clear();
    write_message_text(&mut scratch.text, header, shared.message_bytes);
    {
        use std::fmt::Write as _;
        let _ = write!(scratch.client_id, "c{}-{number}", spec.index);
    }
    shared.target.write_send_frame(
        &mut scratch.frame,
        &spec.room,
        number,
        &scratch.client_id,
        &scratch.text,
    );
    writer.text(scratch.frame.as_bytes());
    sent_at.insert(number, sent_ns);
    stats.n_sent += 1;
    let measure = shared.phases.measure_ns.load(Ordering::Acquire);
    if measure > 0 && sent_ns >= measure {
        stats.n_sent_measured += 1;
    }
    shared.progress.n_sent.fetch_add(1, Ordering::AcqRel);
    true
}
