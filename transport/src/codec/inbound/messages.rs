//! Frames about messages: send, and the operations on a message (edit, delete, react,
//! unreact), built through [`crate::codec::requests`] like their HTTP counterparts.

use std::borrow::Cow;

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, RequestId};
use switchboard_engine::model::NewMessage;
use switchboard_engine::operations::{MessageOperation, NewOperation};

use super::{Fields, Frame, Parsed, client_id, conversation_id, optional_message_id};
use crate::codec::requests::{self, Deletion, required};

pub(super) fn send(frame: Frame<'_, '_>) -> Parsed {
    let conversation_id = conversation_id(frame.fields.conversation_id)?;
    let client_id = client_id(frame.fields.client_id)?;
    let attachments = requests::media_ids(frame.fields.attachments.as_deref())?;
    let text = requests::message_text(frame.fields.text.map(Cow::into_owned), &attachments)?;
    let reply_to = optional_message_id("reply_to", frame.fields.reply_to)?;
    let thread_root = optional_message_id("thread_root", frame.fields.thread_root)?;
    Ok(ClientRequest::Send {
        request_id: frame.request_id.take(),
        conversation_id,
        new_message: NewMessage {
            client_id,
            text,
            reply_to,
            thread_root,
            forwarded_from: None,
            attachments,
        },
    })
}

/// The fields every operation on a message starts with, in the order they are checked.
struct Target {
    conversation_id: ConversationId,
    client_id: ClientId,
    message_id: MessageId,
}

impl Target {
    /// Takes the three fields out of `fields`, leaving the operation's own.
    fn parse(fields: &mut Fields<'_>) -> Result<Target, Error> {
        let conversation_id = conversation_id(fields.conversation_id.take())?;
        let client_id = client_id(fields.client_id.take())?;
        let message_id = required(
            optional_message_id("message_id", fields.message_id.take())?,
            "message_id",
        )?;
        Ok(Target {
            conversation_id,
            client_id,
            message_id,
        })
    }

    fn operate(
        self,
        request_id: &mut Option<RequestId>,
        operation: MessageOperation,
    ) -> ClientRequest {
        ClientRequest::Operate {
            request_id: request_id.take(),
            conversation_id: self.conversation_id,
            new_operation: NewOperation {
                client_id: self.client_id,
                operation,
            },
        }
    }
}

pub(super) fn edit(mut frame: Frame<'_, '_>) -> Parsed {
    let target = Target::parse(&mut frame.fields)?;
    let operation = requests::edit(target.message_id, frame.fields.text.map(Cow::into_owned))?;
    Ok(target.operate(frame.request_id, operation))
}

pub(super) fn delete(mut frame: Frame<'_, '_>) -> Parsed {
    let target = Target::parse(&mut frame.fields)?;
    match requests::delete(target.message_id, frame.fields.mode.as_deref())? {
        Deletion::ForMe => Ok(ClientRequest::Hide {
            request_id: frame.request_id.take(),
            conversation_id: target.conversation_id,
            message_id: target.message_id,
        }),
        Deletion::Operation(operation) => Ok(target.operate(frame.request_id, operation)),
    }
}

pub(super) fn react(mut frame: Frame<'_, '_>) -> Parsed {
    let target = Target::parse(&mut frame.fields)?;
    let operation = requests::react(target.message_id, frame.fields.emoji.as_deref())?;
    Ok(target.operate(frame.request_id, operation))
}

pub(super) fn unreact(mut frame: Frame<'_, '_>) -> Parsed {
    let target = Target::parse(&mut frame.fields)?;
    let operation = requests::unreact(target.message_id, frame.fields.emoji.as_deref())?;
    Ok(target.operate(frame.request_id, operation))
}
