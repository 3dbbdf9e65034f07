//! Frames about the session rather than one message: ping, join and leave, typing, receipts,
//! presence and TURN credentials.

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::ids::{RequestId, Seq, UserId};

use super::{Fields, conversation_id};
use crate::codec::requests::required;

pub(super) fn ping(
    _fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    Ok(ClientRequest::Ping {
        request_id: request_id.take(),
    })
}

pub(super) fn join(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    Ok(ClientRequest::Join {
        conversation_id: conversation_id(fields.conversation_id)?,
        since: fields.since.map(Seq),
        request_id: request_id.take(),
    })
}

pub(super) fn leave(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    Ok(ClientRequest::Leave {
        conversation_id: conversation_id(fields.conversation_id)?,
        request_id: request_id.take(),
    })
}

pub(super) fn typing(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    let conversation_id = conversation_id(fields.conversation_id)?;
    let started = match fields.state.as_deref() {
        Some("start") => true,
        Some("stop") => false,
        _ => {
            return Err(Error::invalid("state", "must be \"start\" or \"stop\""));
        }
    };
    Ok(ClientRequest::Typing {
        request_id: request_id.take(),
        conversation_id,
        started,
    })
}

pub(super) fn read(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    receipt(fields, request_id, true)
}

pub(super) fn delivered(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    receipt(fields, request_id, false)
}

/// `read` and `delivered`: the same fields, a different cursor.
fn receipt(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
    is_read: bool,
) -> Result<ClientRequest, Error> {
    let conversation_id = conversation_id(fields.conversation_id)?;
    let seq = required(fields.seq.map(Seq), "seq")?;
    let (read, delivered) = if is_read {
        (Some(seq), None)
    } else {
        (None, Some(seq))
    };
    Ok(ClientRequest::Receipt {
        request_id: request_id.take(),
        conversation_id,
        read,
        delivered,
    })
}

pub(super) fn presence(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    let away = match fields.status.as_deref() {
        Some("away") => true,
        Some("online") => false,
        _ => {
            return Err(Error::invalid("status", "must be \"online\" or \"away\""));
        }
    };
    Ok(ClientRequest::SetPresence {
        request_id: request_id.take(),
        away,
    })
}

pub(super) fn subscribe_presence(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    let user_ids = required(fields.user_ids, "user_ids")?
        .iter()
        .map(|text| UserId::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientRequest::SubscribePresence {
        request_id: request_id.take(),
        user_ids,
    })
}

pub(super) fn turn_credentials(
    fields: Fields<'_>,
    request_id: &mut Option<RequestId>,
) -> Result<ClientRequest, Error> {
    Ok(ClientRequest::IceServers {
        request_id: request_id.take(),
        ttl_secs: fields.ttl_secs,
    })
}
