//! What Switchboard keeps about call recordings, end to end: a recorded call leaves a record
//! with every participant and consent (late joiners included), its start and stop; a recorder
//! stores the media and reports its quality; an administrator lists, reads and downloads it,
//! and erases it for good (GDPR): afterwards no API answers anything about it, no media file is
//! left in the object store, the conversation's sessions are told, and the audit log names only
//! ids. The second test fences the API: roles, tenants, malformed input and limits. The
//! upload tests show that a refused upload is answered before its body is read (every check
//! runs first), that a body past the limit or cut off stores nothing, and that the transfer
//! permits bound concurrent transfers; `recordings_rss.rs` measures the memory uploads take.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{AuditId, RecordingId, TenantId};
use switchboard_engine::recording::{
    AuditRecord, RecordingFilter, RecordingRecord, RecordingStore, RecordingUpdate,
    RecordingUpdateOutcome,
};

use crate::calls::{act, call_answered_by, consent, expect_frame, request_recording, server};
use crate::support::{TestServer, eventually, token_with_roles};

/// An HTTP call with a token of `tenant`/`user` granting `roles`; returns status and JSON.
pub(crate) async fn as_role(
    server: &TestServer,
    method: Method,
    (tenant, user, roles): (&str, &str, &[&str]),
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .bearer_auth(token_with_roles(tenant, user, roles));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(crate) const ADMIN: (&str, &str, &[&str]) = ("acme", "ops", &["admin"]);
pub(crate) const RECORDER: (&str, &str, &[&str]) = ("acme", "recorder-1", &["recorder"]);
const MEMBER: (&str, &str, &[&str]) = ("acme", "alice", &[]);
const OTHER_ADMIN: (&str, &str, &[&str]) = ("globex", "ops", &["admin", "recorder"]);

pub(crate) async fn upload(
    server: &TestServer,
    who: (&str, &str, &[&str]),
    recording_id: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let mut request = server
        .http
        .put(server.url(&format!("/v1/recordings/{recording_id}/media")))
        .bearer_auth(token_with_roles(who.0, who.1, who.2))
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every regular file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Polls the admin API until the recording's record satisfies `ready`.
pub(crate) async fn record_when(
    server: &TestServer,
    recording_id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    eventually("the recording's record", || async {
        let (status, body) = as_role(
            server,
            Method::GET,
            ADMIN,
            &format!("/v1/recordings/{recording_id}"),
            None,
        )
        .await;
        (status == 200 && ready(&body)).then_some(body)
    })
    .await
}

#[tokio::test]
async fn a_recording_keeps_consents_media_and_quality_and_an_erase_leaves_nothing_behind() {
    let server = server().await;
    // Alice calls Bob and Carol; Bob answers, they record; Carol joins late and consents.
    let (id, call_id, mut alice, mut bob, mut carol) = call_answered_by(&server, &["bob"]).await;
    let recording_value =
        request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    let recording_id = recording_value.as_str().expect("an id").to_owned();
    consent(&mut bob, &id, &call_id, &recording_value, true).await;
    expect_frame(&mut alice, "recording.started").await;
    act(&mut carol, "call.accept", &id, &call_id).await;
    expect_frame(&mut carol, "call.recording.consent_requested").await;
    consent(&mut carol, &id, &call_id, &recording_value, true).await;
    let late = record_when(&server, &recording_id, |record| {
        record["participants"].as_array().map(Vec::len) == Some(3)
    })
    .await;
    assert_eq!(late["participants"], json!(["alice", "bob", "carol"]));
    // Bob stops it.
    bob.send_json(json!({"type": "call.recording.stop", "conversation_id": id,
        "call_id": call_id, "recording_id": recording_id}))
        .await;
    let record = record_when(&server, &recording_id, |record| {
        !record["stopped_at"].is_null()
    })
    .await;
    assert_eq!(record["recording_id"], recording_id.as_str());
    assert_eq!(record["call_id"], call_id);
    assert_eq!(record["conversation_id"], id.as_str());
    assert_eq!(record["requested_by"], "alice");
    assert_eq!(record["end_reason"], "stopped");
    assert_eq!(record["stopped_by"], "bob");
    assert!(record["object"].is_null() && record["quality"].is_null());
    let consents = record["consents"].as_array().expect("consents");
    let consented: Vec<&str> = consents
        .iter()
        .map(|consent| consent["user_id"].as_str().expect("a user"))
        .collect();
    assert_eq!(
        consented,
        ["alice", "bob", "carol"],
        "in time order, the late joiner last"
    );
    let started_at = record["started_at"].as_u64().expect("started_at");
    assert!(consents[2]["at"].as_u64().expect("at") >= started_at);
    assert!(record["stopped_at"].as_u64().expect("stopped_at") >= started_at);
    let (status, page) = as_role(
        &server,
        Method::GET,
        ADMIN,
        &format!("/v1/recordings?conversation_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([record]));

    // The recorder stores the media; every joined session hears of it.
    let media: Vec<u8> = (0..100_000u32).map(|index| (index % 251) as u8).collect();
    let (status, stored) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        media.clone(),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let object = &stored["object"];
    assert_eq!(object["bytes"], media.len());
    assert_eq!(object["content_type"], "audio/ogg");
    assert_eq!(object["backend"], "filesystem");
    assert_eq!(
        object["sha256"],
        format!("{:x}", sha2::Sha256::digest(&media))
    );
    for client in [&mut alice, &mut bob, &mut carol] {
        let notice = expect_frame(client, "recording.media_stored").await;
        assert_eq!(notice["recording_id"], recording_id.as_str());
        assert_eq!(notice["conversation_id"], id.as_str());
        assert_eq!(notice["bytes"], media.len());
    }
    let (status, again) =
        upload(&server, RECORDER, &recording_id, Some("audio/ogg"), vec![1]).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("conflict")));
    let (status, reported) = as_role(
        &server,
        Method::PUT,
        RECORDER,
        &format!("/v1/recordings/{recording_id}/quality"),
        Some(
            json!({"media_duration_ms": 61_000, "packet_loss_ratio": 0.01,
            "jitter_ms": 12, "resolution": "1280x720"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{reported}");
    assert_eq!(reported["quality"]["media_duration_ms"], 61_000);
    assert_eq!(reported["quality"]["resolution"], "1280x720");
    assert!(reported["quality"]["reported_at"].as_u64() > Some(0));
    let download = server
        .request(
            Method::GET,
            &format!("/v1/recordings/{recording_id}/media"),
            &token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2),
            None,
        )
        .await;
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["content-type"], "audio/ogg");
    assert_eq!(download.headers()["accept-ranges"], "bytes");
    let etag = download.headers()["etag"]
        .to_str()
        .expect("a text tag")
        .to_owned();
    assert_eq!(
        download.bytes().await.expect("a body").as_ref(),
        media.as_slice()
    );
    // Ranges and conditional requests, as for media.
    let admin_token = token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2);
    let media_path = server.url(&format!("/v1/recordings/{recording_id}/media"));
    let with_header = |name: &str, value: &str| {
        reqwest::Client::new()
            .get(media_path.clone())
            .bearer_auth(&admin_token)
            .header(name, value)
            .send()
    };
    let part = with_header("range", "bytes=2-5").await.expect("sent");
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 2-5/{}", media.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("a body").as_ref(), &media[2..6]);
    let refused = with_header("range", "bytes=5-1").await.expect("sent");
    assert_eq!(refused.status().as_u16(), 416);
    assert_eq!(
        refused.headers()["content-range"],
        format!("bytes */{}", media.len()).as_str()
    );
    let unchanged = with_header("if-none-match", &etag).await.expect("sent");
    assert_eq!(unchanged.status().as_u16(), 304);
    let objects_dir = server.data_dir.path().join(switchboard::OBJECTS_DIR);
    assert_eq!(files_under(&objects_dir).len(), 1, "the media is one file");

    // The erase.
    let (status, audit) = as_role(
        &server,
        Method::DELETE,
        ADMIN,
        &format!("/v1/recordings/{recording_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["action"], "recording.erased");
    assert_eq!(audit["actor_id"], "ops");
    assert_eq!(audit["recording_id"], recording_id.as_str());
    assert_eq!(audit["call_id"], call_id);
    assert_eq!(audit["object_erased"], true);
    let audit_text = audit.to_string();
    for personal in ["alice", "bob", "carol", "consent", "participants"] {
        assert!(
            !audit_text.contains(personal),
            "the audit record names {personal}: {audit}"
        );
    }
    for client in [&mut alice, &mut bob, &mut carol] {
        let notice = expect_frame(client, "recording.erased").await;
        assert_eq!(notice["recording_id"], recording_id.as_str());
    }

    // Nothing is left.
    assert!(
        files_under(&objects_dir).is_empty(),
        "the media file is gone"
    );
    for (method, path) in [
        (Method::GET, format!("/v1/recordings/{recording_id}")),
        (Method::GET, format!("/v1/recordings/{recording_id}/media")),
        (Method::DELETE, format!("/v1/recordings/{recording_id}")),
    ] {
        let (status, body) = as_role(&server, method.clone(), ADMIN, &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{method} {path}"
        );
    }
    let (status, body) = as_role(
        &server,
        Method::PUT,
        RECORDER,
        &format!("/v1/recordings/{recording_id}/quality"),
        Some(json!({"jitter_ms": 1})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        vec![1, 2],
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert!(
        files_under(&objects_dir).is_empty(),
        "a late upload leaves no file"
    );
    let (_, page) = as_role(&server, Method::GET, ADMIN, "/v1/recordings", None).await;
    assert_eq!(page["items"], json!([]));
    let (status, log) = as_role(&server, Method::GET, ADMIN, "/v1/audit", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        log["items"],
        json!([audit]),
        "one audit record, the erase's"
    );
}

#[tokio::test]
async fn roles_tenants_and_limits_fence_the_recordings_api() {
    let server = TestServer::start_with(|config| {
        config.conversations.call_recording_consent_timeout_ms = 5_000;
        config.limits.max_recording_bytes = 1024;
    })
    .await;
    let (id, call_id, mut alice, mut bob, mut carol) =
        call_answered_by(&server, &["bob", "carol"]).await;
    let recording_value =
        request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    let recording_id = recording_value.as_str().expect("an id").to_owned();
    consent(&mut bob, &id, &call_id, &recording_value, true).await;
    consent(&mut carol, &id, &call_id, &recording_value, true).await;
    record_when(&server, &recording_id, |_| true).await;
    let one = format!("/v1/recordings/{recording_id}");
    let media = format!("/v1/recordings/{recording_id}/media");
    let quality = format!("/v1/recordings/{recording_id}/quality");

    // A member's token (no role) reaches nothing here; a recorder's only its two endpoints.
    for (who, allowed_for_recorder) in [(MEMBER, false), (RECORDER, true)] {
        for (method, path) in [
            (Method::GET, "/v1/recordings".to_owned()),
            (Method::GET, one.clone()),
            (Method::DELETE, one.clone()),
            (Method::GET, media.clone()),
            (Method::GET, "/v1/audit".to_owned()),
        ] {
            let (status, body) = as_role(&server, method.clone(), who, &path, None).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("forbidden")),
                "{method} {path}"
            );
        }
        let (status, _) = as_role(&server, Method::PUT, who, &quality, Some(json!({}))).await;
        assert_eq!(
            status == 200,
            allowed_for_recorder,
            "quality as {who:?}: {status}"
        );
    }
    let (status, _) = upload(&server, MEMBER, &recording_id, Some("audio/ogg"), vec![1]).await;
    assert_eq!(status, 403);

    // Another tenant's administrator finds nothing, and changes nothing.
    let (_, page) = as_role(&server, Method::GET, OTHER_ADMIN, "/v1/recordings", None).await;
    assert_eq!(page["items"], json!([]));
    for (method, path) in [(Method::GET, one.clone()), (Method::DELETE, one.clone())] {
        let (status, _) = as_role(&server, method, OTHER_ADMIN, &path, None).await;
        assert_eq!(status, 404);
    }
    let (status, _) = upload(
        &server,
        OTHER_ADMIN,
        &recording_id,
        Some("audio/ogg"),
        vec![1],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = as_role(
        &server,
        Method::PUT,
        OTHER_ADMIN,
        &quality,
        Some(json!({"jitter_ms": 1})),
    )
    .await;
    assert_eq!(status, 404);

    // Malformed input is refused with the field named; limits hold.
    for path in [
        "/v1/recordings/not-a-ulid".to_owned(),
        "/v1/recordings?before=nope".to_owned(),
        "/v1/recordings?conversation_id=nope".to_owned(),
        "/v1/recordings?colour=red".to_owned(),
        "/v1/recordings?limit=0".to_owned(),
        "/v1/audit?before=nope".to_owned(),
    ] {
        let (status, body) = as_role(&server, Method::GET, ADMIN, &path, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{path}: {body}"
        );
    }
    for bad in [
        json!({"packet_loss_ratio": 1.5}),
        json!({"resolution": "wide"}),
        json!({"colour": "red"}),
        json!({"jitter_ms": -1}),
    ] {
        let (status, body) =
            as_role(&server, Method::PUT, RECORDER, &quality, Some(bad.clone())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid")),
            "{bad}: {body}"
        );
    }
    let (status, body) = upload(&server, RECORDER, &recording_id, None, vec![1]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
    assert_eq!(body["details"]["field"], "content_type");
    let (status, body) = upload(&server, RECORDER, &recording_id, Some("ogg"), vec![1]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid")));
    let (status, body) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        vec![0; 1025],
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_large")));
    let (status, body) = as_role(&server, Method::GET, ADMIN, &one, None).await;
    assert_eq!(status, 200);
    assert!(
        body["object"].is_null(),
        "refused uploads stored nothing: {body}"
    );
    let (status, _) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        vec![0; 1024],
    )
    .await;
    assert_eq!(status, 201, "an upload at the limit is taken");
    let download = server
        .request(
            Method::GET,
            &media,
            &token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2),
            None,
        )
        .await;
    assert_eq!(
        download.headers()["etag"].to_str().expect("ascii"),
        format!("\"{:x}\"", sha2::Sha256::digest([0u8; 1024]))
    );

    // Erasing a recording that is still running stops it.
    let (status, _) = as_role(&server, Method::DELETE, ADMIN, &one, None).await;
    assert_eq!(status, 200);
    let ended = expect_frame(&mut alice, "recording.ended").await;
    assert_eq!(ended["recording_id"], recording_value);
    assert_eq!(ended["reason"], "erased");
    assert_eq!(ended["was_recording"], true);
}

/// A recording store whose backend is down: every call fails as unavailable.
struct UnavailableRecordingStore;

#[async_trait::async_trait]
impl RecordingStore for UnavailableRecordingStore {
    async fn create_recording(&self, _: &TenantId, _: &RecordingRecord) -> Result<(), StoreError> {
        Err(down())
    }

    async fn update_recording(
        &self,
        _: &TenantId,
        _: RecordingId,
        _: RecordingUpdate,
    ) -> Result<RecordingUpdateOutcome, StoreError> {
        Err(down())
    }

    async fn recording(
        &self,
        _: &TenantId,
        _: RecordingId,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        Err(down())
    }

    async fn recordings(
        &self,
        _: &TenantId,
        _: RecordingFilter,
        _: Option<RecordingId>,
        _: usize,
    ) -> Result<Vec<RecordingRecord>, StoreError> {
        Err(down())
    }

    async fn erase_recording(
        &self,
        _: &TenantId,
        _: RecordingId,
        _: &AuditRecord,
    ) -> Result<Option<RecordingRecord>, StoreError> {
        Err(down())
    }

    async fn audit_log(
        &self,
        _: &TenantId,
        _: Option<AuditId>,
        _: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::Unavailable("the recording store is down".to_owned())
}

#[tokio::test]
async fn a_recording_whose_consent_trail_cannot_be_stored_stops_at_once() {
    let ports = switchboard::Ports {
        recordings: Some(switchboard_actors::system::RecordingPorts {
            store: std::sync::Arc::new(UnavailableRecordingStore),
            objects: std::sync::Arc::new(switchboard_storage::MemoryObjectStore::new()),
        }),
        ..switchboard::Ports::default()
    };
    let server = TestServer::start_with_ports(
        |config| config.conversations.call_recording_consent_timeout_ms = 5_000,
        ports,
    )
    .await;
    let (id, call_id, mut alice, mut bob, _carol) = call_answered_by(&server, &["bob"]).await;
    let recording_value =
        request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording_value, true).await;
    expect_frame(&mut alice, "recording.started").await;
    let ended = expect_frame(&mut alice, "recording.ended").await;
    assert_eq!(ended["recording_id"], recording_value);
    assert_eq!(ended["reason"], "metadata_unavailable");
    assert_eq!(ended["was_recording"], true);
    let (status, body) = as_role(&server, Method::GET, ADMIN, "/v1/recordings", None).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("unavailable")));
}

/// A recording of a call between Alice and Bob (both consented), with no media yet; returns
/// its id and the two clients (the call goes on while they are kept).
pub(crate) async fn a_recording(
    server: &TestServer,
) -> (String, crate::support::Client, crate::support::Client) {
    let (id, call_id, mut alice, mut bob, _carol) = call_answered_by(server, &["bob"]).await;
    let recording_value =
        request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording_value, true).await;
    let recording_id = recording_value.as_str().expect("an id").to_owned();
    record_when(server, &recording_id, |_| true).await;
    (recording_id, alice, bob)
}

/// Sends the head of a media upload (`content_length` declared) and `body_start` of its body,
/// and keeps the connection open for the rest.
pub(crate) async fn start_raw_upload(
    addr: std::net::SocketAddr,
    who: (&str, &str, &[&str]),
    recording_id: &str,
    content_type: Option<&str>,
    content_length: u64,
    body_start: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let token = token_with_roles(who.0, who.1, who.2);
    let content_type = content_type
        .map(|content_type| format!("content-type: {content_type}\r\n"))
        .unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connected");
    stream
        .write_all(
            format!(
                "PUT /v1/recordings/{recording_id}/media HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                 authorization: Bearer {token}\r\n{content_type}content-length: {content_length}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("the head sent");
    stream
        .write_all(body_start)
        .await
        .expect("the body's start sent");
    stream
}

/// Reads one HTTP/1.1 answer (status and JSON body) from `stream`, within the deadline: a
/// server that waits for the rest of the body before it answers fails the test here.
pub(crate) async fn read_answer(stream: &mut tokio::net::TcpStream) -> (u16, Value) {
    use tokio::io::AsyncReadExt as _;
    let read = async {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(head_end) = answer.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
                let body_length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map(|value| value.trim().parse().expect("a length"))
                    .unwrap_or(0);
                if answer.len() >= head_end + 4 + body_length {
                    let status = head[9..12].parse().expect("a status");
                    let body = &answer[head_end + 4..head_end + 4 + body_length];
                    return (status, serde_json::from_slice(body).unwrap_or(Value::Null));
                }
            }
            let n_read = stream.read(&mut buffer).await.expect("readable");
            assert!(n_read > 0, "the connection closed before a whole answer");
            answer.extend_from_slice(&buffer[..n_read]);
        }
    };
    tokio::time::timeout(crate::support::DEADLINE, read)
        .await
        .expect("an answer before the body was sent")
}

/// Waits until an upload's body streams into the filesystem object store: its temporary file
/// exists, so the upload holds its permit and its claim on the recording.
pub(crate) async fn upload_in_progress(server: &TestServer) {
    let objects_dir = server.data_dir.path().join(switchboard::OBJECTS_DIR);
    eventually("an upload streams into a temporary file", || async {
        files_under(&objects_dir)
            .iter()
            .any(|file| {
                file.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(".tmp-"))
            })
            .then_some(())
    })
    .await;
}

/// What a media upload of `content_length` bytes gets when only its head is sent.
async fn answer_to_head_only(
    server: &TestServer,
    who: (&str, &str, &[&str]),
    recording_id: &str,
    content_type: Option<&str>,
    content_length: u64,
) -> (u16, Value) {
    let mut stream = start_raw_upload(
        server.addr,
        who,
        recording_id,
        content_type,
        content_length,
        b"",
    )
    .await;
    read_answer(&mut stream).await
}

#[tokio::test]
async fn a_refused_upload_is_answered_before_its_body_is_read() {
    const MIB: u64 = 1024 * 1024;
    let server = TestServer::start_with(|config| {
        config.conversations.call_recording_consent_timeout_ms = 5_000;
        config.limits.max_recording_bytes = 64 * 1024 * 1024;
    })
    .await;
    let (recording_id, _alice, _bob) = a_recording(&server).await;
    let nobody = RecordingId::from_parts(1, 1).to_string();

    // Each answer comes back while the 60 MiB the head announces are still unsent.
    for (who, recording, content_type, length, expected) in [
        (
            RECORDER,
            nobody.as_str(),
            Some("video/webm"),
            60 * MIB,
            (404, "not_found"),
        ),
        (
            OTHER_ADMIN,
            recording_id.as_str(),
            Some("video/webm"),
            60 * MIB,
            (404, "not_found"),
        ),
        (
            RECORDER,
            recording_id.as_str(),
            Some("video/webm"),
            65 * MIB,
            (413, "too_large"),
        ),
        (
            RECORDER,
            recording_id.as_str(),
            None,
            60 * MIB,
            (400, "invalid"),
        ),
        (
            RECORDER,
            recording_id.as_str(),
            Some("webm"),
            60 * MIB,
            (400, "invalid"),
        ),
        (
            RECORDER,
            "not-a-ulid",
            Some("video/webm"),
            60 * MIB,
            (400, "invalid"),
        ),
        (
            MEMBER,
            recording_id.as_str(),
            Some("video/webm"),
            60 * MIB,
            (403, "forbidden"),
        ),
    ] {
        let (status, body) =
            answer_to_head_only(&server, who, recording, content_type, length).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected.0, Some(expected.1)),
            "{who:?} {recording} {content_type:?} {length}: {body}"
        );
    }
    let (status, body) = answer_to_head_only(
        &server,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        65 * MIB,
    )
    .await;
    assert_eq!(body["details"]["limit"], 64 * MIB, "{status} {body}");
    assert_eq!(body["details"]["actual"], 65 * MIB, "{status} {body}");

    // An upload in progress: the second one is a conflict, answered before its body.
    let mut first = start_raw_upload(
        server.addr,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        10,
        b"01234",
    )
    .await;
    upload_in_progress(&server).await;
    let (status, conflict) = answer_to_head_only(
        &server,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        60 * MIB,
    )
    .await;
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("conflict")),
        "{conflict}"
    );
    {
        use tokio::io::AsyncWriteExt as _;
        first.write_all(b"56789").await.expect("the rest sent");
    }
    let (status, stored) = read_answer(&mut first).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["object"]["bytes"], 10);
    assert_eq!(
        stored["object"]["sha256"],
        format!("{:x}", sha2::Sha256::digest(b"0123456789"))
    );

    // Media already stored: a conflict, answered before the body.
    let (status, body) = answer_to_head_only(
        &server,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        60 * MIB,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_breaks_off_or_overruns_the_limit_stores_nothing() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start_with(|config| {
        config.conversations.call_recording_consent_timeout_ms = 5_000;
        config.limits.max_recording_bytes = 1024 * 1024;
    })
    .await;
    let (recording_id, _alice, _bob) = a_recording(&server).await;
    let objects_dir = server.data_dir.path().join(switchboard::OBJECTS_DIR);

    // A chunked body (no Content-Length) that goes past the limit: refused once it does.
    let token = token_with_roles(RECORDER.0, RECORDER.1, RECORDER.2);
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connected");
    stream
        .write_all(
            format!(
                "PUT /v1/recordings/{recording_id}/media HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                 authorization: Bearer {token}\r\ncontent-type: video/webm\r\n\
                 transfer-encoding: chunked\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("the head sent");
    // Exactly one byte past the limit and no end: the server reads every byte sent (nothing
    // is left unread for its close to reset), and can only answer because of the limit.
    for n_bytes in [256 * 1024, 256 * 1024, 256 * 1024, 256 * 1024, 1] {
        let mut framed = format!("{n_bytes:x}\r\n").into_bytes();
        framed.extend_from_slice(&vec![7u8; n_bytes]);
        framed.extend_from_slice(b"\r\n");
        stream.write_all(&framed).await.expect("a chunk sent");
    }
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );
    assert_eq!(body["details"]["limit"], 1024 * 1024);

    // A body cut off before its declared length.
    let mut stream = start_raw_upload(
        server.addr,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        1000,
        &[1u8; 400],
    )
    .await;
    stream.shutdown().await.expect("the half-sent body ends");
    let (status, body) = read_answer(&mut stream).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    assert_eq!(body["details"]["field"], "media");

    // Neither left anything, and the recording can still take its media.
    assert_eq!(files_under(&objects_dir), Vec::<std::path::PathBuf>::new());
    let (status, record) = as_role(
        &server,
        Method::GET,
        ADMIN,
        &format!("/v1/recordings/{recording_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(record["object"].is_null(), "{record}");
    let (status, _) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        vec![1; 1024],
    )
    .await;
    assert_eq!(status, 201);
}

/// A server that serves one recording transfer at a time, and a recording without media on it
/// (its callers' clients dropped: the recording stays).
async fn one_transfer_at_a_time() -> (TestServer, String) {
    let server = TestServer::start_with(|config| {
        config.conversations.call_recording_consent_timeout_ms = 5_000;
        config.limits.max_concurrent_recording_transfers = 1;
    })
    .await;
    let (recording_id, _alice, _bob) = a_recording(&server).await;
    (server, recording_id)
}

#[tokio::test]
async fn media_transfers_beyond_the_concurrent_limit_are_refused_until_one_finishes() {
    use tokio::io::AsyncWriteExt as _;

    let (server, recording_id) = one_transfer_at_a_time().await;
    // An upload whose body is on its way holds the only permit; a probe answers 503 while it
    // is held (the permit is checked before the recording is looked up), 404 once it is free.
    let nobody = |n: u64| RecordingId::from_parts(n, 1).to_string();
    let mut held = start_raw_upload(
        server.addr,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        10,
        b"12345",
    )
    .await;
    upload_in_progress(&server).await;
    let (status, refused) = upload(&server, RECORDER, &nobody(2), Some("audio/ogg"), vec![1]).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("unavailable")),
        "{refused}"
    );
    let (status, body) = as_role(
        &server,
        Method::GET,
        ADMIN,
        &format!("/v1/recordings/{}/media", nobody(4)),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("unavailable")),
        "a download needs a permit too"
    );

    held.write_all(b"67890").await.expect("the rest sent");
    let (status, stored) = read_answer(&mut held).await;
    assert_eq!(status, 201, "the held upload completes: {stored}");
    eventually("the permit is free again", || async {
        let (status, _) = upload(&server, RECORDER, &nobody(3), Some("audio/ogg"), vec![1]).await;
        (status == 404).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_download_holds_its_transfer_permit_until_its_last_byte_is_sent() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let (server, recording_id) = one_transfer_at_a_time().await;
    // Larger than every socket buffer between the node and a reader that stops reading.
    let media = vec![7u8; 32 << 20];
    let (status, stored) = upload(
        &server,
        RECORDER,
        &recording_id,
        Some("audio/ogg"),
        media.clone(),
    )
    .await;
    assert_eq!(status, 201, "{stored}");

    let token = token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2);
    let mut reader = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connected");
    reader
        .write_all(
            format!(
                "GET /v1/recordings/{recording_id}/media HTTP/1.1\r\nhost: 127.0.0.1\r\n\
                 authorization: Bearer {token}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("the request sent");
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let head_end = tokio::time::timeout(crate::support::DEADLINE, async {
        loop {
            if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
                return end + 4;
            }
            let n_read = reader.read(&mut buffer).await.expect("readable");
            assert!(n_read > 0, "the connection closed before the head");
            received.extend_from_slice(&buffer[..n_read]);
        }
    })
    .await
    .expect("the head arrives");
    assert!(received.starts_with(b"HTTP/1.1 200"), "{received:?}");

    // The reader has stopped: the body cannot be all sent, so the permit is still held.
    let nobody = RecordingId::from_parts(9, 1).to_string();
    let (status, refused) = upload(&server, RECORDER, &nobody, Some("audio/ogg"), vec![1]).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("unavailable")),
        "a download being sent holds its permit: {refused}"
    );

    // Reading the rest ends the download and frees the permit.
    let body_bytes = tokio::time::timeout(crate::support::DEADLINE, async {
        let mut body_bytes = received.len() - head_end;
        while body_bytes < media.len() {
            let n_read = reader.read(&mut buffer).await.expect("readable");
            assert!(n_read > 0, "the connection closed after {body_bytes} bytes");
            assert!(
                buffer[..n_read].iter().all(|byte| *byte == 7),
                "the media's bytes"
            );
            body_bytes += n_read;
        }
        body_bytes
    })
    .await
    .expect("the rest arrives");
    assert_eq!(body_bytes, media.len());
    eventually("the permit is free again", || async {
        let (status, _) = upload(&server, RECORDER, &nobody, Some("audio/ogg"), vec![1]).await;
        (status == 404).then_some(())
    })
    .await;
}
