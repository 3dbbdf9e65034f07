//! How callers talk to conversations: one typed method per request, never a raw
//! [`ConversationMsg`].
//!
//! [`ConversationsHandle`] reaches any conversation through the supervisor's routing (starting
//! its actor when needed); [`ConversationHandle`] is one running conversation actor, which a
//! session keeps for the conversations it joined so that its sends skip the supervisor. Every
//! method that waits for an answer waits at most the caller's [`ReplyWait`]. Sends, operations
//! and changes travel as a [`Submission`] built around its [`AckGuard`]: the guard, not a reply
//! port, carries the outcome, so a submission refused by a retired actor can be routed again
//! unchanged.

use ractor::concurrency::oneshot;
use ractor::{ActorRef, MessagingErr, RpcReplyPort};
use switchboard_engine::Error;
use switchboard_engine::conversation::{AppendResult, AppendTicket};
use switchboard_engine::ids::{ClientId, MessageId, RequestId, Seq, SessionId, UserId};
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::{ConversationSnapshot, NewMessage, ReadCursors};
use switchboard_engine::operations::NewOperation;
use switchboard_engine::recording::RecordingNotice;

use super::{
    AckGuard, AckTarget, CallMsg, CallRequest, ChangeRequest, ConversationMsg, JoinRequest,
    ReceiptRequest, SendReceipt,
};
use crate::conversations::{ConversationKey, ConversationsHandle, ConversationsMsg};
use crate::outbound::Outbound;
use crate::reply::{ReplyWait, conversation_reply};

/// A send, an operation on a message or a change to the conversation, with the guard its final
/// acknowledgement goes through.
pub struct Submission(ConversationMsg);

impl Submission {
    /// `sender_id` sends `new_message`.
    pub fn send(sender_id: UserId, new_message: NewMessage, ack: AckGuard) -> Self {
        Submission(ConversationMsg::Send {
            sender_id,
            new_message,
            ack,
        })
    }

    /// `actor_id` edits, deletes or reacts to a message.
    pub fn operate(actor_id: UserId, new_operation: NewOperation, ack: AckGuard) -> Self {
        Submission(ConversationMsg::Operate {
            actor_id,
            new_operation,
            ack,
        })
    }

    /// `actor_id` changes the conversation itself.
    pub fn change(
        actor_id: UserId,
        client_id: ClientId,
        change: ConversationChange,
        ack: AckGuard,
    ) -> Self {
        Submission(ConversationMsg::Change(Box::new(ChangeRequest {
            actor_id,
            client_id,
            change,
            ack,
        })))
    }
}

/// One running conversation actor (the one a session joined).
#[derive(Clone)]
pub struct ConversationHandle(ActorRef<ConversationMsg>);

impl ConversationHandle {
    /// A handle to a running conversation actor.
    pub fn new(actor: ActorRef<ConversationMsg>) -> Self {
        ConversationHandle(actor)
    }

    /// The actor (for tests and diagnostics).
    pub fn actor(&self) -> &ActorRef<ConversationMsg> {
        &self.0
    }

    /// Hands `submission` to this actor, and gives it back when the actor has retired, to be
    /// routed to its successor. (A submission the actor's mailbox refuses for any other reason
    /// is dropped, which rejects it through its guard.)
    pub fn submit(&self, submission: Submission) -> Option<Submission> {
        match self.0.cast(submission.0) {
            Err(MessagingErr::SendErr(returned)) => Some(Submission(returned)),
            Ok(()) | Err(_) => None,
        }
    }

    /// Unsubscribes `session_id`; with `reply_to`, the conversation pushes `left` into that
    /// queue. False when the actor is gone (and with it the subscription).
    pub fn leave(
        &self,
        session_id: SessionId,
        reply_to: Option<(Outbound, Option<RequestId>)>,
    ) -> bool {
        !matches!(
            self.0.cast(ConversationMsg::Leave {
                session_id,
                reply_to,
            }),
            Err(MessagingErr::SendErr(_))
        )
    }

    /// Tells the joined sessions about a recording's media or erasure.
    pub fn recording_notice(&self, notice: RecordingNotice) {
        let _ = self.0.cast(ConversationMsg::Recording(Box::new(notice)));
    }
}

/// Reports the writer's results for a conversation's appends, in append order. If the
/// conversation is gone, there is nobody left to tell.
pub(crate) fn report_persisted(
    conversation: &ActorRef<ConversationMsg>,
    results: Vec<(AppendTicket, AppendResult)>,
) {
    let _ = conversation.cast(ConversationMsg::Persisted(results));
}

