//! One WebSocket connection, from upgrade to close.
//!
//! The upgrade is done by hand (on hyper's upgrade mechanism) so that tokio-tungstenite's
//! buffers can be sized for chat frames: a 1 KiB read buffer instead of the 128 KiB default (an
//! idle connection cost about 140 KB before; docs/PERFORMANCE.md has today's figure and where
//! each part of it goes).
//!
//! After the upgrade, one task runs the connection: the token is verified (failures get an
//! `error` frame with the `token_*` code and close 4001), a session actor is started, and then a
//! reader and a writer run side by side:
//! - the reader parses frames into requests for the session, answers malformed frames with
//!   `error` frames itself, closes abusive connections (1008), closes idle ones (4010), and
//!   stops reading while the outbound queue is over half full, which pushes back on a client
//!   that sends faster than it reads;
//! - the writer drains the outbound queue, writing up to a batch of frames per flush, pings on
//!   the heartbeat, and closes with the queue's close reason (4008 slow consumer, 1001 going
//!   away). A write blocked on a client that stopped reading is abandoned the moment the queue
//!   overflows.
//!
//! Every close the server initiates ends the same way ([`close_gracefully`]): what the reader
//! queued before deciding to close (the `error` frames of a burst of invalid frames) is written
//! first, in order, then the close frame, flushed; then the connection keeps reading, and
//! discarding, until the client's own close frame or end of stream, for at most
//! [`CLOSE_LINGER`]. Only then is the socket dropped. Dropping a TCP socket with unread bytes in
//! its receive buffer makes the kernel answer with a reset instead of a FIN, and a reset can
//! destroy the frames the client has not read yet; reading to the end is what keeps them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use switchboard_actors::outbound::{CloseReason, OutboundEvent, OutboundReceiver, outbound};
use switchboard_actors::security::{SecurityEvent, SecurityReason};
use switchboard_actors::session::{Identity, SessionHandle};
use switchboard_engine::Error;
use switchboard_engine::event::EncodedFrame;
use switchboard_engine::rate_limit::{RateLimit, TokenBucket};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tracing::Instrument as _;

use crate::codec::{
    FrameError, ProtocolError, encode_frame_error, encode_wire_error, parse_client_frame,
};
use crate::http::bearer_token;
use crate::server::App;
use crate::wire_error::{WireError, close_code, close_for};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How long a close frame (and the frames queued before it) may take to write before the socket
/// is simply dropped.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long, after its close frame, the server keeps reading a connection while it waits for the
/// client's close frame or the end of the stream (see the module documentation).
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// The most a lingering connection reads before it is dropped anyway, so a client that keeps
/// streaming cannot hold it open with data.
const CLOSE_LINGER_MAX_BYTES: usize = 1 << 20;

/// Query parameters of the upgrade request.
#[derive(Deserialize)]
pub struct UpgradeQuery {
    token: Option<String>,
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

fn bad_upgrade(message: &str) -> Response {
    let wire = WireError::from(Error::invalid("upgrade", message.to_owned()));
    let mut response = wire.into_response();
    *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response
}

/// `GET /v1/ws`: validates the upgrade request and hands the connection to its own task.
/// Authentication happens after the upgrade, so that browsers (which cannot read the body of a
/// failed upgrade) see the `error` frame that explains a refused token.
#[utoipa::path(get, path = "/v1/ws", tag = "websocket",
    summary = "Upgrade to the WebSocket protocol v1 (docs/PROTOCOL.md).",
    description = "The token travels in `?token=` or an `Authorization: Bearer` header and is verified after the upgrade: a refused token gets an `error` frame and close code 4001.",
    params(("token" = Option<String>, Query, description = "The JWT (for browsers, which cannot set headers on a WebSocket).")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 426, description = "Not a WebSocket upgrade request (`invalid`).", body = crate::wire_error::ErrorBody),
    ))]
