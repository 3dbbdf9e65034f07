//! The TURN library's per-datagram lines are filtered out unless the filter names the library,
//! and the relay's own sampled lines get through.

use tracing_subscriber::EnvFilter;

use super::*;
use switchboard_testing::{CapturedLog, set_thread_subscriber};

#[test]
fn the_turn_library_is_quieted_unless_the_filter_names_it() {
    assert_eq!(
        log_filter("info,lsm_tree=warn,fjall=warn"),
        "info,lsm_tree=warn,fjall=warn,turn::server=off,turn::allocation=warn"
    );
    assert_eq!(log_filter(""), format!("error,{QUIET_TURN_LIBRARY}"));
    assert_eq!(
        log_filter("debug,switchboard_turn=trace"),
        "debug,switchboard_turn=trace,turn::server=off,turn::allocation=warn",
        "switchboard_turn is not the turn library"
    );
    for names_it in [
        "info,turn=debug",
        "turn::server=error",
        "warn, turn::allocation=info",
        "turn[span]=debug",
    ] {
        assert_eq!(log_filter(names_it), names_it);
    }
}

/// The lines a subscriber with `filter` writes for one event of each kind that matters.
fn lines_written_with(filter: &str) -> Vec<String> {
    let log = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(log_filter(filter)))
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    {
        let _guard = set_thread_subscriber(subscriber);
        tracing::error!(target: "turn::server", "error when handling datagram: garbage");
        tracing::info!(target: "turn::allocation", "No Permission or Channel exists");
        tracing::warn!(target: "turn::allocation", "an allocation warning");
        tracing::warn!(target: "switchboard_turn::relay::failures", "refused a credential");
        tracing::info!(target: "switchboard", "switchboard listening");
        tracing::error!(target: "switchboard", "the actor system failed");
    }
    log.lines()
}

#[test]
fn the_default_filter_drops_the_per_datagram_lines_and_keeps_the_relays_own() {
    let lines = lines_written_with("info,lsm_tree=warn,fjall=warn");
    let joined = lines.join("\n");
    assert_eq!(lines.len(), 4, "{joined}");
    assert!(!joined.contains("error when handling datagram"), "{joined}");
    assert!(!joined.contains("No Permission"), "{joined}");
    assert!(joined.contains("an allocation warning"), "{joined}");
    assert!(joined.contains("refused a credential"), "{joined}");
    assert!(joined.contains("switchboard listening"), "{joined}");

    let lines = lines_written_with("info,turn=info");
    assert_eq!(
        lines.len(),
        6,
        "a filter naming turn gets its lines: {lines:#?}"
    );

    let lines = lines_written_with("");
    let joined = lines.join("\n");
    assert_eq!(
        lines.len(),
        2,
        "an empty filter still shows errors: {joined}"
    );
    assert!(joined.contains("the actor system failed"), "{joined}");
    assert!(!joined.contains("error when handling datagram"), "{joined}");
}

#[test]
fn colour_only_on_a_terminal_that_did_not_ask_for_none() {
    use std::ffi::OsStr;
    assert!(use_colour(true, None));
    assert!(use_colour(true, Some(OsStr::new(""))));
    assert!(!use_colour(true, Some(OsStr::new("1"))));
    assert!(!use_colour(false, None));
    assert!(!use_colour(false, Some(OsStr::new(""))));
}
