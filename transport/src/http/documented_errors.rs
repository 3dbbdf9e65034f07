//! The error responses that whole groups of endpoints document.

use crate::wire_error::ErrorBody;

/// The errors of a change to a conversation, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "only describes responses; the errors are built by WireError"
)]
pub(crate) enum ChangeErrors {
    /// Malformed body or query, unknown field, or a bad value (`invalid`).
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// The bearer token is missing or refused (`token_*` codes).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not a member (`not_member`), or the permission matrix (docs/PERMISSIONS.md) or a ban
    /// refuses it (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such conversation in the caller's tenant (`not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The conversation's state refuses it: archived, already a member, not a member, not
    /// banned, same role; or the caller used this client_id for another kind of request
    /// (`conflict`).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Too many members, or a value over its limit (`too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The user's rate limit is exhausted (`rate_limited`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Storage or the conversation is unavailable; retry with the same client_id
    /// (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors of an operation on a message, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "only describes responses; the errors are built by WireError"
)]
pub(crate) enum OperationErrors {
    /// Malformed body or query, unknown field, bad client_id, invalid text or emoji
    /// (`invalid`).
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// The bearer token is missing or refused (`token_*` codes).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Not a member (`not_member`), or not allowed (`forbidden`): see docs/PERMISSIONS.md, the
    /// author-only rule and the edit window (`conversations.edit_window_ms`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such conversation (or message) in the caller's tenant (`not_found`); other tenants'
    /// data always looks like this.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The message's state refuses it: already deleted, already reacted, no such reaction of
    /// yours; or the caller used this client_id for a different request (`conflict`).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Text over `limits.max_message_bytes`, or more than 50 distinct reactions on the message
    /// (`too_large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The user's rate limit is exhausted (`rate_limited`, with `retry_after_ms` and
    /// `Retry-After`).
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// Storage or the conversation is unavailable; for a write the outcome is unknown, retry
    /// with the same client_id (`unavailable`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
