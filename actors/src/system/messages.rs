//! The messages service behind [`System`]: sends, forwards and operations on messages
//! (edits, deletes, reactions). Each is rate-limited, submitted to its conversation's actor and
//! answered once durable, with the stored message read back.

use switchboard_engine::forwarding::{
    ForwardLimits, ForwardPlan, check_forward, check_original, forwarded_copy,
};
use switchboard_engine::model::{Message, MessageRef, NewMessage};
use switchboard_engine::operations::NewOperation;
use switchboard_engine::rate_limit::ActionClass;

use crate::conversation::{AckGuard, SendReceipt, Submission};
use switchboard_engine::Error;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, UserId};

use super::System;
use crate::session::Identity;

/// What a send over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The stored message.
    pub message: Message,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

/// What a forward did in one target conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOutcome {
    /// The target.
    pub conversation_id: ConversationId,
    /// The copies stored there, in order, or why the target refused (copies before the
    /// refusal stay stored; retrying the same forward completes it without duplicates).
    pub result: Result<Vec<SentMessage>, Error>,
}

/// What an operation on a message over HTTP produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationResult {
    /// The event's reference in the seq stream.
    pub event: MessageRef,
    /// The message as it is now.
    pub message: Message,
    /// False when the `client_id` had been used before and nothing new was stored.
    pub created: bool,
}

/// How [`System::send`] does it.
pub(super) async fn send(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    new_message: NewMessage,
) -> Result<SentMessage, Error> {
    system.take_budget(identity, ActionClass::Messages).await?;
    send_unlimited(system, identity, conversation_id, new_message).await
}

/// Applies the rate limit, routes a request acknowledged by `client_id` (built around its
/// ack by `make_message`) to its conversation, and waits for the final ack.
pub(super) async fn submit(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    class: ActionClass,
    make_submission: impl FnOnce(UserId, AckGuard) -> Submission,
) -> Result<SendReceipt, Error> {
    system.take_budget(identity, class).await?;
    submit_unlimited(system, identity, conversation_id, make_submission).await
}

/// [`submit`] for a request whose rate-limit token was already taken.
pub(super) async fn submit_unlimited(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    make_submission: impl FnOnce(UserId, AckGuard) -> Submission,
) -> Result<SendReceipt, Error> {
    system
        .handles
        .conversations
        .submit_and_wait(
            System::key(identity, conversation_id),
            identity.user_id.clone(),
            make_submission,
            system.wait(),
        )
        .await
}

/// How [`System::forward`] does it.
pub(super) async fn forward(
    system: &System,
    identity: &Identity,
    source: ConversationId,
    message_ids: Vec<MessageId>,
    targets: Vec<ConversationId>,
    client_id: &ClientId,
) -> Result<Vec<ForwardOutcome>, Error> {
    let ForwardPlan {
        message_ids,
        targets,
    } = check_forward(
        message_ids,
        targets,
        client_id,
        ForwardLimits {
            max_messages: system.settings.forward_max_messages,
            max_targets: system.settings.forward_max_targets,
        },
    )?;
    system.conversation(identity, source).await?;
    let mut originals = Vec::with_capacity(message_ids.len());
    for message_id in message_ids {
        let original = system
            .store
            .message_by_id(&identity.tenant_id, source, message_id)
            .await?
            .ok_or(Error::NotFound)?;
        check_original(&original)?;
        originals.push(original);
    }
    for _ in &targets {
        system.take_budget(identity, ActionClass::Messages).await?;
    }
    let mut outcomes = Vec::with_capacity(targets.len());
    for target in targets {
        let mut copies = Vec::with_capacity(originals.len());
        let mut failure = None;
        for (index, original) in originals.iter().enumerate() {
            let new_message = forwarded_copy(source, original, client_id, index)?;
            match send_unlimited(system, identity, target, new_message).await {
                Ok(copy) => copies.push(copy),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        outcomes.push(ForwardOutcome {
            conversation_id: target,
            result: failure.map_or(Ok(copies), Err),
        });
    }
    Ok(outcomes)
}

pub(super) async fn send_unlimited(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    new_message: NewMessage,
) -> Result<SentMessage, Error> {
    let SendReceipt {
        message_ref,
        created,
    } = submit_unlimited(system, identity, conversation_id, |sender_id, ack| {
        Submission::send(sender_id, new_message, ack)
    })
    .await?;
    let message = system
        .store
        .message_by_id(&identity.tenant_id, conversation_id, message_ref.message_id)
        .await?
        .ok_or_else(|| Error::unavailable("the stored message could not be read back"))?;
    Ok(SentMessage { message, created })
}

/// How [`System::operate`] does it.
pub(super) async fn operate(
    system: &System,
    identity: &Identity,
    conversation_id: ConversationId,
    new_operation: NewOperation,
) -> Result<OperationResult, Error> {
    let message_id = new_operation.operation.message_id();
    let SendReceipt {
        message_ref,
        created,
    } = submit(
        system,
        identity,
        conversation_id,
        ActionClass::Operations,
        |actor_id, ack| Submission::operate(actor_id, new_operation, ack),
    )
    .await?;
    let message = system
        .store
        .message_by_id(&identity.tenant_id, conversation_id, message_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(OperationResult {
        event: message_ref,
        message,
        created,
    })
}
