//! Frames about the session rather than one message: ping, join and leave, typing, receipts,
//! presence and TURN credentials.

use switchboard_actors::session::ClientRequest;
use switchboard_engine::Error;
use switchboard_engine::ids::{Seq, UserId};

use super::{Frame, Parsed, conversation_id};
use crate::codec::requests::required;

pub(super) fn ping(frame: Frame<'_, '_>) -> Parsed {
    Ok(ClientRequest::Ping {
        request_id: frame.request_id.take(),
    })
}

pub(super) fn join(frame: Frame<'_, '_>) -> Parsed {
    Ok(ClientRequest::Join {
        conversation_id: conversation_id(frame.fields.conversation_id)?,
        since: frame.fields.since.map(Seq),
        request_id: frame.request_id.take(),
    })
}

pub(super) fn leave(frame: Frame<'_, '_>) -> Parsed {
    Ok(ClientRequest::Leave {
        conversation_id: conversation_id(frame.fields.conversation_id)?,
        request_id: frame.request_id.take(),
    })
}

pub(super) fn typing(frame: Frame<'_, '_>) -> Parsed {
    let conversation_id = conversation_id(frame.fields.conversation_id)?;
    let started = is_first_of("state", frame.fields.state.as_deref(), ["start", "stop"])?;
    Ok(ClientRequest::Typing {
        request_id: frame.request_id.take(),
        conversation_id,
        started,
    })
}

pub(super) fn read(frame: Frame<'_, '_>) -> Parsed {
    receipt(frame, true)
}

pub(super) fn delivered(frame: Frame<'_, '_>) -> Parsed {
    receipt(frame, false)
}

/// `read` and `delivered`: the same fields, a different cursor.
fn receipt(frame: Frame<'_, '_>, is_read: bool) -> Parsed {
    let conversation_id = conversation_id(frame.fields.conversation_id)?;
    let seq = required(frame.fields.seq.map(Seq), "seq")?;
    let (read, delivered) = if is_read {
        (Some(seq), None)
    } else {
        (None, Some(seq))
    };
    Ok(ClientRequest::Receipt {
        request_id: frame.request_id.take(),
        conversation_id,
        read,
        delivered,
    })
}

pub(super) fn presence(frame: Frame<'_, '_>) -> Parsed {
    let away = !is_first_of("status", frame.fields.status.as_deref(), ["online", "away"])?;
    Ok(ClientRequest::SetPresence {
        request_id: frame.request_id.take(),
        away,
    })
}

pub(super) fn subscribe_presence(frame: Frame<'_, '_>) -> Parsed {
    let user_ids = required(frame.fields.user_ids, "user_ids")?
        .iter()
        .map(|text| UserId::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientRequest::SubscribePresence {
        request_id: frame.request_id.take(),
        user_ids,
    })
}

pub(super) fn turn_credentials(frame: Frame<'_, '_>) -> Parsed {
    Ok(ClientRequest::IceServers {
        request_id: frame.request_id.take(),
        ttl_secs: frame.fields.ttl_secs,
    })
}

/// Whether a field that must be one of two words is the first of them.
fn is_first_of(field: &'static str, value: Option<&str>, words: [&str; 2]) -> Result<bool, Error> {
    let [first, second] = words;
    match value {
        Some(word) if word == first => Ok(true),
        Some(word) if word == second => Ok(false),
        _ => Err(Error::invalid(
            field,
            format!("must be \"{first}\" or \"{second}\""),
        )),
    }
}
