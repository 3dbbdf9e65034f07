//! The wire dialects the harness speaks, behind one small interface.
//!
//! Switchboard speaks protocol v1 (docs/PROTOCOL.md); the Bun and tungstenite peers speak the same
//! frames without authentication (benches/peers/README.md); Socket.IO speaks engine.io v4 over a
//! raw WebSocket. Every dialect is reduced to the same few events ([`Incoming`]) so that the
//! measuring code is identical for all targets.
//!
//! Message bodies carry a header, `sb|<sender>|<n>|<sent_ns>|`, followed by padding. Receivers
//! find it with a substring search instead of parsing the whole frame, so the harness spends its
//! core on sockets, not on JSON.

use std::fmt;

use serde::Deserialize;

/// Which server is under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// Switchboard itself (JWT, conversations created over HTTP).
    Switchboard,
    /// The bare tokio-tungstenite broadcast peer.
    Tungstenite,
    /// Bun's built-in WebSocket pub/sub peer.
    Bun,
    /// The Socket.IO (Node) peer.
    Socketio,
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Target::Switchboard => "switchboard",
            Target::Tungstenite => "tungstenite",
            Target::Bun => "bun",
            Target::Socketio => "socketio",
        };
        formatter.write_str(name)
    }
}

/// What a received frame means to the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Switchboard's `welcome`.
    Welcome,
    /// Socket.IO's engine.io open packet.
    Open,
    /// Socket.IO's namespace connect confirmation.
    Connected,
    /// Engine.io ping: must be answered with `3`.
    Ping,
    /// A join was confirmed.
    Joined,
    /// A send was accepted (Switchboard's `pending`).
    AckPending {
        /// The request id of the send.
        request: u64,
    },
    /// A send is durable / was broadcast.
    AckDelivered {
        /// The request id of the send.
        request: u64,
    },
    /// A send was refused.
    AckRejected {
        /// The request id of the send.
        request: u64,
    },
    /// A message, with its harness header.
    Message(Header),
    /// An error frame.
    Error,
    /// Anything else (ignored).
    Other,
}

/// The harness header inside a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sending connection's index.
    pub sender: u32,
    /// The sender's message number (1, 2, 3, ...).
    pub number: u64,
    /// When it was sent, in nanoseconds since the harness started.
    pub sent_ns: u64,
}

/// Builds a message body of exactly `n_bytes` (at least the header).
#[cfg(test)]
pub(crate) fn message_text(header: Header, n_bytes: usize) -> String {
    let mut text = String::with_capacity(n_bytes.max(48));
    write_message_text(&mut text, header, n_bytes);
    text
}

/// Appends a message body of exactly `n_bytes` (at least the header) to `text`.
pub(crate) fn write_message_text(text: &mut String, header: Header, n_bytes: usize) {
    use std::fmt::Write as _;
    let start = text.len();
    let _ = write!(
        text,
        "sb|{}|{}|{}|",
        header.sender, header.number, header.sent_ns
    );
    let written = text.len() - start;
    text.extend(std::iter::repeat_n('x', n_bytes.saturating_sub(written)));
}

/// The searcher for the header's start, built once (building one per frame was 4 % of the
/// harness's time).
static HEADER_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"sb|"));

fn parse_header(frame: &[u8]) -> Option<Header> {
    let mut at = HEADER_FINDER.find(frame)? + 3;
    let mut field = || -> Option<u64> {
        let digits = frame.get(at..)?;
        let length = digits.iter().position(|byte| *byte == b'|')?;
        at += length + 1;
        parse_digits(&digits[..length])
    };
    Some(Header {
        sender: u32::try_from(field()?).ok()?,
        number: field()?,
        sent_ns: field()?,
    })
}

/// A decimal number of 1 to 19 digits.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |value, byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u64::from(byte - b'0'))
    })
}

#[derive(Deserialize)]
struct AckFrame<'a> {
    id: Option<u64>,
    status: &'a str,
}

impl Target {
    /// The WebSocket URL to connect to.
    pub(crate) fn url(self, addr: &str, token: Option<&str>) -> String {
        match self {
            Target::Switchboard => format!("ws://{addr}/v1/ws?token={}", token.unwrap_or_default()),
            Target::Tungstenite | Target::Bun => format!("ws://{addr}/ws"),
            Target::Socketio => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        }
    }

