//! Health of the TURN and STUN servers handed to clients, so that clients fail over.
//!
//! The [`HealthCheckerActor`] sends a STUN binding request (RFC 5389, encoded by webrtc-rs's
//! `stun` crate) to every configured server, over UDP or TCP as its URI says, every interval,
//! and records the outcome and round-trip time on a shared [`HealthBoard`]. The credential
//! service orders each server list by it ([`HealthBoard::order`]): reachable servers first,
//! fastest first, then servers not probed yet; unreachable ones are left out, unless every one
//! is (a client may still get through where the probe did not). The board also keeps per-server
//! counts of probes and failures, served as Prometheus metrics ([`HealthBoard::register_metrics`],
//! scraped at `GET /metrics`).

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use std::sync::atomic::AtomicU64;

use foldhash::HashMap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use stun::agent::TransactionId;
use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What the last probes of one server found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerHealth {
    /// Whether the last probe was answered.
    pub reachable: bool,
    /// Its round-trip time, when it was.
    pub rtt_micros: Option<u64>,
    /// Probes sent so far.
    pub n_probes: u64,
    /// Probes that failed so far.
    pub n_failures: u64,
}

/// The health of every probed server, shared by the checker (writes) and the credential service
/// (reads).
#[derive(Debug, Default)]
pub struct HealthBoard {
    servers: RwLock<HashMap<String, ServerHealth>>,
}

impl HealthBoard {
    /// Records a probe of `uri`.
    pub fn record(&self, uri: &str, outcome: Result<Duration, ProbeError>) {
        let mut servers = self.servers.write().unwrap_or_else(PoisonError::into_inner);
        let health = servers.entry(uri.to_owned()).or_default();
        health.n_probes += 1;
        match outcome {
            Ok(rtt) => {
                health.reachable = true;
                health.rtt_micros = Some(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
            }
            Err(_) => {
                health.reachable = false;
                health.rtt_micros = None;
                health.n_failures += 1;
            }
        }
    }

    /// What is known of `uri`.
    pub fn get(&self, uri: &str) -> Option<ServerHealth> {
        self.servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uri)
            .copied()
    }

    /// Registers the board's per-server metrics, as they are now, on `registry` (called at
    /// every scrape): `switchboard_turn_server_up` (1 if the last probe was answered),
    /// `switchboard_turn_server_rtt_seconds` (its round-trip time), and the counters
    /// `switchboard_turn_server_probes_total` and `switchboard_turn_server_probe_failures_total`,
    /// each labelled with the server's `uri`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        type Labels = Vec<(&'static str, String)>;
        let up = Family::<Labels, Gauge>::default();
        let rtt = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        let probes = Family::<Labels, Counter>::default();
        let failures = Family::<Labels, Counter>::default();
        for (uri, health) in self
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let labels = vec![("uri", uri.clone())];
            up.get_or_create(&labels).set(i64::from(health.reachable));
            if let Some(micros) = health.rtt_micros {
                #[allow(clippy::cast_precision_loss)] // Microseconds fit an f64 exactly.
                rtt.get_or_create(&labels).set(micros as f64 / 1e6);
            }
            probes.get_or_create(&labels).inc_by(health.n_probes);
            failures.get_or_create(&labels).inc_by(health.n_failures);
        }
        registry.register(
            "switchboard_turn_server_up",
            "Whether the last STUN probe of a TURN or STUN server was answered",
            up,
        );
        registry.register(
            "switchboard_turn_server_rtt_seconds",
            "The round-trip time of the last answered probe",
            rtt,
        );
        registry.register(
            "switchboard_turn_server_probes",
            "STUN probes sent to the server",
            probes,
        );
        registry.register(
            "switchboard_turn_server_probe_failures",
            "STUN probes the server did not answer in time",
            failures,
        );
    }

    /// `uris` ordered for clients: reachable first (fastest first), then not yet probed (in
    /// their configured order); unreachable ones are left out unless all of them are.
    pub fn order(&self, uris: &[String]) -> Vec<String> {
        let mut reachable: Vec<(u64, &String)> = Vec::new();
        let mut unknown: Vec<&String> = Vec::new();
        for uri in uris {
            match self.get(uri) {
                Some(health) if health.reachable => {
                    reachable.push((health.rtt_micros.unwrap_or(u64::MAX), uri));
                }
                Some(_) => {}
                None => unknown.push(uri),
            }
        }
        reachable.sort_by_key(|(rtt, _)| *rtt);
        let ordered: Vec<String> = reachable
            .into_iter()
            .map(|(_, uri)| uri.clone())
            .chain(unknown.into_iter().cloned())
            .collect();
        if ordered.is_empty() {
            uris.to_vec()
        } else {
            ordered
        }
    }
}

/// How a server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTransport {
    /// A STUN binding request in one datagram.
    Udp,
    /// A STUN binding request over a TCP connection (also how `turns:` servers are probed: the
    /// TLS handshake is not attempted, the TCP listener is).
    Tcp,
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URI is not `turn:`, `turns:`, `stun:` or `stuns:` with a host.
    #[error("not a TURN or STUN URI")]
    BadUri,
    /// Network error.
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("no answer in time")]
    Timeout,
    /// The answer was not a binding success for our transaction.
    #[error("unexpected answer")]
    BadAnswer,
}