pub async fn upgrade(
    State(app): State<Arc<App>>,
    query: Result<Query<UpgradeQuery>, axum::extract::rejection::QueryRejection>,
    mut request: axum::extract::Request,
) -> Response {
    let headers = request.headers();
    if !header_has_token(headers, header::CONNECTION, "upgrade")
        || !header_has_token(headers, header::UPGRADE, "websocket")
    {
        return bad_upgrade("this endpoint speaks WebSocket only");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version.as_bytes() != b"13")
    {
        return bad_upgrade("Sec-WebSocket-Version must be 13");
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad_upgrade("Sec-WebSocket-Key is required");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let remote = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|axum::extract::ConnectInfo(remote)| *remote);
    let token = query
        .ok()
        .and_then(|Query(query)| query.token)
        .or_else(|| bearer_token(headers).map(str::to_owned))
        .unwrap_or_default();
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return bad_upgrade("the connection cannot be upgraded");
    };
    let connection_app = Arc::clone(&app);
    app.connections.spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => run_connection(connection_app, upgraded, token, remote).await,
            Err(error) => tracing::debug!(%error, "upgrade failed"),
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// A frame as a WebSocket text message. An [`EncodedFrame`] is made only from a `String`, so
/// its bytes are UTF-8 by construction; `Message::Text` would check that again for every
/// recipient of every frame (1.3 % of the server's CPU at saturation in rooms of 100), and the
/// raw text frame written here is the same on the wire without the check.
fn text_message(frame: &EncodedFrame) -> Message {
    Message::Frame(Frame::message(
        frame.bytes().clone(),
        OpCode::Data(OpData::Text),
        true,
    ))
}

fn close_message(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason.to_owned()),
    }))
}

/// Sends a last error frame and a close frame, then closes gracefully.
async fn refuse(mut socket: Socket, wire: &WireError, code: u16) {
    let frame = encode_wire_error(wire);
    let sent = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        socket.send(text_message(&frame)).await?;
        socket.send(close_message(code, wire.code)).await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger_until_closed(&mut socket).await;
    }
}

/// After the server's close frame: reads and discards until the client's close frame or the end
/// of the stream, for at most [`CLOSE_LINGER`] and [`CLOSE_LINGER_MAX_BYTES`], so that the
/// socket is dropped with nothing unread (see the module documentation).
async fn linger_until_closed<S>(stream: &mut S)
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        let mut n_bytes_read = 0usize;
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
            n_bytes_read = n_bytes_read.saturating_add(message.len());
            if n_bytes_read > CLOSE_LINGER_MAX_BYTES {
                break;
            }
        }
    })
    .await;
}

async fn run_connection(
    app: Arc<App>,
    upgraded: hyper::upgrade::Upgraded,
    token: String,
    remote: Option<SocketAddr>,
) {
    // Opening is boxed and its future freed before serving starts, so that the task, which is
    // allocated for as long as the connection lives, holds only what serving needs.
    // What it returns is boxed too: an async function's arguments stay in its future for as
    // long as it runs, so serving takes a pointer and unpacks it.
    let opened = Box::pin(open_connection(&app, upgraded, token, remote)).await;
    if let Some(opened) = opened {
        serve_connection(&app, opened).await;
    }
}

/// An authenticated connection with its session started.
struct OpenedConnection {
    socket: Socket,
    identity: Identity,
    remote: Option<SocketAddr>,
    session: SessionHandle,
    outbound: switchboard_actors::outbound::Outbound,
    receiver: OutboundReceiver,
}

/// Completes the WebSocket setup, verifies the token and starts the session; a refused
/// connection is closed here (with its `error` frame and close code) and `None` returned.
async fn open_connection(
    app: &App,
    upgraded: hyper::upgrade::Upgraded,
    token: String,
    remote: Option<SocketAddr>,
) -> Option<Box<OpenedConnection>> {
    let settings = &app.websocket;
    let config = WebSocketConfig::default()
        .read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(settings.write_buffer_bytes)
        .max_write_buffer_size(settings.hard_max_frame_bytes.saturating_mul(4))
        .max_message_size(Some(settings.hard_max_frame_bytes))
        .max_frame_size(Some(settings.hard_max_frame_bytes));
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let identity = match app.authenticator.verify(&token, app.clock.now()) {
        Ok(identity) => identity,
        Err(error) => {
            let wire = WireError::from(&error);
            // A refused token's claims are never trusted, not even to name its tenant.
            app.system.security().record(SecurityEvent {
                reason: SecurityReason::TokenRefused,
                code: wire.code,
                tenant_id: None,
                user_id: None,
                remote,
            });
            refuse(socket, &wire, close_code::UNAUTHORIZED).await;
            return None;
        }
    };
    let (outbound, receiver) = outbound(settings.outbound_queue_bytes);
    match app
        .system
        .open_session_from(identity.clone(), outbound.clone(), remote)
        .await
    {
        Ok(session) => Some(Box::new(OpenedConnection {
            socket,
            identity,
            remote,
            session,
            outbound,
            receiver,
        })),
        Err(error) => {
            let code = match error {
                Error::TooManyConnections { .. } => close_code::TOO_MANY_CONNECTIONS,
                _ => close_code::INTERNAL_ERROR,
            };
            refuse(socket, &WireError::from(&error), code).await;
            None
        }
    }
}

