//! Shared test harness: a server on an ephemeral port with its own data directory, token
//! minting, and a WebSocket client that reads with deadlines (a deadline turns a hang into a
//! failure; nothing here sleeps to wait for something to happen).

#![allow(dead_code)] // Each test module uses a different subset of the harness.

use std::future::Future;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard::config::{Config, EmbeddedRelayConfig, TurnRelay};
use switchboard_engine::ids::{TenantId, UserId};
use switchboard_engine::time::Timestamp;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The development secret every test server uses.
pub(crate) const TEST_SECRET: &str = "integration-test-secret-at-least-32-bytes";

/// How long any single expected event may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

pub(crate) fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    Timestamp(since_epoch.as_millis() as u64)
}

/// A test configuration: ephemeral port, embedded storage in `data_dir`, rate limit off.
pub(crate) fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config.server.data_dir = data_dir.to_path_buf();
    config.server.shutdown_timeout_ms = 5_000;
    config.auth.hs256_secret = Some(TEST_SECRET.to_owned());
    config.limits.messages_per_minute = 0;
    // The suite runs many servers at once on a busy machine: an idle-priority indexer could wait
    // for CPU longer than a test's deadline. What niceness costs is measured in benches/.
    config.search.indexer_nice = 0;
    // Every test server runs the embedded TURN relay, on a port of its own.
    config.turn.relay = TurnRelay::Embedded(EmbeddedRelayConfig {
        listen: "127.0.0.1:0".to_owned(),
        ..EmbeddedRelayConfig::default()
    });
    config
}

pub(crate) fn token(tenant: &str, user: &str) -> String {
    token_with_ttl(tenant, user, 3600)
}

pub(crate) fn token_with_ttl(tenant: &str, user: &str, ttl_secs: u64) -> String {
    token_issued_at(tenant, user, now().as_millis(), ttl_secs)
}

/// A token issued at `issued_at_ms` (milliseconds since the epoch), valid for `ttl_secs`.
pub(crate) fn token_issued_at(
    tenant: &str,
    user: &str,
    issued_at_ms: u64,
    ttl_secs: u64,
) -> String {
    switchboard_transport::auth::mint_hs256(
        TEST_SECRET,
        &TenantId::parse(tenant).expect("valid tenant"),
        &UserId::parse(user).expect("valid user"),
        Timestamp(issued_at_ms),
        ttl_secs,
    )
    .expect("minting works")
}