    /// The frame that joins `room`.
    pub(crate) fn join_frame(self, room: &str) -> String {
        match self {
            Target::Socketio => format!(r#"420["join","{room}"]"#),
            _ => format!(r#"{{"type":"join","id":0,"conversation_id":"{room}"}}"#),
        }
    }

    /// Appends the frame that sends `text` to `room` as request `request` (at least 1) to
    /// `frame`.
    pub(crate) fn write_send_frame(
        self,
        frame: &mut String,
        room: &str,
        request: u64,
        client_id: &str,
        text: &str,
    ) {
        use std::fmt::Write as _;
        let _ = match self {
            Target::Socketio => write!(
                frame,
                r#"42{request}["send",{{"conversation_id":"{room}","client_id":"{client_id}","text":"{text}"}}]"#
            ),
            _ => write!(
                frame,
                r#"{{"type":"send","id":{request},"conversation_id":"{room}","client_id":"{client_id}","text":"{text}"}}"#
            ),
        };
    }

    /// Whether the server greets before anything else (and with what).
    pub(crate) fn greeting(self) -> Option<Incoming> {
        match self {
            Target::Switchboard => Some(Incoming::Welcome),
            Target::Socketio => Some(Incoming::Open),
            Target::Tungstenite | Target::Bun => None,
        }
    }

    /// Classifies one received text frame.
    pub(crate) fn classify(self, frame: &[u8]) -> Incoming {
        match self {
            Target::Socketio => classify_socketio(frame),
            _ => classify_json(frame),
        }
    }
}

fn classify_json(frame: &[u8]) -> Incoming {
    const PREFIX: &[u8] = br#"{"type":""#;
    let Some(rest) = frame.strip_prefix(PREFIX) else {
        return Incoming::Other;
    };
    if rest.starts_with(b"message\"") {
        return parse_header(frame).map_or(Incoming::Other, Incoming::Message);
    }
    if rest.starts_with(b"ack\"") {
        let Ok(ack) = serde_json::from_slice::<AckFrame<'_>>(frame) else {
            return Incoming::Other;
        };
        let request = ack.id.unwrap_or(0);
        return match ack.status {
            "pending" => Incoming::AckPending { request },
            "delivered" => Incoming::AckDelivered { request },
            _ => Incoming::AckRejected { request },
        };
    }
    if rest.starts_with(b"joined\"") {
        return Incoming::Joined;
    }
    if rest.starts_with(b"welcome\"") {
        return Incoming::Welcome;
    }
    if rest.starts_with(b"error\"") {
        return Incoming::Error;
    }
    Incoming::Other
}

fn classify_socketio(frame: &[u8]) -> Incoming {
    if frame == b"2" {
        return Incoming::Ping;
    }
    if frame.starts_with(b"0{") {
        return Incoming::Open;
    }
    if let Some(rest) = frame.strip_prefix(b"43") {
        let digits_end = memchr::memchr(b'[', rest).unwrap_or(rest.len());
        let Some(request) = parse_digits(&rest[..digits_end]) else {
            return Incoming::Other;
        };
        if request == 0 {
            return Incoming::Joined;
        }
        return if memchr::memmem::find(&rest[digits_end..], b"delivered").is_some() {
            Incoming::AckDelivered { request }
        } else {
            Incoming::AckRejected { request }
        };
    }
    if frame.starts_with(b"40") {
        return Incoming::Connected;
    }
    if frame.starts_with(br#"42["message""#) {
        return parse_header(frame).map_or(Incoming::Other, Incoming::Message);
    }
    if frame.starts_with(b"44") {
        return Incoming::Error;
    }
    Incoming::Other
}

#[cfg(test)]
mod tests {
    //! Frame classification for every dialect.

    use super::*;

    #[test]
    fn headers_round_trip_through_frames() {
        let header = Header {
            sender: 7,
            number: 42,
            sent_ns: 123_456,
        };
        let text = message_text(header, 64);
        assert_eq!(text.len(), 64);
        let frame = format!(r#"{{"type":"message","seq":3,"text":"{text}"}}"#);
        assert_eq!(
            Target::Switchboard.classify(frame.as_bytes()),
            Incoming::Message(header)
        );
        let frame = format!(r#"42["message",{{"text":"{text}"}}]"#);
        assert_eq!(
            Target::Socketio.classify(frame.as_bytes()),
            Incoming::Message(header)
        );
    }

    #[test]
    fn acks_and_control_frames() {
        let sb = Target::Switchboard;
        assert_eq!(
            sb.classify(r#"{"type":"ack","id":5,"status":"pending","client_id":"c"}"#.as_bytes()),
            Incoming::AckPending { request: 5 }
        );
        assert_eq!(
            sb.classify(
                r#"{"type":"ack","id":5,"status":"delivered","client_id":"c","seq":1}"#.as_bytes()
            ),
            Incoming::AckDelivered { request: 5 }
        );
        assert_eq!(
            sb.classify(r#"{"type":"ack","id":5,"status":"rejected","code":"x"}"#.as_bytes()),
            Incoming::AckRejected { request: 5 }
        );
        assert_eq!(
            sb.classify(r#"{"type":"joined","id":0,"head":0}"#.as_bytes()),
            Incoming::Joined
        );
        assert_eq!(
            sb.classify(r#"{"type":"welcome","session_id":"x"}"#.as_bytes()),
            Incoming::Welcome
        );
        let io = Target::Socketio;
        assert_eq!(io.classify(b"2"), Incoming::Ping);
        assert_eq!(
            io.classify(r#"0{"sid":"a","pingInterval":25000}"#.as_bytes()),
            Incoming::Open
        );
        assert_eq!(io.classify(br#"40{"sid":"b"}"#), Incoming::Connected);
        assert_eq!(io.classify(b"430[]"), Incoming::Joined);
        assert_eq!(
            io.classify(r#"4317[{"status":"delivered","client_id":"c"}]"#.as_bytes()),
            Incoming::AckDelivered { request: 17 }
        );
    }
}
