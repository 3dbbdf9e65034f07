//! The real binary's log output, as an operator reads it from a file or a pipe.

use tokio::process::Child;

use crate::support::{DEADLINE, LogLines, serve_binary};

/// Starts `switchboard serve` with its log (`log_format`, `RUST_LOG=info`, `NO_COLOR` unset) on
/// a pipe.
fn serve_with_log_on_a_pipe(data_dir: &std::path::Path, log_format: &str) -> (Child, LogLines) {
    serve_binary(data_dir, log_format, |command| {
        command.env_remove("NO_COLOR")
    })
}

/// Issue 13, defect 7: the `human` log format wrote ANSI colour escapes into files and pipes.
/// The real binary, with its log on a pipe, writes plain text.
#[tokio::test]
async fn the_human_log_format_writes_no_colour_escapes_into_a_pipe() {
    let data_dir = tempfile::TempDir::new().expect("a temporary directory");
    let (mut child, mut lines) = serve_with_log_on_a_pipe(data_dir.path(), "human");
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

/// Issue 13, defect 5: a refused token leaves a WARN line naming the reason and the remote
/// address, and never the token.
#[tokio::test]
async fn a_refused_token_is_logged_as_a_security_event_without_the_token() {
    let data_dir = tempfile::TempDir::new().expect("a temporary directory");
    let (mut child, mut lines) = serve_with_log_on_a_pipe(data_dir.path(), "json");
    let next_entry = async |lines: &mut LogLines| {
        let line = lines
            .next_line()
            .await
            .expect("readable log")
            .expect("the binary is still running");
        let entry: serde_json::Value = serde_json::from_str(&line).expect("json log lines");
        (line, entry)
    };
    let addr = tokio::time::timeout(DEADLINE, async {
        loop {
            let (_, entry) = next_entry(&mut lines).await;
            if let Some(addr) = entry["fields"]["local_addr"].as_str() {
                return addr.to_owned();
            }
        }
    })
    .await
    .expect("the binary listens within the deadline");

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LW1hcmtlcg.c2lnbmF0dXJl";
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/v1/conversations"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 401);
    let (line, entry) = tokio::time::timeout(DEADLINE, async {
        loop {
            let (line, entry) = next_entry(&mut lines).await;
            if entry["target"] == "switchboard::security" {
                return (line, entry);
            }
        }
    })
    .await
    .expect("a security event is logged");
    child.kill().await.expect("the binary is stopped");
    assert_eq!(entry["level"], "WARN");
    assert_eq!(entry["fields"]["reason"], "token_refused", "{line}");
    assert_eq!(entry["fields"]["code"], "token_malformed", "{line}");
    assert!(
        entry["fields"]["remote_addr"]
            .as_str()
            .is_some_and(|remote| remote.starts_with("127.0.0.1:")),
        "{line}"
    );
    assert!(
        !line.contains(TOKEN) && !line.contains("c2VjcmV0"),
        "{line}"
    );
}
