//! A real media player reads a video through a signed link: ffmpeg (Debian's) makes a short
//! MP4 whose index (`moov`) is at its end, it is uploaded, and `ffprobe`, given only the signed
//! URL, finds its duration and stream, seeking to the index with range requests.

use std::process::Command;

use super::{switchboard_config, token_for};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_reads_a_video_through_a_signed_link() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let video = directory.path().join("clip.mp4");
    let made = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=10",
        ])
        .args(["-c:v", "mpeg4", "-f", "mp4"])
        .arg(&video)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(made.success());
    let bytes = std::fs::read(&video).expect("the video is written");

    let server = switchboard::start(switchboard_config(directory.path()))
        .await
        .expect("switchboard starts");
    let token = token_for("acme", "alice");
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();
    let record: Value = client
        .post(format!("{base}/v1/media?file_name=clip.mp4"))
        .bearer_auth(&token)
        .body(bytes)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(record["content_type"], "video/mp4", "{record}");
    let media_id = record["media_id"].as_str().expect("an id");
    let link: Value = client
        .post(format!("{base}/v1/media/{media_id}/links"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let url = format!("{base}{}", link["url"].as_str().expect("a url"));

    let probed = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["60", "ffprobe", "-v", "error", "-show_entries"])
            .args(["format=duration:stream=codec_type", "-of", "json"])
            .arg(&url)
            .output()
            .expect("ffprobe runs")
    })
    .await
    .expect("ffprobe finished");
    assert!(
        probed.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&probed.stderr)
    );
    let found: Value = serde_json::from_slice(&probed.stdout).expect("ffprobe's JSON");
    assert_eq!(found["format"]["duration"], "2.000000", "{found}");
    assert_eq!(found["streams"][0]["codec_type"], "video", "{found}");
}
