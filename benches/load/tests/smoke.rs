//! Smoke tests of the load harness against a real in-process Switchboard server on 127.0.0.1:
//! a short closed-loop run must connect every client and account for every delivery, an idle
//! run must hold its connections, and a non-loopback target must be refused. These check the
//! harness's bookkeeping (counts), never its timings.

use std::process::Command;

use serde_json::Value;

const SECRET: &str = "load-harness-smoke-test-secret-32-bytes!";

async fn start_server() -> (switchboard::Server, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = switchboard::config::Config::default();
    config.server.listen = "127.0.0.1:0".to_owned();
    config.server.data_dir = data_dir.path().to_path_buf();
    config.auth.hs256_secret = Some(SECRET.to_owned());
    config.limits.messages_per_minute = 0;
    config.turn.relay =
        switchboard::config::TurnRelay::Embedded(switchboard::config::EmbeddedRelayConfig {
            listen: "127.0.0.1:0".to_owned(),
            ..switchboard::config::EmbeddedRelayConfig::default()
        });
    let server = switchboard::start(config).await.expect("server starts");
    (server, data_dir)
}

/// Runs the harness binary (blocking, on a separate thread) against `server` with
/// `connections` in rooms of `room_size` and the arguments that follow, and returns its JSON
/// result line. Every run is bounded by `--max-time 60s`.
async fn run_harness(
    server: &switchboard::Server,
    connections: u32,
    room_size: u32,
    more_arguments: &[&str],
) -> Value {
    let mut arguments = vec![
        "--addr".to_owned(),
        server.local_addr().to_string(),
        "--connections".to_owned(),
        connections.to_string(),
        "--room-size".to_owned(),
        room_size.to_string(),
        "--max-time".to_owned(),
        "60s".to_owned(),
    ];
    arguments.extend(more_arguments.iter().map(|argument| (*argument).to_owned()));
    let results = tempfile::NamedTempFile::new().expect("temp file");
    let results_path = results.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_switchboard-load"))
            .args(&arguments)
            .arg("--secret")
            .arg(SECRET)
            .arg("--json-out")
            .arg(&results_path)
            .output()
            .expect("the harness runs")
    })
    .await
    .expect("harness thread");
    assert!(
        output.status.success(),
        "harness failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(results.path()).expect("results written");
    serde_json::from_str(text.lines().last().expect("one result line")).expect("JSON result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_closed_loop_run_accounts_for_every_delivery() {
    let (server, _data_dir) = start_server().await;
    let result = run_harness(
        &server,
        20,
        5,
        &[
            "--mode",
            "closed",
            "--window",
            "2",
            "--warmup",
            "200ms",
            "--duration",
            "1s",
            "--drain",
            "5s",
            "--label",
            "smoke",
        ],
    )
    .await;
    assert_eq!(result["connected"], 20);
    assert_eq!(result["failed_clients"], 0);
    assert_eq!(result["label"], "smoke");
    let sent = result["sent"].as_u64().expect("sent");
    assert!(sent > 0, "nothing was sent");
    assert_eq!(result["expected_deliveries"].as_u64(), Some(sent * 4));
    assert_eq!(result["received_deliveries"].as_u64(), Some(sent * 4));
    assert_eq!(result["lost"], 0);
    assert_eq!(result["duplicates"], 0);
    assert_eq!(result["out_of_order"], 0);
    assert_eq!(result["delivery_ratio"], 1.0);
    assert!(result["ack_delivered_ms"]["n"].as_u64().expect("acks") > 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_run_holds_its_connections() {
    let (server, _data_dir) = start_server().await;
    let result = run_harness(&server, 30, 10, &["--mode", "idle", "--duration", "200ms"]).await;
    assert_eq!(result["connected"], 30);
    assert_eq!(result["sent"], 0);
    server.shutdown().await;
}

#[test]
fn targets_outside_loopback_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard-load"))
        .args([
            "--addr",
            "10.0.0.1:8080",
            "--target",
            "bun",
            "--max-time",
            "5s",
        ])
        .output()
        .expect("the harness runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("only loopback"));
}
