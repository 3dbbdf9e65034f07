//! The conversation actor's submissions: sends, operations on messages (edits, deletes,
//! reactions) and changes to the conversation. Each is checked by the core and against the
//! messages it references (read from storage), settled at once when its `client_id` already
//! decides it, and otherwise handed to the writer with its ack, which the stored entry's report
//! finishes (see `delivery`).

use ractor::ActorRef;
use switchboard_engine::Error;
use switchboard_engine::conversation::{AppendTicket, SendCheck};
use switchboard_engine::event::AckOutcome;
use switchboard_engine::idempotency::RequestShape;
use switchboard_engine::ids::{ClientId, MessageId, UserId};
use switchboard_engine::membership::ConversationChange;
use switchboard_engine::model::{Message, NewMessage};
use switchboard_engine::operations::{
    ConversationEvent, ConversationEventBody, LogEntry, NewOperation,
};
use switchboard_engine::ports::AppendEntry;

use crate::writer::{AppendReceipt, PendingAppend};

use super::{AckGuard, ConversationActor, ConversationMsg, Ready};

impl ConversationActor {
    pub(super) async fn handle_send(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        sender_id: UserId,
        new_message: NewMessage,
        ack: AckGuard,
    ) {
        let now = self.context.clock.now();
        let mut check = ready.core.check_send(&sender_id, &new_message, now);
        if matches!(check, Err(Error::NotMember)) && self.refresh_membership(myself, ready).await {
            check = ready.core.check_send(&sender_id, &new_message, now);
        }
        let shape = RequestShape::of_new_message(&new_message);
        let check = self
            .or_stored_repeat(check, &new_message.client_id, &sender_id, &shape)
            .await;
        let Some(ack) = settle_known(ready, check, &sender_id, &new_message.client_id, ack) else {
            return;
        };
        // No lookup of the client_id here: storage checks it atomically at append and reports a
        // duplicate, so a repeat that is no longer remembered still stores nothing new.
        if let Err(error) = self.check_references(&new_message).await {
            ack.finish(AckOutcome::Rejected(error));
            return;
        }
        let message_id = MessageId::from_parts(now.as_millis(), fastrand::u128(..));
        let attachments = if new_message.attachments.is_empty() {
            Vec::new()
        } else {
            match self
                .attach_media(&sender_id, &new_message, message_id)
                .await
            {
                Ok(attachments) => attachments,
                Err(error) => {
                    ack.finish(AckOutcome::Rejected(error));
                    return;
                }
            }
        };
        let accepted = ready
            .core
            .accept(sender_id, new_message, attachments, message_id, now, ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }

    pub(super) async fn handle_change(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        client_id: ClientId,
        change: ConversationChange,
        ack: AckGuard,
    ) {
        let check = ready.core.check_change(&actor_id, &client_id);
        let check = self
            .or_stored_repeat(check, &client_id, &actor_id, &RequestShape::Unchecked)
            .await;
        let Some(ack) = settle_known(ready, check, &actor_id, &client_id, ack) else {
            return;
        };
        let now = self.context.clock.now();
        let body =
            match ready
                .core
                .authorize_change(&actor_id, change, now, self.context.max_members)
            {
                Ok(body) => body,
                Err(error) => {
                    ack.finish(AckOutcome::Rejected(error));
                    return;
                }
            };
        self.append_event(myself, ready, actor_id, client_id, body, ack);
    }

    /// Accepts a new event made at this moment and hands it to the writer.
    pub(super) fn append_event(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        client_id: ClientId,
        body: ConversationEventBody,
        ack: AckGuard,
    ) {
        let now = self.context.clock.now();
        let event = ConversationEvent::new(
            self.conversation_id(),
            MessageId::from_parts(now.as_millis(), fastrand::u128(..)),
            actor_id,
            client_id,
            now,
            body,
        );
        let accepted = ready.core.accept_entry(LogEntry::Event(event), ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }

    /// A refused request that repeats one of the same user's requests storage already holds
    /// (stored before this actor started, so not remembered) is answered with the original:
    /// a retry must learn that its first attempt worked, even if it could not be made now (the
    /// user left, was removed or muted since). A key the user used for a different request is
    /// refused as such. Only refusals pay for the storage read.
    pub(super) async fn or_stored_repeat(
        &self,
        check: Result<SendCheck, Error>,
        client_id: &ClientId,
        author: &UserId,
        shape: &RequestShape<'_>,
    ) -> Result<SendCheck, Error> {
        let Err(error) = check else {
            return check;
        };
        let Ok(Some(stored)) = self
            .context
            .store
            .entry_by_client_id(self.tenant_id(), self.conversation_id(), author, client_id)
            .await
        else {
            return Err(error);
        };
        shape.check_repeat(&RequestShape::of_entry(&stored))?;
        Ok(SendCheck::Known(stored.reference()))
    }

    /// Hands an accepted entry to the writer; its result comes back as `Persisted`.
    pub(super) fn append(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ticket: AppendTicket,
        entry: LogEntry,
    ) {
        self.context.writer.append(PendingAppend {
            entry: AppendEntry {
                tenant_id: self.tenant_id().clone(),
                entry,
            },
            receipt: AppendReceipt::new(ticket, myself.clone()),
        });
    }

    /// Reads a message this conversation's request refers to.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `field` if there is no such message here; storage errors.
    pub(super) async fn referenced_message(
        &self,
        field: &'static str,
        message_id: MessageId,
    ) -> Result<Message, Error> {
        self.context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), message_id)
            .await?
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    "does not name a delivered message of this conversation",
                )
            })
    }

    /// Checks that a new message's `reply_to` and `thread_root` name messages of this
    /// conversation, and that the thread root is not itself a thread reply. Storage checks the
    /// same again atomically at append; checking here gives the clearer error first.
    pub(super) async fn check_references(&self, new_message: &NewMessage) -> Result<(), Error> {
        if let Some(reply_to) = new_message.reply_to {
            self.referenced_message("reply_to", reply_to).await?;
        }
        if let Some(thread_root) = new_message.thread_root {
            let root = self.referenced_message("thread_root", thread_root).await?;
            if root.thread_root.is_some() {
                return Err(Error::invalid(
                    "thread_root",
                    "is a reply in a thread; threads do not nest",
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn handle_operate(
        &self,
        myself: &ActorRef<ConversationMsg>,
        ready: &mut Ready,
        actor_id: UserId,
        new_operation: NewOperation,
        ack: AckGuard,
    ) {
        let check = ready.core.check_operation(&actor_id, &new_operation);
        let shape = RequestShape::of_operation(&new_operation.operation);
        let check = self
            .or_stored_repeat(check, &new_operation.client_id, &actor_id, &shape)
            .await;
        let Some(ack) = settle_known(ready, check, &actor_id, &new_operation.client_id, ack) else {
            return;
        };
        let target_id = new_operation.operation.message_id();
        let target = match self
            .context
            .store
            .message_by_id(self.tenant_id(), self.conversation_id(), target_id)
            .await
        {
            Ok(Some(target)) => target,
            Ok(None) => {
                ack.finish(AckOutcome::Rejected(Error::NotFound));
                return;
            }
            Err(error) => {
                ack.finish(AckOutcome::Rejected(error.into()));
                return;
            }
        };
        let now = self.context.clock.now();
        if let Err(error) = ready
            .core
            .authorize(&actor_id, &new_operation.operation, &target, now)
        {
            ack.finish(AckOutcome::Rejected(error));
            return;
        }
        let event_id = MessageId::from_parts(now.as_millis(), fastrand::u128(..));
        let event = ConversationEvent::from_operation(
            self.conversation_id(),
            event_id,
            actor_id,
            new_operation,
            now,
        );
        let accepted = ready.core.accept_entry(LogEntry::Event(event), ack);
        self.append(myself, accepted.ticket, accepted.entry);
    }
}

/// Answers a request whose `client_id` check already decides it (refused, already stored, or
/// in flight: the ack joins the in-flight entry's waiters). Returns the ack when the entry is
/// new and the caller must go on.
pub(super) fn settle_known(
    ready: &mut Ready,
    check: Result<SendCheck, Error>,
    author: &UserId,
    client_id: &ClientId,
    mut ack: AckGuard,
) -> Option<AckGuard> {
    match check {
        Err(error) => ack.finish(AckOutcome::Rejected(error)),
        Ok(SendCheck::Known(message_ref)) => {
            ack.mark_duplicate();
            ack.finish(AckOutcome::Delivered(message_ref));
        }
        Ok(SendCheck::InFlight) => {
            ack.mark_duplicate();
            if let Err(ack) = ready.core.attach_waiter(author, client_id, ack) {
                ack.finish(AckOutcome::Rejected(Error::unavailable("retry")));
            }
        }
        Ok(SendCheck::Unknown) => return Some(ack),
    }
    None
}
