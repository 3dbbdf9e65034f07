//! The memory recording uploads take, measured on the real binary: the server runs with its
//! default embedded storage (media in files under its data directory) and
//! `limits.max_recording_bytes` = 128 MiB, takes [`N_UPLOADS`] uploads of exactly that size at
//! once (every transfer permit of the default `limits.max_concurrent_recording_transfers`), and
//! its peak resident set (`VmHWM` in `/proc/<pid>/status`, reset just before the uploads) may
//! grow by at most [`RSS_GROWTH_BOUND_KIB`] (64 MiB, half of one body) over its idle resident
//! set. The bound does not grow with the limit: an upload streams to its file through a few
//! hyper-sized chunks. Before the fix an upload was buffered whole, and these four raised the
//! peak by 1.2 GiB. The uploads are also checked byte for byte: the size and SHA-256 the server
//! reports, and those of the file it wrote, are those of the bytes sent. Then the four are
//! downloaded at once, within the same bound (a download streams from the file; before, it was
//! read whole), and each is checked against what was sent. docs/PERFORMANCE.md has the figures
//! measured and the command.

use std::net::SocketAddr;

use reqwest::Method;
use ring::digest::{Context, SHA256};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::calls::{act, consent, expect_frame, invite, request_recording};
use crate::crash::{conversation_of_alice_with_bob, spawn_binary};
use crate::recordings::{ADMIN, RECORDER, read_answer, start_raw_upload};
use crate::support::{Client, DEADLINE, token, token_with_roles};

const MIB: u64 = 1024 * 1024;

/// The upload limit the server runs with; every upload here is exactly this long.
const MAX_RECORDING_BYTES: u64 = 128 * MIB;

/// Uploads at once: every permit of the default `limits.max_concurrent_recording_transfers`.
const N_UPLOADS: usize = 4;

/// How much the server's peak RSS may grow over its idle RSS while the uploads run, in KiB:
/// 64 MiB, half of one body. Measured (docs/PERFORMANCE.md, debug build, 2 cores): 30 to 38 MiB
/// with 4 uploads of 64, 128 or 256 MiB alike, 16 MiB with one; what grows is the number of
/// uploads, never their size. The margin is for the allocator's timing (mimalloc returns freed
/// pages after a delay).
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

