//! Waiting for another actor's answer, always within a timeout.
//!
//! Every request to another actor carries a reply port, and every wait on that port is bounded
//! (STYLE §4: a dead or stuck actor must not hang a socket task or an HTTP request). The two
//! shapes of that wait live here once: `conversation_reply` for a request routed to a
//! conversation (whose reply is a domain `Result`), and `call_within` for a plain ractor
//! `call` to a supervisor or the writer.

use std::time::Duration;

use ractor::concurrency::OneshotReceiver;
use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};
use switchboard_engine::Error;

/// How long a caller waits for a conversation's answer, and what it is told when the
/// conversation drops the request (it stopped or restarted before answering).
#[derive(Debug, Clone, Copy)]
pub struct ReplyWait {
    /// How long to wait.
    pub timeout: Duration,
    /// The reason an [`Error::Unavailable`] gives when the reply port is dropped.
    pub restarting: &'static str,
}

impl ReplyWait {
    /// The wait of a [`System`](crate::system::System) caller (HTTP, tools), told to retry.
    pub fn system(timeout: Duration) -> Self {
        ReplyWait {
            timeout,
            restarting: "the conversation is restarting; retry",
        }
    }

    /// The wait of a session (a WebSocket client), whose error frame says only what happened.
    pub fn session(timeout: Duration) -> Self {
        ReplyWait {
            timeout,
            restarting: "the conversation is restarting",
        }
    }
}

/// Waits, at most `wait.timeout`, for a conversation's answer on `receiver`.
///
/// # Errors
/// The conversation's own error; [`Error::Unavailable`] when it dropped the request or did not
/// answer in time.
pub(crate) async fn conversation_reply<T>(
    receiver: OneshotReceiver<Result<T, Error>>,
    wait: ReplyWait,
) -> Result<T, Error> {
    match tokio::time::timeout(wait.timeout, receiver).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::unavailable(wait.restarting)),
        Err(_) => Err(Error::unavailable(
            "the conversation did not answer in time",
        )),
    }
}

/// Calls `actor` with a message built around a reply port and waits at most `timeout`.
///
/// # Errors
/// [`crate::Error::Timeout`] when `what` does not answer in time, [`crate::Error::Stopped`]
/// when it is gone or drops the reply port.
pub(crate) async fn call_within<Msg, Answer>(
    actor: &ActorRef<Msg>,
    make_message: impl FnOnce(RpcReplyPort<Answer>) -> Msg,
    timeout: Duration,
    what: &'static str,
) -> crate::Result<Answer>
where
    Msg: Message,
    Answer: Send + 'static,
{
    match actor.call(make_message, Some(timeout)).await {
        Ok(CallResult::Success(answer)) => Ok(answer),
        Ok(CallResult::Timeout) => Err(crate::Error::Timeout { what }),
        _ => Err(crate::Error::Stopped { what }),
    }
}