/// The address and transport a URI names: `turn:host[:port][?transport=udp|tcp]`,
/// `stun:host[:port]`, `turns:`/`stuns:` (TCP, default port 5349; otherwise 3478).
pub fn probe_target(uri: &str) -> Option<(String, ProbeTransport)> {
    let (scheme, rest) = uri.split_once(':')?;
    let secure = match scheme {
        "turn" | "stun" => false,
        "turns" | "stuns" => true,
        _ => return None,
    };
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport = match query.strip_prefix("transport=") {
        Some("tcp") => ProbeTransport::Tcp,
        Some("udp") | None if !secure => ProbeTransport::Udp,
        _ if secure => ProbeTransport::Tcp,
        _ => return None,
    };
    if address.is_empty() {
        return None;
    }
    let has_port = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.ends_with(':') && port.parse::<u16>().is_ok())
        && !address.ends_with(']');
    let address = if has_port {
        address.to_owned()
    } else {
        format!("{address}:{}", if secure { 5349 } else { 3478 })
    };
    Some((address, transport))
}

fn binding_request() -> Result<Message, ProbeError> {
    let mut request = Message::new();
    request
        .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
        .map_err(|_| ProbeError::BadAnswer)?;
    Ok(request)
}

fn check_answer(request: &Message, answer: &[u8]) -> Result<(), ProbeError> {
    let mut response = Message::new();
    response.raw = answer.to_vec();
    response.decode().map_err(|_| ProbeError::BadAnswer)?;
    if response.typ == BINDING_SUCCESS && response.transaction_id == request.transaction_id {
        Ok(())
    } else {
        Err(ProbeError::BadAnswer)
    }
}

/// Sends one STUN binding request to the server `uri` names and waits at most `timeout` for
/// the success answer; returns the round-trip time.
///
/// # Errors
/// [`ProbeError`].
pub async fn probe(uri: &str, timeout: Duration) -> Result<Duration, ProbeError> {
    let (address, transport) = probe_target(uri).ok_or(ProbeError::BadUri)?;
    let request = binding_request()?;
    let started = tokio::time::Instant::now();
    let exchange = async {
        let mut answer = vec![0u8; 1500];
        let n_bytes = match transport {
            ProbeTransport::Udp => {
                let target: SocketAddr = tokio::net::lookup_host(&address)
                    .await?
                    .next()
                    .ok_or(ProbeError::BadUri)?;
                let local = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(target).await?;
                socket.send(&request.raw).await?;
                socket.recv(&mut answer).await?
            }
            ProbeTransport::Tcp => {
                let mut stream = TcpStream::connect(&address).await?;
                stream.write_all(&request.raw).await?;
                stream.read(&mut answer).await?
            }
        };
        check_answer(&request, &answer[..n_bytes])
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(ProbeError::Timeout),
    }
}

/// What the health checker starts with.
pub struct HealthCheckerArgs {
    /// Where results go.
    pub board: Arc<HealthBoard>,
    /// Every server URI to probe.
    pub uris: Vec<String>,
    /// How often.
    pub interval: Duration,
    /// How long one probe may wait.
    pub timeout: Duration,
}

/// The health checker's messages.
pub enum HealthCheckerMsg {
    /// Probe every server now.
    ProbeAll,
}

/// Probes every configured TURN and STUN server every interval.
pub struct HealthCheckerActor;

/// A running health checker.
pub struct HealthChecker {
    actor: ActorRef<HealthCheckerMsg>,
}

impl HealthChecker {
    /// Starts probing.
    ///
    /// # Errors
    /// If the actor cannot be spawned.
    pub async fn start(args: HealthCheckerArgs) -> Result<Self, ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, HealthCheckerActor, args).await?;
        Ok(HealthChecker { actor })
    }

    /// Stops probing.
    pub fn stop(&self) {
        self.actor.stop(None);
    }
}

/// The health checker's state: what it was started with.
pub struct HealthCheckerState {
    args: HealthCheckerArgs,
}

impl Actor for HealthCheckerActor {
    type Msg = HealthCheckerMsg;
    type State = HealthCheckerState;
    type Arguments = HealthCheckerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<HealthCheckerMsg>,
        args: HealthCheckerArgs,
    ) -> Result<HealthCheckerState, ActorProcessingErr> {
        myself.cast(HealthCheckerMsg::ProbeAll)?;
        // Probes run one after another; the interval never undercuts a full round, so rounds
        // cannot queue up in the mailbox.
        let n_uris = u32::try_from(args.uris.len()).unwrap_or(u32::MAX);
        let interval = args.interval.max(args.timeout.saturating_mul(n_uris));
        myself.send_interval(interval, || HealthCheckerMsg::ProbeAll);
        Ok(HealthCheckerState { args })
    }

    async fn handle(
        &self,
        _myself: ActorRef<HealthCheckerMsg>,
        message: HealthCheckerMsg,
        state: &mut HealthCheckerState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HealthCheckerMsg::ProbeAll => {
                for uri in &state.args.uris {
                    let outcome = probe(uri, state.args.timeout).await;
                    if let Err(error) = &outcome {
                        tracing::debug!(%uri, %error, "TURN/STUN server probe failed");
                    }
                    state.args.board.record(uri, outcome);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
