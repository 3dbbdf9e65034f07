//! `peer-tungstenite`: a bare tokio + tokio-tungstenite chat broadcast server, the ceiling of
//! Switchboard's own stack in side-by-side load tests.
//!
//! It speaks the peers' common JSON protocol (see `benches/peers/README.md`): `join` a room,
//! `send` to a room (one encoded `message` frame to every member, then an `ack` to the sender),
//! and `ping`, with no auth, no persistence and no actors.
//! The port comes from the first argument or `PORT` (default 9002); the server binds 127.0.0.1
//! only, prints `listening on 127.0.0.1:<port>` once it accepts connections, and on SIGINT or
//! SIGTERM stops accepting, closes every connection with 1001 (going away) and exits with 0.
//!
//! Layout: `protocol` parses and encodes frames and does no I/O, `rooms` holds the room registry
//! and the bounded per-connection queues, and `connection` runs one WebSocket in one task.

mod connection;
mod protocol;
mod rooms;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::rooms::{CloseReason, ConnectionId, Outbound, Rooms};

/// The port used when neither the first argument nor `PORT` names one.
const DEFAULT_PORT: u16 = 9002;

/// Pause after a failed `accept` (for example when out of file descriptors), so the loop does
/// not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// How long connections get to close after SIGINT/SIGTERM before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let port = match listen_port() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("peer-tungstenite: {message}");
            return ExitCode::from(2);
        }
    };
    match serve(port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peer-tungstenite: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The port from the first argument, else from `PORT`, else [`DEFAULT_PORT`]; an empty value
/// counts as absent.
fn listen_port() -> Result<u16, String> {
    let (source, value) = match std::env::args().nth(1).filter(|value| !value.is_empty()) {
        Some(argument) => ("the first argument", argument),
        None => match std::env::var("PORT") {
            Ok(value) if !value.is_empty() => ("PORT", value),
            Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(DEFAULT_PORT),
            Err(std::env::VarError::NotUnicode(_)) => return Err("PORT is not unicode".into()),
        },
    };
    value
        .trim()
        .parse()
        .map_err(|_| format!("{source} {value:?} is not a port number"))
}

/// Accepts connections on 127.0.0.1 until SIGINT or SIGTERM, then closes them with 1001.
async fn serve(port: u16) -> std::io::Result<()> {
    // The handlers are installed before the ready line is printed, so a signal sent right after
    // it ends the process cleanly instead of killing it.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    announce(listener.local_addr()?);

    let rooms = Arc::new(Rooms::default());
    // Every connection task, and its queue by task id so shutdown can ask each to close. Only
    // this loop touches them, so they need no lock; finished tasks are reaped as they end.
    let mut connections = JoinSet::new();
    let mut open_connections: HashMap<tokio::task::Id, Arc<Outbound>> = HashMap::new();
    let mut n_accepted: u64 = 0;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            Some(finished) = connections.join_next_with_id() => {
                let task_id = match finished {
                    Ok((task_id, ())) => task_id,
                    Err(error) => error.id(),
                };
                open_connections.remove(&task_id);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer_address)) => {
                    n_accepted += 1;
                    let (outbound, outbound_receiver) =
                        Outbound::new(connection::OUTBOUND_QUEUE_FRAMES);
                    let task = connection::run(
                        stream,
                        ConnectionId(n_accepted),
                        Arc::clone(&outbound),
                        outbound_receiver,
                        Arc::clone(&rooms),
                    );
                    let task_id = connections.spawn(task).id();
                    open_connections.insert(task_id, outbound);
                }
                Err(error) => {
                    eprintln!("peer-tungstenite: accept failed: {error}");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }

    // Stop accepting, ask every connection to close, and give them a moment to say goodbye;
    // dropping the `JoinSet` aborts whatever is left.
    drop(listener);
    for outbound in open_connections.values() {
        outbound.request_close(CloseReason::GoingAway);
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

#[allow(clippy::print_stdout)] // The bench matrix script waits for this line on stdout.
fn announce(local_address: SocketAddr) {
    println!("listening on {local_address}");
}
