//! Security events of the HTTP API: one middleware sees every answer and records the refusals
//! that matter (refused tokens, `forbidden`, `not_member`, `not_found`) in the node's
//! [`SecurityLog`], with the caller's verified tenant and user when there is one, and the
//! remote address.
//!
//! The answer carries its wire code as a response extension ([`ErrorCode`], set where
//! [`crate::wire_error::WireError`] becomes a response), so the middleware needs no second
//! mapping of errors to codes. The caller is known only once a token is verified, inside the
//! handler's extractor; the middleware hands the extractor a [`CallerSlot`] through the request's
//! extensions and reads it after the handler ran. Rate limits and connection caps are recorded
//! where they are decided (`switchboard_actors::limits`), so they are not recorded here again.
//! Nothing here reads a token, a body or a query string: only the code, ids and the address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use switchboard_actors::security::{SecurityEvent, SecurityReason};
use switchboard_actors::session::Identity;

use crate::server::App;

/// The wire code of an error answer, attached to the response for [`record_security_events`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorCode(pub(crate) &'static str);

/// Where an extractor leaves the identity it verified, for [`record_security_events`].
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerSlot(Arc<Mutex<Option<Identity>>>);

impl CallerSlot {
    /// Records the verified caller of the request whose extensions hold a slot, if any.
    pub(crate) fn set(extensions: &http::Extensions, identity: &Identity) {
        if let Some(slot) = extensions.get::<CallerSlot>() {
            *slot.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(identity.clone());
        }
    }

    fn take(&self) -> Option<Identity> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The security reason of a wire code an HTTP caller got, if it is one this layer records.
pub(crate) fn reason_of_code(code: &str) -> Option<SecurityReason> {
    match code {
        "forbidden" => Some(SecurityReason::Forbidden),
        "not_member" => Some(SecurityReason::NotMember),
        "not_found" => Some(SecurityReason::NotFound),
        code if code.starts_with("token_") => Some(SecurityReason::TokenRefused),
        _ => None,
    }
}

/// The middleware (see the module documentation).
pub(crate) async fn record_security_events(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = CallerSlot::default();
    request.extensions_mut().insert(caller.clone());
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(remote)| *remote);
    let response = next.run(request).await;
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>().copied()
        && let Some(reason) = reason_of_code(code)
    {
        // A refused token's claims are never trusted: the caller is known only once verified.
        let identity = caller.take();
        app.system.security().record(SecurityEvent {
            reason,
            code,
            tenant_id: identity.as_ref().map(|identity| &identity.tenant_id),
            user_id: identity.as_ref().map(|identity| &identity.user_id),
            remote,
        });
    }
    response
}

#[cfg(test)]
mod tests;
