//! The error responses that many endpoints document, built from the wire-code table: each entry
//! names a [`WireCode`] and the table gives its status, so a documented status cannot disagree
//! with the status the server sends. (Endpoints' own error entries are checked against the
//! table by a test in `crate::openapi`.)

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

use crate::wire_error::WireCode;

/// The one description of a refused bearer token.
const TOKEN_REFUSED: &str = "The bearer token is missing or refused (`token_*` codes).";

/// Error responses, each under its code's status, with the `ErrorBody` schema.
fn error_responses(entries: &[(WireCode, &str)]) -> BTreeMap<String, RefOr<Response>> {
    entries
        .iter()
        .map(|(code, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", content)
                .build();
            (code.status().as_u16().to_string(), RefOr::T(response))
        })
        .collect()
}

/// Declares a response type that documents one error, its status from the code's.
macro_rules! one_error {
    ($(#[$doc:meta])* $name:ident = ($code:ident, $description:expr)) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error_responses(&[(WireCode::$code, $description)])
            }
        }
    };
}

one_error! {
    /// The 401 of every endpoint that takes a bearer token.
    TokenRefused = (TokenMissing, TOKEN_REFUSED)
}

one_error! {
    /// The 403 of an endpoint for members only.
    CallerNotMember = (NotMember, "The caller is not a member (`not_member`).")
}

one_error! {
    /// The 429 of every search endpoint.
    SearchRateLimited = (
        RateLimited,
        "Over `limits.search_per_minute` (`rate_limited`, with `retry_after_ms`)."
    )
}

/// The errors of a search of conversations or users by name.
pub(crate) struct NameSearchErrors;

impl IntoResponses for NameSearchErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (
                WireCode::Invalid,
                "A query that cannot be read (as for messages), one with a message filter (`from:`, `has:`, `before:`, `after:`) or no word; a limit outside 1 to 50; a bad cursor; an unknown parameter (`invalid`).",
            ),
            (
                WireCode::Unavailable,
                "The store is unavailable, or search is turned off (`unavailable`).",
            ),
        ])
    }
}

one_error! {
    /// The 403 of an endpoint that takes the admin role.
    AdminRoleRequired = (Forbidden, "The token lacks the admin role (`forbidden`).")
}

one_error! {
    /// The 403 of an endpoint that takes the recorder or the admin role.
    RecorderRoleRequired = (
        Forbidden,
        "The token lacks the recorder and admin roles (`forbidden`)."
    )
}

/// The errors of a change to a conversation.
pub(crate) struct ChangeErrors;

impl IntoResponses for ChangeErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        // The line breaks are the document's, as it always had them.
        error_responses(&[
            (
                WireCode::Invalid,
                "Malformed body or query, unknown field, or a bad value (`invalid`).",
            ),
            (WireCode::TokenMissing, TOKEN_REFUSED),
            (
                WireCode::Forbidden,
                "Not a member (`not_member`), or the permission matrix (docs/PERMISSIONS.md) or a ban\n\
                 refuses it (`forbidden`).",
            ),
            (
                WireCode::NotFound,
                "No such conversation in the caller's tenant (`not_found`).",
            ),
            (
                WireCode::Conflict,
                "The conversation's state refuses it: archived, already a member, not a member, not\n\
                 banned, same role; or the caller used this client_id for another kind of request\n\
                 (`conflict`).",
            ),
            (
                WireCode::TooLarge,
                "Too many members, or a value over its limit (`too_large`).",
            ),
            (
                WireCode::RateLimited,
                "The user's rate limit is exhausted (`rate_limited`).",
            ),
            (
                WireCode::Unavailable,
                "Storage or the conversation is unavailable; retry with the same client_id\n\
                 (`unavailable`).",
            ),
        ])
    }
}

/// The errors of an operation on a message.
pub(crate) struct OperationErrors;

impl IntoResponses for OperationErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        error_responses(&[
            (
                WireCode::Invalid,
                "Malformed body or query, unknown field, bad client_id, invalid text or emoji\n\
                 (`invalid`).",
            ),
            (WireCode::TokenMissing, TOKEN_REFUSED),
            (
                WireCode::Forbidden,
                "Not a member (`not_member`), or not allowed (`forbidden`): see docs/PERMISSIONS.md, the\n\
                 author-only rule and the edit window (`conversations.edit_window_ms`).",
            ),
            (
                WireCode::NotFound,
                "No such conversation (or message) in the caller's tenant (`not_found`); other tenants'\n\
                 data always looks like this.",
            ),
            (
                WireCode::Conflict,
                "The message's state refuses it: already deleted, already reacted, no such reaction of\n\
                 yours; or the caller used this client_id for a different request (`conflict`).",
            ),
            (
                WireCode::TooLarge,
                "Text over `limits.max_message_bytes`, or more than 50 distinct reactions on the message\n\
                 (`too_large`).",
            ),
            (
                WireCode::RateLimited,
                "The user's rate limit is exhausted (`rate_limited`, with `retry_after_ms` and\n\
                 `Retry-After`).",
            ),
            (
                WireCode::Unavailable,
                "Storage or the conversation is unavailable; for a write the outcome is unknown, retry\n\
                 with the same client_id (`unavailable`).",
            ),
        ])
    }
}