/// The size of each write of an upload's body.
const BLOCK_BYTES: usize = 256 * 1024;

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the server's /proc status is readable");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Starts a recorded call between Alice and Bob in a conversation of their own on the binary
/// at `addr`; returns the recording's id once its record exists.
async fn recording_on(addr: &str) -> String {
    let http = reqwest::Client::new();
    let id = conversation_of_alice_with_bob(&http, addr).await;
    let mut clients = Vec::new();
    for user in ["alice", "bob"] {
        let url = format!("ws://{addr}/v1/ws?token={}", token("acme", user));
        let mut client = Client::connect_raw(&url).await;
        assert_eq!(client.next_json().await["type"], "welcome");
        assert_eq!(client.join(&id, None).await["type"], "joined");
        clients.push(client);
    }
    let (mut alice, mut bob) = (clients.remove(0), clients.remove(0));
    let call_id = invite(&mut alice, &id, "audio").await["call_id"].clone();
    act(&mut bob, "call.accept", &id, &call_id).await;
    expect_frame(&mut alice, "call.accepted").await;
    let recording = request_recording(&mut alice, &id, &call_id).await["recording_id"].clone();
    consent(&mut bob, &id, &call_id, &recording, true).await;
    expect_frame(&mut alice, "recording.started").await;
    let recording_id = recording.as_str().expect("an id").to_owned();
    let admin = token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let status = http
            .request(
                Method::GET,
                format!("http://{addr}/v1/recordings/{recording_id}"),
            )
            .bearer_auth(&admin)
            .send()
            .await
            .expect("sent")
            .status();
        if status == 200 {
            return recording_id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the record exists ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `index`th block of upload `seed`: its first 16 bytes number it, so no two blocks of
/// the uploads are equal and a reordered or repeated block changes the SHA-256.
fn block(buffer: &mut [u8], seed: u64, index: u64) {
    buffer[..8].copy_from_slice(&seed.to_le_bytes());
    buffer[8..16].copy_from_slice(&index.to_le_bytes());
}

/// Uploads `MAX_RECORDING_BYTES` to `recording_id`: the first half, then (once `go` says so)
/// the rest. Returns the server's answer and the SHA-256 of what was sent.
async fn upload_max(
    addr: SocketAddr,
    recording_id: String,
    seed: u64,
    half_sent: tokio::sync::mpsc::Sender<()>,
    mut go: tokio::sync::watch::Receiver<bool>,
) -> (u16, Value, String) {
    let mut stream = start_raw_upload(
        addr,
        RECORDER,
        &recording_id,
        Some("video/webm"),
        MAX_RECORDING_BYTES,
        b"",
    )
    .await;
    let mut buffer: Vec<u8> = (0..BLOCK_BYTES)
        .map(|offset| (offset % 251) as u8)
        .collect();
    let mut digest = Context::new(&SHA256);
    let n_blocks = MAX_RECORDING_BYTES / BLOCK_BYTES as u64;
    for index in 0..n_blocks {
        if index == n_blocks / 2 {
            half_sent.send(()).await.expect("the test waits");
            go.wait_for(|go| *go).await.expect("the test says go");
        }
        block(&mut buffer, seed, index);
        digest.update(&buffer);
        stream.write_all(&buffer).await.expect("the body is taken");
    }
    let (status, answer) = read_answer(&mut stream).await;
    (status, answer, hex::encode(digest.finish()))
}

/// The SHA-256 of the last `n_bytes` of `path` (an object file is its header, then the media).
fn sha256_of_tail(path: &std::path::Path, n_bytes: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).expect("the object file opens");
    let length = file.metadata().expect("metadata").len();
    file.seek(SeekFrom::Start(length - n_bytes))
        .expect("the object file seeks");
    let mut digest = Context::new(&SHA256);
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let n_read = file.read(&mut buffer).expect("the object file reads");
        if n_read == 0 {
            return hex::encode(digest.finish());
        }
        digest.update(&buffer[..n_read]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_maximum_uploads_keep_the_servers_memory_within_a_fixed_bound() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let binary = spawn_binary(
        data_dir.path(),
        &[
            (
                "SWITCHBOARD__LIMITS__MAX_RECORDING_BYTES".to_owned(),
                MAX_RECORDING_BYTES.to_string(),
            ),
            (
                "SWITCHBOARD__LIMITS__MAX_CONCURRENT_RECORDING_TRANSFERS".to_owned(),
                N_UPLOADS.to_string(),
            ),
        ],
    )
    .await;
    let pid = binary.child.id().expect("the server runs");
    let addr: SocketAddr = binary.addr.parse().expect("an address");
    let mut recordings = Vec::new();
    for _ in 0..N_UPLOADS {
        recordings.push(recording_on(&binary.addr).await);
    }

    // The peak is measured from here: 5 resets VmHWM to the current RSS (Linux 4.0 and later).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("the server's peak RSS resets");
    let idle_kib = status_kib(pid, "VmRSS");

    let (half_sent, mut halves) = tokio::sync::mpsc::channel(N_UPLOADS);
    let (go, go_rx) = tokio::sync::watch::channel(false);
    let uploads: Vec<_> = recordings
        .iter()
        .enumerate()
        .map(|(seed, recording_id)| {
            tokio::spawn(upload_max(
                addr,
                recording_id.clone(),
                seed as u64,
                half_sent.clone(),
                go_rx.clone(),
            ))
        })
        .collect();
    // Every upload is halfway through its body at once, each holding a transfer permit: one
    // more is refused.
    for _ in 0..N_UPLOADS {
        halves.recv().await.expect("an upload is halfway");
    }
    let mut probe = start_raw_upload(
        addr,
        RECORDER,
        &recordings[0],
        Some("video/webm"),
        MAX_RECORDING_BYTES,
        b"",
    )
    .await;
    let (status, refused) = read_answer(&mut probe).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("unavailable")),
        "every permit is held: {refused}"
    );
    go.send(true).expect("the uploads listen");

    let mut sent = Vec::new();
    for upload in uploads {
        let (status, answer, sha256) = upload.await.expect("the upload task ends");
        assert_eq!(status, 201, "{answer}");
        sent.push((answer, sha256));
    }
    let peak_kib = status_kib(pid, "VmHWM");
    let growth_kib = peak_kib.saturating_sub(idle_kib);
    eprintln!(
        "{N_UPLOADS} concurrent uploads of {} MiB: idle RSS {idle_kib} KiB, peak {peak_kib} KiB, \
         growth {growth_kib} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)",
        MAX_RECORDING_BYTES / MIB
    );

    // Stored intact: the server's size and SHA-256, and the files it wrote, match what was sent.
    let objects_dir = data_dir.path().join(switchboard::OBJECTS_DIR);
    for (answer, sha256) in &sent {
        let object = &answer["object"];
        assert_eq!(object["bytes"], MAX_RECORDING_BYTES);
        assert_eq!(object["sha256"].as_str(), Some(sha256.as_str()));
        let file = objects_dir.join(
            object["location"]
                .as_str()
                .and_then(|location| location.strip_prefix("file:"))
                .expect("a file location"),
        );
        assert_eq!(&sha256_of_tail(&file, MAX_RECORDING_BYTES), sha256);
        let file_bytes = std::fs::metadata(&file).expect("the object file").len();
        assert!(
            (MAX_RECORDING_BYTES..MAX_RECORDING_BYTES + 1024).contains(&file_bytes),
            "the file is the media and a short header: {file_bytes} bytes"
        );
    }
    let hashes: std::collections::HashSet<&String> =
        sent.iter().map(|(_, sha256)| sha256).collect();
    assert_eq!(
        hashes.len(),
        N_UPLOADS,
        "the uploads differ from one another"
    );

    assert!(
        growth_kib < RSS_GROWTH_BOUND_KIB,
        "peak RSS grew by {growth_kib} KiB over {idle_kib} KiB with {N_UPLOADS} uploads of {} \
         MiB in flight; the bound is {RSS_GROWTH_BOUND_KIB} KiB",
        MAX_RECORDING_BYTES / MIB
    );

    // The same media downloaded at once, every permit held: streamed from the files, within
    // the same bound, and byte for byte what was uploaded.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("the server's peak RSS resets");
    let idle_kib = status_kib(pid, "VmRSS");
    let downloads: Vec<_> = recordings
        .iter()
        .map(|recording_id| tokio::spawn(download_sha256(addr, recording_id.clone())))
        .collect();
    let mut downloaded = Vec::new();
    for download in downloads {
        downloaded.push(download.await.expect("the download task ends"));
    }
    let peak_kib = status_kib(pid, "VmHWM");
    let growth_kib = peak_kib.saturating_sub(idle_kib);
    eprintln!(
        "{N_UPLOADS} concurrent downloads of {} MiB: idle RSS {idle_kib} KiB, peak {peak_kib} \
         KiB, growth {growth_kib} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB)",
        MAX_RECORDING_BYTES / MIB
    );
    for ((_, sha256), (n_bytes, downloaded_sha256)) in sent.iter().zip(&downloaded) {
        assert_eq!(*n_bytes, MAX_RECORDING_BYTES);
        assert_eq!(downloaded_sha256, sha256);
    }
    assert!(
        growth_kib < RSS_GROWTH_BOUND_KIB,
        "peak RSS grew by {growth_kib} KiB over {idle_kib} KiB with {N_UPLOADS} downloads of {} \
         MiB in flight; the bound is {RSS_GROWTH_BOUND_KIB} KiB",
        MAX_RECORDING_BYTES / MIB
    );
}

/// Downloads a recording's media as an administrator, reading it as it arrives; its length and
/// SHA-256.
async fn download_sha256(addr: SocketAddr, recording_id: String) -> (u64, String) {
    let mut response = reqwest::Client::new()
        .get(format!("http://{addr}/v1/recordings/{recording_id}/media"))
        .bearer_auth(token_with_roles(ADMIN.0, ADMIN.1, ADMIN.2))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let mut digest = Context::new(&SHA256);
    let mut n_bytes = 0u64;
    while let Some(chunk) = response.chunk().await.expect("the body arrives") {
        n_bytes += chunk.len() as u64;
        digest.update(&chunk);
    }
    (n_bytes, hex::encode(digest.finish()))
}