/// Runs an open connection's reader and writer until it closes, then ends its session and
/// closes the socket gracefully (see the module documentation).
async fn serve_connection(app: &App, opened: Box<OpenedConnection>) {
    let OpenedConnection {
        socket,
        identity,
        remote,
        session,
        outbound,
        receiver,
    } = *opened;
    let span = tracing::info_span!("session", session_id = %session.session_id());
    let (mut sink, mut stream) = socket.split();
    let (close_sender, close_receiver) = oneshot::channel();
    async {
        let ending = {
            let caller = Caller {
                identity: &identity,
                remote,
            };
            let reader = read_loop(&mut stream, &session, &outbound, app, caller, close_sender);
            let writer = write_loop(&mut sink, receiver, close_receiver, &app.websocket);
            tokio::pin!(reader, writer);
            tokio::select! {
                ending = &mut writer => ending,
                () = &mut reader => {
                    // The reader has said how to close; the writer writes what was queued before,
                    // then the close frame.
                    Box::pin(tokio::time::timeout(CLOSE_WRITE_TIMEOUT * 2, &mut writer))
                        .await
                        .unwrap_or(WriterEnding::Abandoned)
                }
            }
        };
        session.stop();
        match ending {
            WriterEnding::SentClose => Box::pin(linger_until_closed(&mut stream)).await,
            WriterEnding::PeerClosed => {
                // Flushes tungstenite's reply to the client's close frame, if one is pending.
                let _ = Box::pin(tokio::time::timeout(CLOSE_WRITE_TIMEOUT, sink.flush())).await;
            }
            WriterEnding::Abandoned => {}
        }
    }
    .instrument(span)
    .await;
}

/// How the writer stopped, which says what the connection does before it is dropped.
enum WriterEnding {
    /// The server's close frame was written and flushed: linger for the client's.
    SentClose,
    /// The client closed the connection, or it broke.
    PeerClosed,
    /// A write could not complete in time (a client that does not read): drop the socket.
    Abandoned,
}

/// How the reader wants the connection closed: `None` when the client closed it.
type CloseIntent = Option<(u16, &'static str)>;

/// Who is on the other end of a connection, for its security events.
#[derive(Clone, Copy)]
struct Caller<'a> {
    identity: &'a Identity,
    remote: Option<SocketAddr>,
}

async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<Socket>,
    session: &SessionHandle,
    outbound: &switchboard_actors::outbound::Outbound,
    app: &App,
    caller: Caller<'_>,
    close: oneshot::Sender<CloseIntent>,
) {
    let settings = &app.websocket;
    let error_limit = RateLimit {
        per_minute: settings.max_protocol_errors_per_minute,
        burst: settings.max_protocol_errors_per_minute,
    };
    let mut error_budget = TokenBucket::full(&error_limit, app.clock.now());
    let intent: CloseIntent = loop {
        // Pause reading while the client is behind on reading our replies.
        outbound.wait_for_room().await;
        if outbound.is_closed() {
            break None;
        }
        let next = match tokio::time::timeout(settings.idle_timeout, stream.next()).await {
            Err(_) => break Some((close_code::IDLE_TIMEOUT, "idle timeout")),
            Ok(None) => break None,
            Ok(Some(next)) => next,
        };
        let frame_error = match next {
            Ok(Message::Text(text)) => match parse_client_frame(&text, settings.max_frame_bytes) {
                Ok(request) => {
                    if session.request(request).is_err() {
                        break Some((close_code::INTERNAL_ERROR, "session ended"));
                    }
                    continue;
                }
                Err(frame_error) => frame_error,
            },
            Ok(Message::Binary(_)) => FrameError {
                request_id: None,
                error: ProtocolError::BinaryFrame,
            },
            Ok(Message::Close(_)) => break None,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Err(tungstenite::Error::Capacity(_)) => {
                break Some((close_code::MESSAGE_TOO_BIG, "frame too large"));
            }
            Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_)) => {
                break Some((close_code::POLICY_VIOLATION, "protocol error"));
            }
            Err(_) => break None,
        };
        let _ = outbound.push(encode_frame_error(&frame_error));
        if error_budget
            .try_take(&error_limit, app.clock.now())
            .is_err()
        {
            break Some((close_code::POLICY_VIOLATION, "too many invalid frames"));
        }
    };
    if let Some((close_code::POLICY_VIOLATION | close_code::MESSAGE_TOO_BIG, reason)) = intent {
        app.system.security().record(SecurityEvent {
            reason: SecurityReason::ProtocolViolation,
            code: reason,
            tenant_id: Some(&caller.identity.tenant_id),
            user_id: Some(&caller.identity.user_id),
            remote: caller.remote,
        });
    }
    let _ = close.send(intent);
}

