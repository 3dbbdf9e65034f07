//! One WebSocket connection, run by one task from handshake to close.
//!
//! After the handshake a single loop waits on three things at once: a client frame to handle,
//! queued server frames to write, and a request to close (its outbound queue overflowed, or the
//! server is shutting down).
//! Handling a frame never writes to the socket; replies go through the same queue as room
//! broadcasts, so an `ack` always follows the `message` frames its `send` produced.
//! Writes are batched: up to [`MAX_FRAMES_PER_FLUSH`] queued frames are fed to tungstenite's
//! write buffer and flushed together, which turns a burst of broadcasts into a few syscalls.
//! While a write waits on a client that stopped reading, the task reads nothing from it (which
//! pushes back on that client), and a close request still ends the connection.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};

use crate::protocol::{self, ClientRequest};
use crate::rooms::{CloseReason, ConnectionId, Outbound, Rooms};

/// Bytes tungstenite reads from the socket at a time. Chat frames are small, and the 128 KiB
/// default would cost about 140 KB per idle connection instead of about 10 KB.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Bytes tungstenite collects before it writes to the socket on its own; a flush always writes
/// whatever is collected. With 0, tungstenite would issue one `write` syscall per frame and a
/// batch of frames would gain nothing. The buffer grows only while a batch is being written, so
/// an idle connection pays nothing for it.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The largest client message (and frame) accepted; larger ones close the connection with 1009.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Frames each connection may have queued but not yet written, about 1 MiB of chat frames.
/// The queue's memory is allocated as it fills, not up front.
pub(crate) const OUTBOUND_QUEUE_FRAMES: usize = 8192;

/// Most frames written per flush.
const MAX_FRAMES_PER_FLUSH: usize = 64;

/// How long a client has to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a close frame may take to write before the socket is simply dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Close code for a client whose outbound queue overflowed (the same code Switchboard uses).
const SLOW_CONSUMER_CLOSE_CODE: u16 = 4008;

type Socket = WebSocketStream<TcpStream>;

/// How the connection ends.
enum Ending {
    /// The client sent a close frame; answer it.
    ClosedByClient,
    /// The server closes with this code and reason.
    Close(CloseCode, &'static str),
    /// The socket failed or the peer vanished; there is nobody to say goodbye to.
    Lost,
}

/// Serves one accepted TCP connection until it closes. `outbound` is the connection's queue
/// (see [`OUTBOUND_QUEUE_FRAMES`]); the caller keeps a clone to ask for a close at shutdown.
pub(crate) async fn run(
    stream: TcpStream,
    connection_id: ConnectionId,
    outbound: Arc<Outbound>,
    mut outbound_receiver: mpsc::Receiver<Utf8Bytes>,
    rooms: Arc<Rooms>,
) {
    // Chat frames are small and latency-bound: never let Nagle's algorithm hold one back.
    if let Err(error) = stream.set_nodelay(true) {
        eprintln!("peer-tungstenite: could not set TCP_NODELAY: {error}");
    }
    let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(websocket_config()));
    let mut socket = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(_)) | Err(_) => return,
    };
    let mut connection = ConnectionState {
        connection_id,
        rooms: &rooms,
        outbound: &outbound,
        joined_rooms: HashSet::new(),
    };

    // One waiter for the whole connection instead of one per loop turn: a close is requested at
    // most once, and re-registering with the `Notify` on every frame would be wasted work.
    let close_requested = outbound.close_requested();
    tokio::pin!(close_requested);

    let ending = loop {
        tokio::select! {
            reason = &mut close_requested => break server_close(reason),
            Some(first_frame) = outbound_receiver.recv() => {
                tokio::select! {
                    result = write_batch(&mut socket, first_frame, &mut outbound_receiver) => {
                        if result.is_err() {
                            break Ending::Lost;
                        }
                    }
                    // For example, the write is stuck on a client that stopped reading, and its
                    // queue overflowed meanwhile.
                    reason = &mut close_requested => break server_close(reason),
                }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => connection.handle_text(&text),
                Some(Ok(Message::Binary(_))) => connection.reply_invalid(),
                Some(Ok(Message::Close(_))) => break Ending::ClosedByClient,
                // tungstenite answers pings by itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(tungstenite::Error::Capacity(_))) => {
                    break Ending::Close(CloseCode::Size, "message too big");
                }
                Some(Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_))) => {
                    break Ending::Close(CloseCode::Protocol, "protocol error");
                }
                Some(Err(_)) | None => break Ending::Lost,
            },
        }
    };

    rooms.leave_all(connection_id, &connection.joined_rooms);
    let close = match ending {
        Ending::Lost => return,
        // Completes the close handshake the client started.
        Ending::ClosedByClient => socket.close(None),
        Ending::Close(code, reason) => socket.close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })),
    };
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, close).await;
}

fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

fn server_close(reason: CloseReason) -> Ending {
    match reason {
        CloseReason::SlowConsumer => {
            Ending::Close(CloseCode::from(SLOW_CONSUMER_CLOSE_CODE), "slow consumer")
        }
        CloseReason::GoingAway => Ending::Close(CloseCode::Away, "going away"),
    }
}

/// Writes `first_frame` and whatever else is queued, up to a batch, with one flush.
async fn write_batch(
    socket: &mut Socket,
    first_frame: Utf8Bytes,
    outbound_receiver: &mut mpsc::Receiver<Utf8Bytes>,
) -> Result<(), tungstenite::Error> {
    socket.feed(Message::Text(first_frame)).await?;
    for _ in 1..MAX_FRAMES_PER_FLUSH {
        let Ok(frame) = outbound_receiver.try_recv() else {
            break;
        };
        socket.feed(Message::Text(frame)).await?;
    }
    socket.flush().await
}

/// What one connection knows about itself while it runs.
struct ConnectionState<'a> {
    connection_id: ConnectionId,
    rooms: &'a Rooms,
    outbound: &'a Arc<Outbound>,
    /// The rooms this connection is in, so a repeated join is a no-op and close can leave them.
    joined_rooms: HashSet<String>,
}

impl ConnectionState<'_> {
    /// Handles one client text frame. Everything it produces is queued, never written here; a
    /// full queue is noticed by the connection loop as a close request.
    fn handle_text(&mut self, text: &str) {
        let reply = match protocol::parse_client_frame(text) {
            Ok(ClientRequest::Join {
                request_id,
                conversation_id,
            }) => {
                if !self.joined_rooms.contains(&*conversation_id) {
                    self.rooms
                        .join(&conversation_id, self.connection_id, self.outbound);
                    self.joined_rooms.insert(conversation_id.to_string());
                }
                protocol::encode_joined(request_id, &conversation_id)
            }
            Ok(ClientRequest::Send {
                request_id,
                conversation_id,
                client_id,
                text,
            }) => {
                let message = protocol::encode_message(&conversation_id, &client_id, &text);
                self.rooms.broadcast(&conversation_id, &message);
                protocol::encode_ack(request_id, &client_id)
            }
            Ok(ClientRequest::Ping { request_id }) => protocol::encode_pong(request_id),
            Err(protocol::InvalidFrame) => Utf8Bytes::from_static(protocol::INVALID_FRAME),
        };
        self.outbound.push(reply);
    }

    fn reply_invalid(&self) {
        self.outbound
            .push(Utf8Bytes::from_static(protocol::INVALID_FRAME));
    }
}
