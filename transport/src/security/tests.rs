//! Which wire codes the HTTP layer records as security events.

use super::*;

#[test]
fn tokens_and_access_denials_are_recorded_and_nothing_else() {
    let recorded: Vec<(&str, Option<&str>)> = [
        "token_missing",
        "token_expired",
        "token_bad_signature",
        "forbidden",
        "not_member",
        "not_found",
        "rate_limited",
        "too_many_connections",
        "invalid",
        "conflict",
    ]
    .iter()
    .map(|code| (*code, reason_of_code(code).map(SecurityReason::label)))
    .collect();
    assert_eq!(
        recorded,
        [
            ("token_missing", Some("token_refused")),
            ("token_expired", Some("token_refused")),
            ("token_bad_signature", Some("token_refused")),
            ("forbidden", Some("forbidden")),
            ("not_member", Some("not_member")),
            ("not_found", Some("not_found")),
            ("rate_limited", None),
            ("too_many_connections", None),
            ("invalid", None),
            ("conflict", None),
        ]
    );
}
