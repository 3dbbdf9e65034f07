//! Frames that change a conversation's membership: add, remove, leave, change a role, transfer
//! ownership and moderate, built through [`crate::codec::requests`] like their HTTP
//! counterparts.

use std::borrow::Cow;

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::ids::UserId;
use switchboard_engine::membership::ConversationChange;

use super::{Fields, Frame, Parsed, client_id, conversation_id};
use crate::codec::requests::{self, required};

/// Every change starts with the conversation and the client id, checked in that order, then
/// the kind's own fields.
fn change(
    frame: Frame<'_, '_>,
    build: impl FnOnce(Fields<'_>) -> Result<ConversationChange, Error>,
) -> Parsed {
    let Frame {
        mut fields,
        request_id,
    } = frame;
    let conversation_id = conversation_id(fields.conversation_id.take())?;
    let client_id = client_id(fields.client_id.take())?;
    let change = build(fields)?;
    Ok(ClientRequest::Change {
        request_id: request_id.take(),
        conversation_id,
        client_id,
        change,
    })
}

/// The required `user_id`.
fn user_id(value: Option<Cow<'_, str>>) -> Result<UserId, Error> {
    UserId::parse(&required(value, "user_id")?)
}

pub(super) fn add_members(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |fields| {
        requests::add_members(fields.user_ids.as_deref())
    })
}

pub(super) fn remove_member(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |fields| {
        Ok(ConversationChange::RemoveMember {
            user_id: user_id(fields.user_id)?,
        })
    })
}

pub(super) fn leave_conversation(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |_| Ok(ConversationChange::Leave))
}

pub(super) fn change_role(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |fields| {
        requests::change_role(user_id(fields.user_id)?, fields.role.as_deref())
    })
}

pub(super) fn transfer_ownership(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |fields| {
        Ok(ConversationChange::TransferOwnership {
            user_id: user_id(fields.user_id)?,
        })
    })
}

pub(super) fn moderate(frame: Frame<'_, '_>) -> Parsed {
    change(frame, |fields| {
        requests::moderate(
            fields.action.as_deref(),
            fields.user_id.as_deref(),
            fields.duration_ms,
            fields.reason.map(Cow::into_owned),
        )
    })
}
