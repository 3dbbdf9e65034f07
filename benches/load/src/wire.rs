//! The harness's own WebSocket client (RFC 6455): the opening handshake, and frames read and
//! written straight from and to the TCP socket, so that the harness is never the bottleneck.
//!
//! A general WebSocket library allocates a message per frame and reads a few frames per system
//! call; the harness must take several million frames a second on one core. Here a connection
//! reads as many bytes as the kernel has into one buffer and walks every complete frame in it in
//! place (server frames are not masked, so a payload is a slice of the buffer: no copy, no
//! allocation), and its sends are masked into one write buffer that is flushed once per turn of
//! the client's loop. Only what the harness needs is spoken: text frames (fragmented ones are
//! reassembled), ping (answered), pong and binary (ignored), close.

use std::ops::Range;

use anyhow::{Context, bail};
use base64::Engine as _;
use sha1::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The GUID RFC 6455 appends to the key to make the accept value.
const HANDSHAKE_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest handshake response the harness reads.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// The largest message the harness accepts (a server's frame or a reassembled message).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Opens a WebSocket on `stream` to `url` (`ws://host:port/path?query`); returns the halves of
/// the stream and a reader holding whatever the server sent after its handshake response.
pub(crate) async fn handshake(
    mut stream: TcpStream,
    url: &str,
    read_buffer_bytes: usize,
) -> anyhow::Result<(FrameReader, OwnedReadHalf, OwnedWriteHalf)> {
    let rest = url
        .strip_prefix("ws://")
        .context("only ws:// URLs are spoken")?;
    let (host, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let mut key_bytes = [0u8; 16];
    for chunk in key_bytes.chunks_mut(4) {
        // Unpredictability does not matter between the harness and a local server.
        chunk.copy_from_slice(&next_mask_seed().to_be_bytes());
    }
    let key = base64::engine::general_purpose::STANDARD.encode(key_bytes);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("sending the handshake")?;
    let mut response = Vec::with_capacity(1024);
    let header_end = loop {
        if let Some(end) = memchr::memmem::find(&response, b"\r\n\r\n") {
            break end + 4;
        }
        if response.len() >= MAX_RESPONSE_BYTES {
            bail!("the handshake response is over {MAX_RESPONSE_BYTES} bytes");
        }
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .context("reading the handshake")?;
        if n == 0 {
            bail!("the server closed the connection during the handshake");
        }
        response.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&response[..header_end]).context("a non-UTF-8 response")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        bail!("the upgrade was refused: {status}");
    }
    let expected = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(
        format!("{key}{HANDSHAKE_GUID}").as_bytes(),
    ));
    let accepted = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == expected
        })
    });
    if !accepted {
        bail!("the server's Sec-WebSocket-Accept does not answer the key");
    }
    let mut reader = FrameReader::new(read_buffer_bytes.max(response.len() - header_end));
    reader.buffer[..response.len() - header_end].copy_from_slice(&response[header_end..]);
    reader.end = response.len() - header_end;
    let (read_half, write_half) = stream.into_split();
    Ok((reader, read_half, write_half))
}

fn next_mask_seed() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEED: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    SEED.fetch_add(0x6D2B_79F5, Ordering::Relaxed)
}

/// What one frame (or reassembled message) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A text message; its payload is [`FrameReader::payload`].
    Text(Payload),
    /// A ping; answer with a pong of the same payload.
    Ping(Payload),
    /// The server closes the connection.
    Close,
    /// Anything the harness ignores (binary, pong).
    Ignored,
}

/// Where a frame's payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// In the read buffer.
    InBuffer(Range<usize>),
    /// In the reassembly buffer (a fragmented message).
    Reassembled,
}

/// Reads frames from a socket into one buffer and hands them out in place.
pub(crate) struct FrameReader {
    buffer: Vec<u8>,
    /// The first byte not yet handed out.
    start: usize,
    /// The end of what was read.
    end: usize,
    /// A fragmented text message being reassembled.
    fragments: Vec<u8>,
    /// Whether a fragmented text message is open.
    in_fragments: bool,
}

impl FrameReader {
    /// An empty reader whose buffer holds `bytes` (it grows for a larger frame).
    pub(crate) fn new(bytes: usize) -> Self {
        Self {
            buffer: vec![0; bytes.max(1024)],
            start: 0,
            end: 0,
            fragments: Vec::new(),
            in_fragments: false,
        }
    }