/// Writes what is still queued (nothing, after an overflow: see [`OutboundReceiver::try_recv`]),
/// then the close frame, flushed, all within [`CLOSE_WRITE_TIMEOUT`].
async fn finish_with_close(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    receiver: &mut OutboundReceiver,
    code: u16,
    reason: &str,
) -> WriterEnding {
    let written = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        while let Some(frame) = receiver.try_recv() {
            sink.feed(text_message(&frame)).await?;
        }
        sink.send(close_message(code, reason)).await
    })
    .await;
    match written {
        Ok(Ok(())) => WriterEnding::SentClose,
        Ok(Err(_)) => WriterEnding::PeerClosed,
        Err(_) => WriterEnding::Abandoned,
    }
}

/// How one batched write ended.
enum BatchOutcome {
    /// Written and flushed.
    Written,
    /// The socket failed.
    Failed,
    /// The queue closed while the write was under way (and, unless it overflowed, the write
    /// then finished in time).
    Closed(CloseReason),
    /// The write did not finish in time after the queue closed.
    TimedOut,
}

async fn write_loop(
    sink: &mut futures_util::stream::SplitSink<Socket, Message>,
    mut receiver: OutboundReceiver,
    mut close: oneshot::Receiver<CloseIntent>,
    settings: &crate::settings::WebSocketSettings,
) -> WriterEnding {
    let close_watcher = receiver.close_watcher();
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    heartbeat.tick().await;
    let max_frames_per_flush = settings.max_frames_per_flush.max(1);
    loop {
        tokio::select! {
            biased;
            intent = &mut close => {
                return match intent {
                    // The reader queued its last frames (the error frames of a burst) before it
                    // decided to close: they go out first, in order.
                    Ok(Some((code, reason))) => Box::pin(finish_with_close(sink, &mut receiver, code, reason)).await,
                    _ => WriterEnding::PeerClosed,
                };
            }
            event = receiver.recv() => {
                let frame = match event {
                    None => return WriterEnding::PeerClosed,
                    Some(OutboundEvent::Close(reason)) => {
                        let (code, text) = close_for(reason);
                        return Box::pin(finish_with_close(sink, &mut receiver, code, text)).await;
                    }
                    Some(OutboundEvent::Frame(frame)) => frame,
                };
                let outcome = {
                    let write = async {
                        sink.feed(text_message(&frame)).await?;
                        for _ in 1..max_frames_per_flush {
                            let Some(frame) = receiver.try_recv() else { break };
                            sink.feed(text_message(&frame)).await?;
                        }
                        sink.flush().await
                    };
                    tokio::pin!(write);
                    tokio::select! {
                        result = &mut write => match result {
                            Ok(()) => BatchOutcome::Written,
                            Err(_) => BatchOutcome::Failed,
                        },
                        reason = close_watcher.closed() => {
                            if reason == CloseReason::SlowConsumer {
                                // The write is blocked on a client that stopped reading and its
                                // queue overflowed meanwhile: only a close frame is still tried.
                                BatchOutcome::Closed(reason)
                            } else {
                                match tokio::time::timeout(CLOSE_WRITE_TIMEOUT, &mut write).await {
                                    Ok(Ok(())) => BatchOutcome::Closed(reason),
                                    Ok(Err(_)) => BatchOutcome::Failed,
                                    Err(_) => BatchOutcome::TimedOut,
                                }
                            }
                        }
                    }
                };
                match outcome {
                    BatchOutcome::Written => {}
                    BatchOutcome::Failed => return WriterEnding::PeerClosed,
                    BatchOutcome::TimedOut => return WriterEnding::Abandoned,
                    BatchOutcome::Closed(reason) => {
                        let (code, text) = close_for(reason);
                        return Box::pin(finish_with_close(sink, &mut receiver, code, text)).await;
                    }
                }
            }
            _ = heartbeat.tick() => {
                // Boxed, like every step that is not the steady state, so that the writer's
                // future (allocated for as long as the connection lives) stays small.
                let ping = Box::pin(tokio::time::timeout(settings.heartbeat, sink.send(Message::Ping(Default::default()))));
                if !matches!(ping.await, Ok(Ok(()))) {
                    return WriterEnding::Abandoned;
                }
            }
        }
    }
}
