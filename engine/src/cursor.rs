//! Opaque history cursors.
//!
//! A cursor names a position in one conversation's history and a direction. It is encoded as
//! URL-safe base64 of a small versioned binary record, bound to the conversation it was issued
//! for, so a cursor from one conversation cannot be replayed against another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::{ConversationId, Seq};
use crate::{Error, Result};

const CURSOR_VERSION: u8 = 1;
const ENCODED_LEN: usize = 1 + 1 + 16 + 8;

/// Which way a page of history walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Newest first: the next page holds messages with a lower seq.
    Backward,
    /// Oldest first: the next page holds messages with a higher seq.
    Forward,
}

/// A position in a conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    /// The conversation the cursor belongs to.
    pub conversation_id: ConversationId,
    /// The direction of travel.
    pub direction: Direction,
    /// Backward: the next page holds seqs strictly below this. Forward: strictly above it.
    pub seq: Seq,
}

impl HistoryCursor {
    /// Encodes the cursor as an opaque URL-safe string.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(ENCODED_LEN);
        bytes.push(CURSOR_VERSION);
        bytes.push(match self.direction {
            Direction::Backward => 0,
            Direction::Forward => 1,
        });
        bytes.extend_from_slice(&self.conversation_id.to_bytes());
        bytes.extend_from_slice(&self.seq.get().to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor and checks that it belongs to `conversation_id`.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `cursor`) if the text is not a cursor this server issued for
    /// this conversation.
    pub fn decode(text: &str, conversation_id: ConversationId) -> Result<Self> {
        let invalid = || Error::invalid("cursor", "is not a cursor for this conversation");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        if bytes.len() != ENCODED_LEN || bytes[0] != CURSOR_VERSION {
            return Err(invalid());
        }
        let direction = match bytes[1] {
            0 => Direction::Backward,
            1 => Direction::Forward,
            _ => return Err(invalid()),
        };
        let mut id_bytes = [0u8; 16];
        id_bytes.copy_from_slice(&bytes[2..18]);
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&bytes[18..26]);
        let cursor = HistoryCursor {
            conversation_id: ConversationId::from_bytes(id_bytes),
            direction,
            seq: Seq(u64::from_be_bytes(seq_bytes)),
        };
        if cursor.conversation_id != conversation_id {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

#[cfg(test)]
mod tests;
