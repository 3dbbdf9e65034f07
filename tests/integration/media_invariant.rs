//! The storage invariant of media, checked on disk after a sequence of uploads, attaches,
//! deletes and two `kill -9`s of the real binary (embedded records, filesystem objects): no
//! object is left without a record of its media, and no record points at a missing object.
//!
//! The sequence: photos and text files uploaded whole (the photos thumbnailed), two of them
//! attached to a message, one deleted; a tus upload half sent; a single upload killed midway by
//! `kill -9`. After the restart: another file deleted, the tus upload finished, and the process
//! killed again. Then the test reads the objects directory (each object file names its key in
//! its header; temporary files a killed write left are skipped: they are never read and are
//! not objects) and the media records, and checks both directions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_engine::ids::{MediaId, TenantId};
use switchboard_engine::media::{
    MediaRecord, MediaState, MediaStore, media_object_key, media_part_object_key,
    thumbnail_object_key,
};
use tokio::io::AsyncWriteExt as _;

use crate::crash::{Binary, conversation_of_alice_with_bob, spawn_binary};
use crate::support::{eventually, jpeg, token};

fn settings() -> Vec<(String, String)> {
    vec![(
        "SWITCHBOARD__MEDIA__COLLECT_INTERVAL_MS".to_owned(),
        "100".to_owned(),
    )]
}

fn text(n_bytes: usize) -> Vec<u8> {
    (0..n_bytes).map(|n| b'a' + (n % 26) as u8).collect()
}

async fn upload(http: &reqwest::Client, binary: &Binary, name: &str, bytes: Vec<u8>) -> String {
    let response = http
        .post(format!("http://{}/v1/media?file_name={name}", binary.addr))
        .bearer_auth(token("acme", "alice"))
        .body(bytes)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.expect("json");
    record["media_id"].as_str().expect("an id").to_owned()
}

async fn delete(http: &reqwest::Client, binary: &Binary, media_id: &str) {
    let response = http
        .delete(format!("http://{}/v1/media/{media_id}", binary.addr))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn info(http: &reqwest::Client, binary: &Binary, media_id: &str) -> Value {
    http.get(format!("http://{}/v1/media/{media_id}/info", binary.addr))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

/// PATCHes `bytes` at `offset` of the tus upload at `location`.
async fn patch(
    http: &reqwest::Client,
    binary: &Binary,
    location: &str,
    offset: usize,
    bytes: &[u8],
) {
    let response = http
        .patch(format!("http://{}{location}", binary.addr))
        .bearer_auth(token("acme", "alice"))
        .header("tus-resumable", "1.0.0")
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .body(bytes.to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn kill(binary: &mut Binary) {
    binary.child.kill().await.expect("SIGKILL delivered");
}

/// Every object file under `root` and the key its header names (`SBOBJ`, the format version,
/// the key's length as a big-endian u16, the key); temporary files are skipped.
fn object_keys(root: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    let mut directories = vec![root.to_path_buf()];
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).expect("a readable directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                directories.push(path);
                continue;
            }
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(&path).expect("a readable object");
            assert_eq!(&bytes[..5], b"SBOBJ", "{}", path.display());
            let length = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
            keys.push(String::from_utf8(bytes[8..8 + length].to_vec()).expect("a text key"));
        }
    }
    keys
}

/// Whether a write in progress (or killed) left a temporary file under `root`.
fn temporary_files(root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            temporary_files(&path)
        } else {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(".tmp-"))
        }
    })
}

/// The media id a media object key belongs to.
fn media_of(key: &str) -> MediaId {
    let name = key.strip_prefix("media/").expect("a media object");
    let id = name.split('.').next().expect("an id");
    MediaId::parse(id).expect("a media id")
}