/// A token granting `roles` (`admin`, `recorder`).
pub(crate) fn token_with_roles(tenant: &str, user: &str, roles: &[&str]) -> String {
    switchboard_transport::auth::mint_hs256_with_roles(
        TEST_SECRET,
        &TenantId::parse(tenant).expect("valid tenant"),
        &UserId::parse(user).expect("valid user"),
        now(),
        3600,
        roles,
    )
    .expect("minting works")
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) struct TestServer {
    server: Option<switchboard::Server>,
    pub(crate) addr: SocketAddr,
    pub(crate) data_dir: TempDir,
    pub(crate) http: reqwest::Client,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_with_ports(configure, switchboard::Ports::default()).await
    }

    /// A server with some adapters given (several nodes of one deployment in one process).
    pub(crate) async fn start_with_ports(
        configure: impl FnOnce(&mut Config),
        ports: switchboard::Ports,
    ) -> TestServer {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(data_dir.path());
        configure(&mut config);
        let server = switchboard::start_with_ports(config, ports)
            .await
            .expect("server starts");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            data_dir,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn server(&self) -> &switchboard::Server {
        self.server.as_ref().expect("server is running")
    }

    pub(crate) async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub(crate) fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/v1/ws?token={}", self.addr, token)
    }

    /// An HTTP request to `path` as `user` of tenant acme, with `body`, if any, as JSON.
    pub(crate) async fn request_as(
        &self,
        user: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        self.request(method, path, &token("acme", user), body).await
    }

    /// An HTTP call as `user` of tenant acme: the status, whether the answer is the replay of
    /// an earlier request with the same `client_id`, and the JSON body (null when there is none).
    pub(crate) async fn call_as(
        &self,
        method: Method,
        user: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, bool, Value) {
        let response = self.request_as(user, method, path, body.as_ref()).await;
        let status = response.status().as_u16();
        let replayed = response.headers().get("idempotent-replayed").is_some();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, replayed, body)
    }

    /// `GET path` as `user`; see [`TestServer::call_as`].
    pub(crate) async fn get_as(&self, user: &str, path: &str) -> (u16, bool, Value) {
        self.call_as(Method::GET, user, path, None).await
    }

    /// `DELETE path` as `user`; see [`TestServer::call_as`].
    pub(crate) async fn delete_as(&self, user: &str, path: &str) -> (u16, bool, Value) {
        self.call_as(Method::DELETE, user, path, None).await
    }

    /// `POST path` with a JSON body as `user`; see [`TestServer::call_as`].
    pub(crate) async fn post_as(&self, user: &str, path: &str, body: Value) -> (u16, bool, Value) {
        self.call_as(Method::POST, user, path, Some(body)).await
    }

    /// `PATCH path` with a JSON body as `user`; see [`TestServer::call_as`].
    pub(crate) async fn patch_as(&self, user: &str, path: &str, body: Value) -> (u16, bool, Value) {
        self.call_as(Method::PATCH, user, path, Some(body)).await
    }

    /// `PUT path` with a JSON body as `user`; see [`TestServer::call_as`].
    pub(crate) async fn put_as(&self, user: &str, path: &str, body: Value) -> (u16, bool, Value) {
        self.call_as(Method::PUT, user, path, Some(body)).await
    }

    /// Sends `text` under `client_id` to a conversation over HTTP as `user` of tenant acme.
    pub(crate) async fn send_message_over_http(
        &self,
        user: &str,
        conversation_id: &str,
        client_id: &str,
        text: &str,
    ) -> reqwest::Response {
        let path = format!("/v1/conversations/{conversation_id}/messages");
        let body = json!({"client_id": client_id, "text": text});
        self.request_as(user, Method::POST, &path, Some(&body))
            .await
    }

    /// Reads a conversation over HTTP as `user` of tenant acme.
    pub(crate) async fn read_conversation_over_http(
        &self,
        user: &str,
        conversation_id: &str,
    ) -> reqwest::Response {
        let path = format!("/v1/conversations/{conversation_id}");
        self.request_as(user, Method::GET, &path, None).await
    }

    /// A `GET` of `path` with no token.
    pub(crate) async fn get_without_token(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// An HTTP request to `path` with `bearer` as the token and `body`, if any, as JSON.
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Creates a conversation as `creator` with `members`; returns its id.
    pub(crate) async fn create_conversation(
        &self,
        tenant: &str,
        creator: &str,
        members: &[&str],
    ) -> String {
        let response = self
            .request(
                Method::POST,
                "/v1/conversations",
                &token(tenant, creator),
                Some(&json!({"kind": "group", "title": "test", "members": members})),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json body");
        body["conversation_id"].as_str().expect("id").to_owned()
    }

    /// Creates a conversation in tenant `acme` as `creator` with `member` in it, and connects
    /// them both (creator first); returns its id and the two clients.
    pub(crate) async fn conversation_of_two(
        &self,
        creator: &str,
        member: &str,
    ) -> (String, Client, Client) {
        let id = self.create_conversation("acme", creator, &[member]).await;
        let creator = self.connect("acme", creator).await;
        let member = self.connect("acme", member).await;
        (id, creator, member)
    }

    /// Connects and reads the welcome frame.
    pub(crate) async fn connect(&self, tenant: &str, user: &str) -> Client {
        let mut client = Client::connect_raw(&self.ws_url(&token(tenant, user))).await;
        let welcome = client.next_json().await;
        assert_eq!(welcome["type"], "welcome", "first frame: {welcome}");
        client
    }

    /// All messages of a conversation, oldest first, read over HTTP.
    pub(crate) async fn history(
        &self,
        tenant: &str,
        user: &str,
        conversation_id: &str,
    ) -> Vec<Value> {
        let mut items = Vec::new();
        let mut after = 0u64;
        loop {
            let response = self
                .http
                .get(self.url(&format!(
                    "/v1/conversations/{conversation_id}/messages?after_seq={after}&limit=200"
                )))
                .bearer_auth(token(tenant, user))
                .send()
                .await
                .expect("request sent");
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.expect("json");
            let page_items = page["items"].as_array().expect("items").clone();
            if page_items.is_empty() {
                return items;
            }
            after = page_items.last().expect("non-empty")["seq"]
                .as_u64()
                .expect("seq");
            items.extend(page_items);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // A server that was not shut down explicitly stops with the runtime; nothing to do.
        let _ = self.server.take();
    }
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The real binary's log lines, as they arrive on its standard output.
pub(crate) type LogLines = Lines<BufReader<ChildStdout>>;

/// Starts `switchboard serve` on ephemeral ports (HTTP and the TURN relay) on `data_dir`,
/// taking tokens signed with [`TEST_SECRET`], with its log (`log_format`, `RUST_LOG=info`) on a
/// pipe; `configure` adds to its environment.
pub(crate) fn serve_binary(
    data_dir: &std::path::Path,
    log_format: &str,
    configure: impl FnOnce(&mut Command) -> &mut Command,
) -> (Child, LogLines) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            log_format,
            "--data-dir",
        ])
        .arg(data_dir)
        .env("SWITCHBOARD__AUTH__HS256_SECRET", TEST_SECRET)
        .env("SWITCHBOARD__TURN__RELAY_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD__SEARCH__INDEXER_NICE", "0")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = configure(&mut command).spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout).lines())
}

