//! tus 1.0 over HTTP against the real server: discovery, creation (with and without a first
//! body), offsets, checksums, a connection cut midway (the bytes that arrived are kept), two
//! writers at once (one wins, the other gets 409, the bytes never mix), termination, and the
//! codes of every bad request. A real tus client (tuspy) is in `tests/interop/tus.rs`.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt as _;

use crate::support::{TestServer, eventually, header_value, token};

const TUS: (&str, &str) = ("tus-resumable", "1.0.0");
const OCTETS: (&str, &str) = ("content-type", "application/offset+octet-stream");

/// 300 bytes of text.
fn text_file() -> Vec<u8> {
    (0..300).map(|n| b'a' + (n % 26) as u8).collect()
}

fn tus_request(
    server: &TestServer,
    method: Method,
    path: &str,
    user: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(token("acme", user))
        .header(TUS.0, TUS.1)
}

fn metadata(file_name: &str) -> String {
    format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(file_name)
    )
}

/// Creates an upload of `length` bytes named `file_name`; returns its path.
async fn create(server: &TestServer, user: &str, length: usize, file_name: &str) -> String {
    let response = tus_request(server, Method::POST, "/v1/media/uploads", user)
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata(file_name))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header_value(&response, "tus-resumable"), "1.0.0");
    assert_eq!(header_value(&response, "upload-offset"), "0");
    assert!(!header_value(&response, "upload-expires").is_empty());
    header_value(&response, "location")
}

async fn patch(server: &TestServer, path: &str, offset: usize, bytes: &[u8]) -> reqwest::Response {
    tus_request(server, Method::PATCH, path, "alice")
        .header(OCTETS.0, OCTETS.1)
        .header("upload-offset", offset.to_string())
        .body(bytes.to_vec())
        .send()
        .await
        .expect("sent")
}

async fn offset_of(server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = tus_request(server, Method::HEAD, path, "alice")
        .send()
        .await
        .expect("sent");
    (response.status(), header_value(&response, "upload-offset"))
}

async fn download(server: &TestServer, path: &str) -> Vec<u8> {
    let media_id = path.rsplit('/').next().expect("an id");
    reqwest::Client::new()
        .get(server.url(&format!("/v1/media/{media_id}")))
        .bearer_auth(token("acme", "alice"))
        .send()
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("the body")
        .to_vec()
}