/// The keys a record says exist.
fn named_keys(record: &MediaRecord) -> Vec<String> {
    let mut keys = Vec::new();
    match &record.state {
        MediaState::Complete { .. } => keys.push(media_object_key(record.media_id).to_string()),
        MediaState::Uploading { parts, .. } => keys.extend(
            parts
                .iter()
                .map(|offset| media_part_object_key(record.media_id, *offset).to_string()),
        ),
        MediaState::Deleted { .. } => {}
    }
    keys.extend(
        record
            .thumbnails
            .iter()
            .map(|thumbnail| thumbnail.object_key.to_string()),
    );
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_object_outlives_its_record_and_no_record_names_a_missing_object() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let http = reqwest::Client::new();
    let mut binary = spawn_binary(data_dir.path(), &settings()).await;
    let conversation_id = conversation_of_alice_with_bob(&http, &binary.addr).await;

    let photo = upload(&http, &binary, "photo.jpg", jpeg(900, 600)).await;
    let other_photo = upload(&http, &binary, "other.jpg", jpeg(700, 500)).await;
    let notes = upload(&http, &binary, "notes.txt", text(5_000)).await;
    let draft = upload(&http, &binary, "draft.txt", text(3_000)).await;
    let sent = http
        .post(format!(
            "http://{}/v1/conversations/{conversation_id}/messages",
            binary.addr
        ))
        .bearer_auth(token("acme", "alice"))
        .json(&json!({"client_id": "m1", "text": "see", "attachments": [photo, notes]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(sent.status(), StatusCode::CREATED);
    for media_id in [&photo, &other_photo] {
        eventually("thumbnails", || async {
            info(&http, &binary, media_id)
                .await
                .get("thumbnails")
                .map(drop)
        })
        .await;
    }
    delete(&http, &binary, &other_photo).await;

    // A tus upload, half sent.
    let resumable = text(20_000);
    let created = http
        .post(format!("http://{}/v1/media/uploads", binary.addr))
        .bearer_auth(token("acme", "alice"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", resumable.len().to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    patch(&http, &binary, &location, 0, &resumable[..10_000]).await;

    // A single upload whose body is still arriving when the process is killed: a raw request
    // that declares 1 MiB and sends 64 KiB. It is under way once its temporary file exists.
    let mut stalled = tokio::net::TcpStream::connect(&binary.addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /v1/media?file_name=big.txt HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-length: {}\r\n\r\n",
        binary.addr,
        token("acme", "alice"),
        1024 * 1024
    );
    stalled.write_all(head.as_bytes()).await.expect("sent");
    stalled.write_all(&text(64 * 1024)).await.expect("sent");
    let objects = data_dir.path().join("objects");
    eventually("the stalled upload to be written", || async {
        temporary_files(&objects).then_some(())
    })
    .await;
    kill(&mut binary).await;
    drop(stalled);

    let mut binary = spawn_binary(data_dir.path(), &settings()).await;
    delete(&http, &binary, &draft).await;
    patch(&http, &binary, &location, 10_000, &resumable[10_000..]).await;
    let resumable_id = location.rsplit('/').next().expect("an id").to_owned();
    assert_eq!(
        info(&http, &binary, &resumable_id).await["state"],
        "complete"
    );
    kill(&mut binary).await;

    let store: Arc<dyn MediaStore> = Arc::new(
        switchboard_storage::EmbeddedMediaStore::open(&data_dir.path().join("media"))
            .expect("the media store opens"),
    );
    let tenant_id = TenantId::parse("acme").expect("valid");
    let keys = object_keys(&data_dir.path().join("objects"));
    assert!(!keys.is_empty());
    let mut records = BTreeMap::new();
    for key in &keys {
        let media_id = media_of(key);
        let record = store
            .media(&tenant_id, media_id)
            .await
            .expect("readable")
            .unwrap_or_else(|| panic!("object {key} has no record"));
        let derived = [
            thumbnail_object_key(media_id, 256).to_string(),
            thumbnail_object_key(media_id, 1024).to_string(),
        ];
        assert!(
            record.state.is_deleted() || named_keys(&record).contains(key) || derived.contains(key),
            "object {key} is not one its record {record:?} names"
        );
        records.insert(media_id, record);
    }
    for media_id in [&photo, &notes, &resumable_id] {
        let media_id = MediaId::parse(media_id).expect("an id");
        let record = store
            .media(&tenant_id, media_id)
            .await
            .expect("readable")
            .expect("kept");
        assert!(record.is_complete(), "{record:?}");
        records.insert(media_id, record);
    }
    for (media_id, record) in &records {
        for key in named_keys(record) {
            assert!(
                keys.contains(&key),
                "{media_id}'s record names {key}, which is missing"
            );
        }
    }
    for media_id in [&other_photo, &draft] {
        let media_id = MediaId::parse(media_id).expect("an id");
        assert!(
            keys.iter().all(|key| media_of(key) != media_id),
            "deleted {media_id} left objects"
        );
    }
    // The photo's thumbnails are among the objects, named by its record.
    let photo_record = &records[&MediaId::parse(&photo).expect("an id")];
    assert_eq!(
        photo_record.thumbnails.len(),
        1,
        "900 px: only the 256 px thumbnail"
    );
}