    /// Reads whatever the socket has (at least one byte, waiting for it); the number read, 0
    /// when the server has closed the connection. Cancel-safe.
    pub(crate) async fn fill(&mut self, socket: &mut OwnedReadHalf) -> std::io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buffer.len() - self.end < self.buffer.len() / 4 {
            // Move the partial frame to the front (or make room for a large one).
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buffer.len() {
                let doubled = self.buffer.len() * 2;
                self.buffer.resize(doubled, 0);
            }
        }
        let n = socket.read(&mut self.buffer[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame in the buffer, if there is one.
    ///
    /// # Errors
    /// A masked or oversized frame, or a continuation out of place.
    pub(crate) fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            let available = &self.buffer[self.start..self.end];
            if available.len() < 2 {
                return Ok(None);
            }
            let (first, second) = (available[0], available[1]);
            if second & 0x80 != 0 {
                bail!("the server sent a masked frame");
            }
            let (length, header) = match second & 0x7F {
                126 if available.len() >= 4 => (
                    usize::from(u16::from_be_bytes([available[2], available[3]])),
                    4,
                ),
                127 if available.len() >= 10 => {
                    let length = u64::from_be_bytes(available[2..10].try_into().expect("8 bytes"));
                    (usize::try_from(length).unwrap_or(usize::MAX), 10)
                }
                126 | 127 => return Ok(None),
                short => (usize::from(short), 2),
            };
            if length > MAX_MESSAGE_BYTES {
                bail!("the server sent a frame of {length} bytes");
            }
            if available.len() < header + length {
                if header + length > self.buffer.len() {
                    // Room for it at the next fill.
                    self.buffer.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                    self.buffer.resize((header + length).next_power_of_two(), 0);
                }
                return Ok(None);
            }
            let payload = self.start + header..self.start + header + length;
            self.start = payload.end;
            let final_fragment = first & 0x80 != 0;
            match (first & 0x0F, final_fragment) {
                (0x1, true) if !self.in_fragments => {
                    return Ok(Some(Frame::Text(Payload::InBuffer(payload))));
                }
                (0x1, false) if !self.in_fragments => {
                    self.in_fragments = true;
                    self.fragments.clear();
                    self.fragments.extend_from_slice(&self.buffer[payload]);
                }
                (0x0, last) if self.in_fragments => {
                    if self.fragments.len() + payload.len() > MAX_MESSAGE_BYTES {
                        bail!("the server sent a message over {MAX_MESSAGE_BYTES} bytes");
                    }
                    self.fragments.extend_from_slice(&self.buffer[payload]);
                    if last {
                        self.in_fragments = false;
                        return Ok(Some(Frame::Text(Payload::Reassembled)));
                    }
                }
                (0x0 | 0x1, _) => bail!("a continuation frame out of place"),
                (0x8, _) => return Ok(Some(Frame::Close)),
                (0x9, _) => return Ok(Some(Frame::Ping(Payload::InBuffer(payload)))),
                _ => return Ok(Some(Frame::Ignored)),
            }
        }
    }

    /// The bytes of a payload [`FrameReader::next_frame`] handed out (valid until the next
    /// call of [`FrameReader::fill`]).
    pub(crate) fn payload(&self, payload: &Payload) -> &[u8] {
        match payload {
            Payload::InBuffer(range) => &self.buffer[range.clone()],
            Payload::Reassembled => &self.fragments,
        }
    }
}

/// Masks frames into one buffer, flushed to the socket at once.
pub(crate) struct FrameWriter {
    buffer: Vec<u8>,
    mask: u32,
}

