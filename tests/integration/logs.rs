//! The real binary's log output, as an operator reads it from a file or a pipe.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{DEADLINE, TEST_SECRET};

/// Issue 13, defect 7: the `human` log format wrote ANSI colour escapes into files and pipes.
/// The real binary, with its log on a pipe, writes plain text.
#[tokio::test]
async fn the_human_log_format_writes_no_colour_escapes_into_a_pipe() {
    let data_dir = tempfile::TempDir::new().expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "human",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .env("SWITCHBOARD__AUTH__HS256_SECRET", TEST_SECRET)
        .env("SWITCHBOARD__TURN__RELAY_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("readable log") {
            let listening = line.contains("local_addr");
            seen.push(line);
            if listening {
                return;
            }
        }
        panic!("the binary exited before listening: {seen:?}");
    })
    .await
    .expect("the binary listens within the deadline");
    child.kill().await.expect("the binary is stopped");
    assert!(seen.len() > 1, "{seen:?}");
    for line in &seen {
        assert!(!line.contains('\u{1b}'), "an escape sequence in {line:?}");
    }
}