impl ConversationsHandle {
    /// Delivers `message` to the conversation. If the supervisor itself is gone, the message is
    /// dropped, which rejects a send and closes a reply port.
    fn route(&self, key: ConversationKey, message: ConversationMsg) {
        let _ = self.actor().cast(ConversationsMsg::Route { key, message });
    }

    /// Routes the request `make_message` builds around a reply port and waits for the answer.
    async fn ask<Answer>(
        &self,
        key: ConversationKey,
        make_message: impl FnOnce(RpcReplyPort<Result<Answer, Error>>) -> ConversationMsg,
        wait: ReplyWait,
    ) -> Result<Answer, Error> {
        let (sender, receiver) = oneshot();
        self.route(key, make_message(sender.into()));
        conversation_reply(receiver, wait).await
    }

    /// Hands `submission` to the conversation; its guard carries the outcome.
    pub fn submit(&self, key: ConversationKey, submission: Submission) {
        self.route(key, submission.0);
    }

    /// Hands the submission `make_submission` builds for `user_id` to the conversation and
    /// waits for its final acknowledgement.
    ///
    /// # Errors
    /// The conversation's refusal, or [`Error::Unavailable`] when it does not answer in time.
    pub async fn submit_and_wait(
        &self,
        key: ConversationKey,
        user_id: UserId,
        make_submission: impl FnOnce(UserId, AckGuard) -> Submission,
        wait: ReplyWait,
    ) -> Result<SendReceipt, Error> {
        let (sender, receiver) = oneshot();
        let ack = AckGuard::new(AckTarget::Reply(sender.into()));
        self.submit(key, make_submission(user_id, ack));
        conversation_reply(receiver, wait).await
    }

    /// The conversation, if `user_id` is a member.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::NotMember`], [`Error::Unavailable`].
    pub async fn inspect(
        &self,
        key: ConversationKey,
        user_id: UserId,
        wait: ReplyWait,
    ) -> Result<ConversationSnapshot, Error> {
        self.ask(
            key,
            |reply| ConversationMsg::Inspect { user_id, reply },
            wait,
        )
        .await
    }

    /// Subscribes a session; answers the head and the conversation's actor.
    ///
    /// # Errors
    /// Why the join was refused, or [`Error::Unavailable`].
    pub async fn join(
        &self,
        key: ConversationKey,
        request: JoinRequest,
        wait: ReplyWait,
    ) -> Result<(Seq, ConversationHandle), Error> {
        let request = Box::new(request);
        let (head, actor) = self
            .ask(key, |reply| ConversationMsg::Join { request, reply }, wait)
            .await?;
        Ok((head, ConversationHandle(actor)))
    }

    /// Hides a message for `user_id` only.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown message, the membership errors,
    /// [`Error::Unavailable`].
    pub async fn hide(
        &self,
        key: ConversationKey,
        user_id: UserId,
        message_id: MessageId,
        wait: ReplyWait,
    ) -> Result<(), Error> {
        let hide = |reply| ConversationMsg::Hide {
            user_id,
            message_id,
            reply,
        };
        self.ask(key, hide, wait).await
    }

    /// Moves a member's receipt cursors forward; answers the cursors now.
    ///
    /// # Errors
    /// The membership errors, storage errors, [`Error::Unavailable`].
    pub async fn receipt(
        &self,
        key: ConversationKey,
        request: ReceiptRequest,
        wait: ReplyWait,
    ) -> Result<ReadCursors, Error> {
        let request = Box::new(request);
        self.ask(
            key,
            |reply| ConversationMsg::Receipt { request, reply },
            wait,
        )
        .await
    }

    /// Passes on that `user_id` started or stopped typing; a refusal is pushed as an error
    /// frame into `reply_to`'s queue.
    pub fn typing(
        &self,
        key: ConversationKey,
        user_id: UserId,
        started: bool,
        reply_to: (Outbound, Option<RequestId>),
    ) {
        self.route(
            key,
            ConversationMsg::Typing {
                user_id,
                started,
                reply_to,
            },
        );
    }

    /// Hands a member's call action to the conversation; answers and refusals go into the
    /// request's queue.
    pub fn call(&self, key: ConversationKey, request: CallRequest) {
        self.route(
            key,
            ConversationMsg::Call(CallMsg::Request(Box::new(request))),
        );
    }
}