impl FrameWriter {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Self {
            buffer: Vec::with_capacity(4096),
            mask: next_mask_seed() | 1,
        }
    }

    /// Appends a text frame.
    pub(crate) fn text(&mut self, payload: &[u8]) {
        self.frame(0x1, payload);
    }

    /// Appends a pong answering a ping with `payload`.
    pub(crate) fn pong(&mut self, payload: &[u8]) {
        self.frame(0xA, payload);
    }

    /// Appends a close frame (no status).
    pub(crate) fn close(&mut self) {
        self.frame(0x8, &[]);
    }

    fn frame(&mut self, opcode: u8, payload: &[u8]) {
        self.buffer.push(0x80 | opcode);
        match payload.len() {
            short @ 0..=125 => self.buffer.push(0x80 | short as u8),
            medium @ 126..=0xFFFF => {
                self.buffer.push(0x80 | 126);
                self.buffer
                    .extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                self.buffer.push(0x80 | 127);
                self.buffer.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        // xorshift32: a new key per frame, as RFC 6455 asks.
        self.mask ^= self.mask << 13;
        self.mask ^= self.mask >> 17;
        self.mask ^= self.mask << 5;
        let key = self.mask.to_be_bytes();
        self.buffer.extend_from_slice(&key);
        self.buffer.extend(
            payload
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ key[index % 4]),
        );
    }

    /// Writes every waiting frame.
    pub(crate) async fn flush(&mut self, socket: &mut OwnedWriteHalf) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            socket.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Frames the writer makes are read back by a server-side decoder (unmasking), and the
    //! reader walks frames split anywhere across reads.

    use super::*;

    /// Unmasks one client frame at the start of `bytes`: its opcode and payload.
    fn unmask(bytes: &[u8]) -> (u8, Vec<u8>, usize) {
        let opcode = bytes[0] & 0x0F;
        assert_eq!(bytes[1] & 0x80, 0x80, "client frames are masked");
        let (length, mut at) = match bytes[1] & 0x7F {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (
                usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().expect("8")))
                    .expect("fits"),
                10,
            ),
            short => (usize::from(short), 2),
        };
        let key = &bytes[at..at + 4];
        at += 4;
        let payload = bytes[at..at + length]
            .iter()
            .enumerate()
            .map(|(index, byte)| byte ^ key[index % 4])
            .collect();
        (opcode, payload, at + length)
    }

    #[test]
    fn written_frames_unmask_to_their_payloads() {
        let mut writer = FrameWriter::new();
        let long = vec![b'y'; 70_000];
        writer.text(b"hello");
        writer.text(&vec![b'x'; 300]);
        writer.text(&long);
        writer.pong(b"p");
        let mut at = 0;
        for (opcode, payload) in [
            (1, b"hello".to_vec()),
            (1, vec![b'x'; 300]),
            (1, long),
            (0xA, b"p".to_vec()),
        ] {
            let (read_opcode, read_payload, used) = unmask(&writer.buffer[at..]);
            assert_eq!((read_opcode, read_payload), (opcode, payload));
            at += used;
        }
        assert_eq!(at, writer.buffer.len());
    }

    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            short @ 0..=125 => frame.push(short as u8),
            medium @ 126..=0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                frame.push(127);
                frame.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn frames_split_anywhere_are_read_whole_and_fragments_reassembled() {
        let mut stream = Vec::new();
        stream.extend(server_frame(0x81, b"one"));
        stream.extend(server_frame(0x89, b"ping"));
        stream.extend(server_frame(0x01, b"fra"));
        stream.extend(server_frame(0x80, b"gmented"));
        stream.extend(server_frame(0x81, &vec![b'z'; 40_000]));
        stream.extend(server_frame(0x88, b""));
        for split in [1, 2, 3, 7, 100, 20_000, stream.len()] {
            let mut reader = FrameReader::new(0);
            let mut texts: Vec<Vec<u8>> = Vec::new();
            let mut pings = 0;
            let mut closed = false;
            for chunk in stream.chunks(split) {
                // As `fill` does: compact, grow, append.
                if reader.start == reader.end {
                    reader.start = 0;
                    reader.end = 0;
                }
                if reader.buffer.len() - reader.end < chunk.len() {
                    reader.buffer.copy_within(reader.start..reader.end, 0);
                    reader.end -= reader.start;
                    reader.start = 0;
                    let needed = reader.end + chunk.len();
                    if needed > reader.buffer.len() {
                        reader.buffer.resize(needed, 0);
                    }
                }
                reader.buffer[reader.end..reader.end + chunk.len()].copy_from_slice(chunk);
                reader.end += chunk.len();
                while let Some(frame) = reader.next_frame().expect("well formed") {
                    match frame {
                        Frame::Text(payload) => texts.push(reader.payload(&payload).to_vec()),
                        Frame::Ping(payload) => {
                            assert_eq!(reader.payload(&payload), b"ping");
                            pings += 1;
                        }
                        Frame::Close => closed = true,
                        Frame::Ignored => {}
                    }
                }
            }
            assert_eq!(
                texts,
                [b"one".to_vec(), b"fragmented".to_vec(), vec![b'z'; 40_000]],
                "split every {split} bytes"
            );
            assert_eq!(pings, 1);
            assert!(closed);
        }
    }

    #[test]
    fn masked_server_frames_are_refused() {
        let mut reader = FrameReader::new(0);
        reader.buffer[..6].copy_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        reader.end = 6;
        assert!(reader.next_frame().is_err());
    }
}