/// Sends `request` and reads the JSON body of its answer.
pub(crate) async fn json_answer(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    Closed(Option<CloseFrame>),
    Dropped,
}

pub(crate) struct Client {
    pub(crate) socket: Socket,
}

impl Client {
    pub(crate) async fn connect_raw(url: &str) -> Client {
        let (socket, _) = tokio::time::timeout(
            DEADLINE,
            tokio_tungstenite::connect_async_with_config(url, None, true),
        )
        .await
        .expect("connect within the deadline")
        .expect("upgrade succeeds");
        Client { socket }
    }

    pub(crate) async fn send_json(&mut self, value: Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .expect("frame sent");
    }

    pub(crate) async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("frame sent");
    }

    /// The next JSON text frame (pings and pongs are skipped).
    pub(crate) async fn next_json(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(DEADLINE, self.socket.next())
                .await
                .expect("a frame within the deadline")
                .expect("the connection is open")
                .expect("a valid frame");
            match next {
                Message::Text(text) => {
                    return serde_json::from_str(&text).expect("server sends JSON");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Reads until the connection ends, returning the text frames seen and how it ended.
    pub(crate) async fn read_until_end(&mut self) -> (Vec<Value>, Ended) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(DEADLINE, self.socket.next())
                .await
                .expect("the connection ends within the deadline");
            match next {
                None | Some(Err(_)) => return (frames, Ended::Dropped),
                Some(Ok(Message::Close(frame))) => return (frames, Ended::Closed(frame)),
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(&text).expect("server sends JSON"));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    pub(crate) async fn join(&mut self, conversation_id: &str, since: Option<u64>) -> Value {
        let mut frame = json!({"type": "join", "id": "join", "conversation_id": conversation_id});
        if let Some(since) = since {
            frame["since"] = since.into();
        }
        self.send_json(frame).await;
        self.next_json().await
    }

    /// Sends a message and returns (pending ack, final ack), skipping interleaved events.
    pub(crate) async fn send_message(
        &mut self,
        conversation_id: &str,
        client_id: &str,
        text: &str,
    ) -> (Value, Value) {
        self.send_json(json!({
            "type": "send", "id": client_id, "conversation_id": conversation_id,
            "client_id": client_id, "text": text,
        }))
        .await;
        let mut acks = Vec::new();
        while acks.len() < 2 {
            let frame = self.next_json().await;
            if frame["type"] == "ack" && frame["client_id"] == client_id {
                acks.push(frame);
            }
        }
        let final_ack = acks.pop().expect("two acks");
        let pending = acks.pop().expect("two acks");
        (pending, final_ack)
    }

    /// Reads `message` events until one with `seq` arrives; returns every message seen.
    pub(crate) async fn messages_through(&mut self, seq: u64) -> Vec<Value> {
        let mut messages = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame["type"] == "message" {
                let frame_seq = frame["seq"].as_u64().expect("seq");
                messages.push(frame);
                if frame_seq >= seq {
                    return messages;
                }
            }
        }
    }
}

pub(crate) fn seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .map(|message| message["seq"].as_u64().expect("seq"))
        .collect()
}

/// Reads frames until one of type `kind` arrives (each read bounded by the deadline).
pub(crate) async fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.next_json().await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// A JPEG photo of `width`×`height` (a gradient, so it compresses like a photo).
pub(crate) fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Jpeg)
        .expect("encodes");
    bytes.into_inner()
}

/// A response header's value as text, empty when it is absent.
pub(crate) fn header_value(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
