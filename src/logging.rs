//! The log filter the binary installs: the configured one (`RUST_LOG`, else
//! `server.log_level`), with the per-datagram lines of the embedded relay's TURN library turned
//! off unless the filter names that library itself.
//!
//! webrtc-rs's `turn` crate, the embedded relay's server, logs through `log` (bridged into
//! `tracing`) an ERROR line for every datagram its server fails to handle (target
//! `turn::server`, "error when handling datagram": a datagram that is not STUN, a request for
//! an allocation that does not exist, …) and an INFO line for every datagram a peer sends to a
//! relayed port it has no permission for (`turn::allocation`). Anyone who can send UDP to the
//! relay, or to a relayed port, could write log lines as fast as they send. The lines are
//! written inside the dependency, so the filter is the one place to stop them; the relay counts
//! what matters to an operator itself (refused credentials, in
//! `switchboard_turn_relay_auth_failures_total`, logged sampled, see
//! `switchboard_turn::relay::failures`). An operator who wants the library's lines names its
//! target (`RUST_LOG=info,turn=debug`) and gets them all.
//!
//! It also decides whether the `human` format colours its lines ([`use_colour`]): only when
//! the log goes to a terminal, so files, pipes and log collectors never get ANSI escapes.

/// Added to a filter that does not name the `turn` crate's targets: its server's lines off,
/// its allocations' at WARN and above.
pub const QUIET_TURN_LIBRARY: &str = "turn::server=off,turn::allocation=warn";

/// The filter to install for `configured` (tracing-subscriber `EnvFilter` syntax):
/// `configured` with [`QUIET_TURN_LIBRARY`] added, unless one of its directives names the
/// target `turn` or a target under `turn::`. An empty filter means `error` to `EnvFilter`, and
/// still does.
pub fn log_filter(configured: &str) -> String {
    let names_turn_library = configured.split(',').any(|directive| {
        let target = directive
            .split(['=', '['])
            .next()
            .unwrap_or_default()
            .trim();
        target == "turn" || target.starts_with("turn::")
    });
    if names_turn_library {
        configured.to_owned()
    } else if configured.trim().is_empty() {
        format!("error,{QUIET_TURN_LIBRARY}")
    } else {
        format!("{configured},{QUIET_TURN_LIBRARY}")
    }
}

/// Whether the `human` log format writes ANSI colours: only to a terminal, and not when the
/// `NO_COLOR` convention (no-color.org: any non-empty value) asks for none. A file, a pipe or a
/// log collector would otherwise store the escape sequences as text.
pub fn use_colour(output_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    output_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests;