fn sha256_header(bytes: &[u8]) -> String {
    format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_the_tus_version_are_checked() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .request(Method::OPTIONS, server.url("/v1/media/uploads"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header_value(&response, "tus-version"), "1.0.0");
    assert_eq!(
        header_value(&response, "tus-extension"),
        "creation,creation-with-upload,termination,expiration,checksum"
    );
    assert_eq!(header_value(&response, "tus-checksum-algorithm"), "sha256");
    assert!(
        header_value(&response, "tus-max-size")
            .parse::<u64>()
            .is_ok()
    );

    let without_version = reqwest::Client::new()
        .post(server.url("/v1/media/uploads"))
        .bearer_auth(token("acme", "alice"))
        .header("upload-length", "3")
        .send()
        .await
        .expect("sent");
    assert_eq!(without_version.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(header_value(&without_version, "tus-version"), "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_pieces_with_checksums_completes_and_downloads_whole() {
    let server = TestServer::start().await;
    let file = text_file();
    let path = create(&server, "alice", file.len(), "notes.txt").await;
    assert_eq!(
        offset_of(&server, &path).await,
        (StatusCode::OK, "0".to_owned())
    );

    let wrong_offset = patch(&server, &path, 5, &file[..100]).await;
    assert_eq!(wrong_offset.status(), StatusCode::CONFLICT);

    let first = tus_request(&server, Method::PATCH, &path, "alice")
        .header(OCTETS.0, OCTETS.1)
        .header("upload-offset", "0")
        .header("upload-checksum", sha256_header(&file[..100]))
        .body(file[..100].to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(header_value(&first, "upload-offset"), "100");

    let corrupted = tus_request(&server, Method::PATCH, &path, "alice")
        .header(OCTETS.0, OCTETS.1)
        .header("upload-offset", "100")
        .header("upload-checksum", sha256_header(b"something else"))
        .body(file[100..200].to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(corrupted.status().as_u16(), 460);
    let body: Value = corrupted.json().await.expect("an error body");
    assert_eq!(body["code"], "checksum_mismatch");
    assert_eq!(
        offset_of(&server, &path).await.1,
        "100",
        "nothing of it was kept"
    );

    let not_octets = tus_request(&server, Method::PATCH, &path, "alice")
        .header("content-type", "application/json")
        .header("upload-offset", "100")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(not_octets.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let rest = patch(&server, &path, 100, &file[100..]).await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    assert_eq!(header_value(&rest, "upload-offset"), file.len().to_string());
    let past_the_end = patch(&server, &path, file.len(), b"x").await;
    assert_eq!(
        past_the_end.status(),
        StatusCode::CONFLICT,
        "a complete upload takes no more"
    );

    let media_id = path.rsplit('/').next().expect("an id");
    let (status, _, record) = server
        .get_as("alice", &format!("/v1/media/uploads/{media_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["state"], "complete");
    assert_eq!(record["received_bytes"], file.len());
    assert_eq!(download(&server, &path).await, file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_with_upload_and_termination() {
    let server = TestServer::start().await;
    let file = text_file();
    let response = tus_request(&server, Method::POST, "/v1/media/uploads", "alice")
        .header("upload-length", file.len().to_string())
        .header("upload-metadata", metadata("notes.txt"))
        .header(OCTETS.0, OCTETS.1)
        .body(file[..120].to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header_value(&response, "upload-offset"), "120");
    let path = header_value(&response, "location");

    let other_user = tus_request(&server, Method::HEAD, &path, "bob")
        .send()
        .await
        .expect("sent");
    assert_eq!(other_user.status(), StatusCode::NOT_FOUND);

    let terminated = tus_request(&server, Method::DELETE, &path, "alice")
        .send()
        .await
        .expect("sent");
    assert_eq!(terminated.status(), StatusCode::NO_CONTENT);
    assert_eq!(offset_of(&server, &path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_keeps_what_arrived_and_a_second_writer_gets_409() {
    let server = TestServer::start().await;
    let file = text_file();
    let path = create(&server, "alice", file.len(), "notes.txt").await;
    let alice = token("acme", "alice");
    // A PATCH that announces 200 bytes, sends 80, and holds the connection open.
    let mut writer = tokio::net::TcpStream::connect(server.server().local_addr())
        .await
        .expect("connects");
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {alice}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: 0\r\nContent-Length: 200\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.expect("written");
    writer.write_all(&file[..80]).await.expect("written");
    writer.flush().await.expect("flushed");
    // While it holds the upload, a second writer at the same offset is refused. The second
    // writer sends nothing: until the server has taken up the first request (which, on a busy
    // machine, can come after the second's), an empty PATCH succeeds without moving the offset,
    // where one with bytes would take the upload from the first writer and break the test.
    eventually(
        "the second writer is refused while the first writes",
        || {
            let (server, path) = (&server, &path);
            async move {
                let second = patch(server, path, 0, &[]).await;
                let status = second.status();
                let body = second.text().await.expect("a body");
                (status == StatusCode::CONFLICT && body.contains("another request is writing"))
                    .then_some(())
            }
        },
    )
    .await;
    // The connection breaks: the 80 bytes that arrived are kept.
    drop(writer);
    eventually("the offset moves to what arrived", || {
        let (server, path) = (&server, &path);
        async move { (offset_of(server, path).await.1 == "80").then_some(()) }
    })
    .await;
    let rest = patch(&server, &path, 80, &file[80..]).await;
    assert_eq!(rest.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        download(&server, &path).await,
        file,
        "the bytes never mixed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_creations_and_disallowed_content_get_their_codes() {
    let server = TestServer::start_with(|config| config.media.max_file_bytes = 1_000).await;
    for (headers, status) in [
        (vec![], 400),
        (vec![("upload-length", "-1")], 400),
        (vec![("upload-length", "12abc")], 400),
        (vec![("upload-defer-length", "1")], 400),
        (vec![("upload-length", "1001")], 413),
        (
            vec![("upload-length", "3"), ("upload-metadata", "filename !!!")],
            400,
        ),
        (
            vec![
                ("upload-length", "3"),
                ("upload-metadata", "filename Li4vZXZpbA=="),
            ],
            400,
        ),
    ] {
        let mut request = tus_request(&server, Method::POST, "/v1/media/uploads", "alice");
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status().as_u16(), status, "{headers:?}");
    }
    // An executable declared as a photo: refused when its bytes show what it is, and gone.
    let elf: Vec<u8> = b"\x7fELF\x02\x01\x01"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0, 100))
        .collect();
    let path = create(&server, "alice", elf.len(), "holiday.png").await;
    let refused = patch(&server, &path, 0, &elf).await;
    assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(offset_of(&server, &path).await.0, StatusCode::NOT_FOUND);
}

/// Every file under the object store's directory, by name (each is the SHA-256 of its key).
fn object_files(data_dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    fn walk(directory: &std::path::Path, found: &mut std::collections::BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(directory) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut found = std::collections::BTreeSet::new();
    walk(&data_dir.join("objects"), &mut found);
    found
}

/// The file name the filesystem object store gives a key.
fn file_of(key: &str) -> String {
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn id_of(path: &str) -> &str {
    path.rsplit('/').next().expect("an id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_object_outlives_its_record_and_no_record_lacks_its_objects() {
    let server = TestServer::start_with(|config| {
        config.media.upload_expiry_ms = 3_000;
        config.media.collect_interval_ms = 100;
    })
    .await;
    let file = text_file();
    // Complete in two pieces.
    let complete = create(&server, "alice", file.len(), "complete.txt").await;
    assert_eq!(
        patch(&server, &complete, 0, &file[..100]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        patch(&server, &complete, 100, &file[100..]).await.status(),
        StatusCode::NO_CONTENT
    );
    // Unfinished: one part stored.
    let unfinished = create(&server, "alice", file.len(), "unfinished.txt").await;
    assert_eq!(
        patch(&server, &unfinished, 0, &file[..50]).await.status(),
        StatusCode::NO_CONTENT
    );
    // Terminated after a part.
    let terminated = create(&server, "alice", file.len(), "terminated.txt").await;
    assert_eq!(
        patch(&server, &terminated, 0, &file[..50]).await.status(),
        StatusCode::NO_CONTENT
    );
    let response = tus_request(&server, Method::DELETE, &terminated, "alice")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Refused when its last byte shows its type: parts stored first, then all of it dropped.
    let elf: Vec<u8> = b"\x7fELF\x02\x01\x01"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0, 100))
        .collect();
    let refused = create(&server, "alice", elf.len(), "data").await;
    assert_eq!(
        patch(&server, &refused, 0, &elf[..20]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        patch(&server, &refused, 20, &elf[20..]).await.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // Single uploads: one kept, one deleted.
    let single = |name: &'static str| {
        let server = &server;
        async move {
            let (status, _, record) = server
                .call_as(
                    Method::POST,
                    "alice",
                    &format!("/v1/media?file_name={name}"),
                    None,
                )
                .await;
            assert_eq!(status, 201, "{record}");
            record["media_id"].as_str().expect("an id").to_owned()
        }
    };
    let kept = single("empty.txt").await;
    let deleted = single("gone.txt").await;
    let (status, _, _) = server
        .delete_as("alice", &format!("/v1/media/{deleted}"))
        .await;
    assert_eq!(status, 204);

    let expected = |with_unfinished: bool| {
        let mut files = std::collections::BTreeSet::new();
        files.insert(file_of(&format!("media/{}", id_of(&complete))));
        files.insert(file_of(&format!("media/{kept}")));
        if with_unfinished {
            files.insert(file_of(&format!(
                "media/{}.part-{:020}",
                id_of(&unfinished),
                0
            )));
        }
        files
    };
    assert_eq!(object_files(server.data_dir.path()), expected(true));

    // Once the unfinished upload expires, the collector removes it and its part.
    eventually("the collector removes the expired upload", || {
        let (server, unfinished, expected) = (&server, &unfinished, &expected);
        async move {
            let gone = offset_of(server, unfinished).await.0 == StatusCode::NOT_FOUND;
            (gone && object_files(server.data_dir.path()) == expected(false)).then_some(())
        }
    })
    .await;
    assert_eq!(download(&server, &complete).await, file);
}
