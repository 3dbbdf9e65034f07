//! The storage invariant of media, checked after a sequence of uploads, attaches, deletes and
//! two `kill -9`s of the real binary: no object is left without a record of its media, and no
//! record points at a missing object. Once with embedded records and filesystem objects, once
//! (with the `mongodb` and `s3` features) with MongoDB records and S3 objects.
//!
//! The sequence: photos and text files uploaded whole (the photos thumbnailed), two of them
//! attached to a message, one deleted; a tus upload half sent; a single upload killed midway by
//! `kill -9`. After the restart: another file deleted, the tus upload finished, and the process
//! killed again. Then the test reads the objects (each filesystem object names its key in its
//! header, and temporary files a killed write left are skipped: they are never read and are not
//! objects; the S3 server keeps each object as a file named by its key) and the media records,
//! and checks both directions.

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

/// Every file under `root`, at any depth.
fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut directories = vec![root.to_path_buf()];
    while let Some(directory) = directories.pop() {
        for entry in std::fs::read_dir(&directory).expect("a readable directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                directories.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Every object file under `root` and the key its header names (`SBOBJ`, the format version,
/// the key's length as a big-endian u16, the key); temporary files are skipped.
fn object_keys(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|path| {
            !path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'))
        })
        .map(|path| {
            let bytes = std::fs::read(&path).expect("a readable object");
            assert_eq!(&bytes[..5], b"SBOBJ", "{}", path.display());
            let length = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
            String::from_utf8(bytes[8..8 + length].to_vec()).expect("a text key")
        })
        .collect()
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
        // Its parts may be gone already (deleted just before a crash): named by
        // `leftover_keys`, not here.
        MediaState::Assembled { .. } => keys.push(media_object_key(record.media_id).to_string()),
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

/// The keys a record says may still exist: an assembled upload's parts, until the record says
/// they are deleted.
fn leftover_keys(record: &MediaRecord) -> Vec<String> {
    match &record.state {
        MediaState::Assembled { parts, .. } => parts
            .iter()
            .map(|offset| media_part_object_key(record.media_id, *offset).to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// The media a scenario kept (the photo first) and deleted.
struct Scenario {
    kept: Vec<String>,
    deleted: Vec<String>,
}

/// Runs the sequence on the binary with `settings` in `data_dir`; with
/// `temporary_files_under`, waits until the stalled upload's temporary file exists there before
/// the first kill (elsewhere the kill lands before or after the upload began: the invariant
/// holds either way).
async fn run_scenario(
    data_dir: &Path,
    settings: &[(String, String)],
    temporary_files_under: Option<&Path>,
) -> Scenario {
    let http = reqwest::Client::new();
    let mut binary = spawn_binary(data_dir, settings).await;
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
    if let Some(objects) = temporary_files_under {
        eventually("the stalled upload to be written", || async {
            temporary_files(objects).then_some(())
        })
        .await;
    }
    kill(&mut binary).await;
    drop(stalled);

    let mut binary = spawn_binary(data_dir, settings).await;
    delete(&http, &binary, &draft).await;
    patch(&http, &binary, &location, 10_000, &resumable[10_000..]).await;
    let resumable_id = location.rsplit('/').next().expect("an id").to_owned();
    assert_eq!(
        info(&http, &binary, &resumable_id).await["state"],
        "complete"
    );
    kill(&mut binary).await;
    Scenario {
        kept: vec![photo, notes, resumable_id],
        deleted: vec![other_photo, draft],
    }
}

/// Checks the invariant between the objects' `keys` (tenant acme's) and the records in `store`.
async fn check(keys: Vec<String>, store: Arc<dyn MediaStore>, scenario: &Scenario) {
    let tenant_id = TenantId::parse("acme").expect("valid");
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
            record.state.is_deleted()
                || named_keys(&record).contains(key)
                || leftover_keys(&record).contains(key)
                || derived.contains(key),
            "object {key} is not one its record {record:?} names"
        );
        records.insert(media_id, record);
    }
    for media_id in &scenario.kept {
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
    for media_id in &scenario.deleted {
        let media_id = MediaId::parse(media_id).expect("an id");
        assert!(
            keys.iter().all(|key| media_of(key) != media_id),
            "deleted {media_id} left objects"
        );
    }
    // The photo's thumbnails are among the objects, named by its record.
    let photo_record = &records[&MediaId::parse(&scenario.kept[0]).expect("an id")];
    assert_eq!(
        photo_record.thumbnails.len(),
        1,
        "900 px: only the 256 px thumbnail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_object_outlives_its_record_and_no_record_names_a_missing_object() {
    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let objects = data_dir.path().join("objects");
    let scenario = run_scenario(data_dir.path(), &settings(), Some(&objects)).await;
    let store: Arc<dyn MediaStore> = Arc::new(
        switchboard_storage::EmbeddedMediaStore::open(&data_dir.path().join("media"))
            .expect("the media store opens"),
    );
    check(object_keys(&objects), store, &scenario).await;
}

/// The same on MongoDB and S3 (built with `mongodb` and `s3`, against the servers
/// `scripts/test-services` starts): the keys are read from the S3 server's data directory
/// (`SWITCHBOARD_TEST_S3_DATA_DIR`, where s3s-fs keeps each object as a file under its bucket).
#[cfg(all(feature = "mongodb", feature = "s3"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_and_s3_no_object_outlives_its_record_and_no_record_names_a_missing_object() {
    use switchboard_testing::{mongodb_uri, s3_variable};

    let data_dir = tempfile::tempdir().expect("a temporary directory");
    let database = format!("media_invariant_{}", std::process::id());
    let bucket = database.replace('_', "-");
    let mut settings = settings();
    settings.extend(
        [
            ("STORAGE__BACKEND", "mongodb".to_owned()),
            ("STORAGE__MONGODB_URI", mongodb_uri()),
            ("STORAGE__MONGODB_DATABASE", database.clone()),
            ("OBJECTS__BACKEND", "s3".to_owned()),
            (
                "OBJECTS__S3_ENDPOINT",
                s3_variable("SWITCHBOARD_TEST_S3_ENDPOINT"),
            ),
            ("OBJECTS__S3_BUCKET", bucket.clone()),
            (
                "OBJECTS__S3_ACCESS_KEY",
                s3_variable("SWITCHBOARD_TEST_S3_ACCESS_KEY"),
            ),
            (
                "OBJECTS__S3_SECRET_KEY",
                s3_variable("SWITCHBOARD_TEST_S3_SECRET_KEY"),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (format!("SWITCHBOARD__{key}"), value)),
    );
    let scenario = run_scenario(data_dir.path(), &settings, None).await;
    let tenant_root = Path::new(&s3_variable("SWITCHBOARD_TEST_S3_DATA_DIR"))
        .join(&bucket)
        .join(hex_of("acme"));
    let keys = file_keys(&tenant_root);
    let messages = switchboard_storage::MongoMessageStore::connect(&mongodb_uri(), &database)
        .await
        .expect("MongoDB answers");
    let store: Arc<dyn MediaStore> = Arc::new(switchboard_storage::MongoMediaStore::new(&messages));
    check(keys, store, &scenario).await;
    messages
        .database()
        .drop()
        .await
        .expect("the database is dropped");
}

/// Lowercase hex of a tenant id, as the S3 adapter names its directory.
#[cfg(all(feature = "mongodb", feature = "s3"))]
fn hex_of(text: &str) -> String {
    text.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// The paths of the files under `root`, relative to it, as object keys.
#[cfg(all(feature = "mongodb", feature = "s3"))]
fn file_keys(root: &Path) -> Vec<String> {
    files_under(root)
        .iter()
        .map(|path| {
            let relative = path.strip_prefix(root).expect("under the root");
            relative.to_string_lossy().replace('\\', "/")
        })
        .collect()
}
