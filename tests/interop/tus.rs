//! A real tus client, tuspy (PyPI), uploads a file to Switchboard in pieces with a deliberate
//! interruption: one process uploads two chunks and stops, a second one (knowing only the upload's
//! URL) asks the server where it stands and finishes, with a SHA-256 checksum on every chunk.
//! The file downloaded back is the file uploaded. `scripts/test-services start tus` installs
//! tuspy and names its Python in `SWITCHBOARD_TEST_TUS_PYTHON`.

use std::process::Command;

use serde_json::Value;
use switchboard_testing::server_variable;

use super::{switchboard_config, token_for};

/// Uploads with tuspy in two processes, the first stopping after two chunks.
const TUSPY_SCRIPT: &str = r#"
import hashlib, sys
from tusclient import client
from tusclient.uploader import Uploader

class Sha256Uploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

endpoint, token, path, step = sys.argv[1:5]
tus = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
if step == "begin":
    uploader = Sha256Uploader(path, client=tus, chunk_size=64 * 1024, upload_checksum=True,
                              metadata={"filename": "photo.png"})
    uploader.upload_chunk()
    uploader.upload_chunk()
    print(uploader.url)
else:
    uploader = Sha256Uploader(path, client=tus, chunk_size=64 * 1024, upload_checksum=True,
                              url=step)
    print(uploader.get_offset())
    uploader.upload()
"#;

fn tuspy(python: &str, arguments: &[&str]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(TUSPY_SCRIPT)
        .args(arguments)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "tuspy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_uploads_in_pieces_across_an_interruption_and_the_file_comes_back_whole() {
    let python = server_variable("SWITCHBOARD_TEST_TUS_PYTHON", "tus");
    let directory = tempfile::tempdir().expect("a temporary directory");
    let server = switchboard::start(switchboard_config(directory.path()))
        .await
        .expect("switchboard starts");
    let token = token_for("acme", "alice");
    // A PNG signature, then 300 KiB of varied bytes: five chunks of 64 KiB.
    let mut file =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    file.extend((0..300 * 1024).map(|n: u32| (n.wrapping_mul(2_654_435_761) >> 24) as u8));
    let path = directory.path().join("photo.png");
    std::fs::write(&path, &file).expect("the file is written");
    let endpoint = format!("http://{}/v1/media/uploads", server.local_addr());
    let path_text = path.to_str().expect("a UTF-8 path");

    let upload_url = tokio::task::spawn_blocking({
        let (python, endpoint, token, path_text) = (
            python.clone(),
            endpoint.clone(),
            token.clone(),
            path_text.to_owned(),
        );
        move || tuspy(&python, &[&endpoint, &token, &path_text, "begin"])
    })
    .await
    .expect("tuspy ran");
    assert!(upload_url.starts_with(&endpoint), "{upload_url}");
    let offset = tokio::task::spawn_blocking({
        let (python, endpoint, token, path_text, url) = (
            python.clone(),
            endpoint.clone(),
            token.clone(),
            path_text.to_owned(),
            upload_url.clone(),
        );
        move || tuspy(&python, &[&endpoint, &token, &path_text, &url])
    })
    .await
    .expect("tuspy ran");
    assert_eq!(
        offset,
        (128 * 1024).to_string(),
        "the second process resumed where the first stopped"
    );

    let media_id = upload_url.rsplit('/').next().expect("an id");
    let client = reqwest::Client::new();
    let record: Value = client
        .get(format!(
            "http://{}/v1/media/{media_id}/info",
            server.local_addr()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(record["state"], "complete", "{record}");
    assert_eq!(record["content_type"], "image/png");
    let downloaded = client
        .get(format!(
            "http://{}/v1/media/{media_id}",
            server.local_addr()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("the body");
    assert_eq!(
        downloaded.as_ref(),
        file.as_slice(),
        "the same bytes came back"
    );
}
