//! A submission's acknowledgement: where its final ack goes (a session's queue, an HTTP
//! caller's reply port, or nobody for a record the actor stores itself) and the guard that
//! makes every submission end in exactly one final ack, even when the actor stops or crashes
//! with it unanswered.

use std::sync::Arc;

use ractor::RpcReplyPort;
use switchboard_engine::Error;
use switchboard_engine::event::{AckOutcome, EventEncoder, ServerEvent};
use switchboard_engine::ids::{ClientId, RequestId};
use switchboard_engine::model::MessageRef;

use crate::outbound::Outbound;

/// What a finished send reports to an HTTP caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    /// The stored message.
    pub message_ref: MessageRef,
    /// Whether this request created it (false for a repeated `client_id`).
    pub created: bool,
}

/// Where a send's final acknowledgement goes.
pub enum AckTarget {
    /// A WebSocket session: an `ack` frame into its outbound queue.
    Session {
        /// The session's queue.
        outbound: Outbound,
        /// The request id to echo.
        request_id: Option<RequestId>,
        /// The send's idempotency key.
        client_id: ClientId,
        /// How to encode the ack frame.
        encoder: Arc<dyn EventEncoder>,
        /// Records the session's access denials.
        security: Arc<crate::security::CallerSecurity>,
    },
    /// An RPC caller (the HTTP API).
    Reply(RpcReplyPort<Result<SendReceipt, Error>>),
    /// Nobody waits (a record the actor stores itself, such as a call's start or end); a
    /// failure is logged.
    Record(&'static str),
}

/// A send's pending acknowledgement. Finishing it delivers the final ack; dropping it
/// unfinished (the conversation stopped or crashed) rejects the send as `unavailable`, so every
/// send ends in exactly one final ack.
pub struct AckGuard {
    target: Option<AckTarget>,
    duplicate: bool,
}

impl AckGuard {
    /// A guard for `target`.
    pub fn new(target: AckTarget) -> Self {
        AckGuard {
            target: Some(target),
            duplicate: false,
        }
    }

    pub(super) fn mark_duplicate(&mut self) {
        self.duplicate = true;
    }

    /// Delivers the final outcome.
    pub fn finish(mut self, outcome: AckOutcome) {
        if let Some(target) = self.target.take() {
            deliver_ack(target, outcome, !self.duplicate);
        }
    }
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            deliver_ack(
                target,
                AckOutcome::Rejected(Error::unavailable(
                    "the conversation restarted; retry with the same client_id",
                )),
                false,
            );
        }
    }
}

pub(super) fn deliver_ack(target: AckTarget, outcome: AckOutcome, created: bool) {
    match target {
        AckTarget::Session {
            outbound,
            request_id,
            client_id,
            encoder,
            security,
        } => {
            if let AckOutcome::Rejected(error) = &outcome {
                security.refused(error);
            }
            let frame = encoder.encode(&ServerEvent::Ack {
                request_id: request_id.as_ref(),
                client_id: &client_id,
                outcome: &outcome,
            });
            // A closed queue means the client is gone; it will resend with the same client_id.
            let _ = outbound.push(frame);
        }
        AckTarget::Reply(reply) => {
            let result = match outcome {
                AckOutcome::Delivered(message_ref) => Ok(SendReceipt {
                    message_ref,
                    created,
                }),
                AckOutcome::Rejected(error) => Err(error),
                AckOutcome::Pending => return,
            };
            let _ = reply.send(result);
        }
        AckTarget::Record(what) => {
            if let AckOutcome::Rejected(error) = outcome {
                tracing::warn!(%error, what, "a record could not be stored");
            }
        }
    }
}
