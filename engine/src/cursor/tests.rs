//! Cursor round trips and the rejection of cursors that were not issued for a conversation.

use super::*;

#[test]
fn round_trips_and_is_bound_to_its_conversation() {
    let conversation_id = ConversationId::from_parts(1, 1);
    let other_conversation_id = ConversationId::from_parts(1, 2);
    for direction in [Direction::Backward, Direction::Forward] {
        let cursor = HistoryCursor {
            conversation_id,
            direction,
            seq: Seq(41),
        };
        let text = cursor.encode();
        assert!(
            text.chars()
                .all(|character| character.is_ascii_alphanumeric() || "-_".contains(character))
        );
        assert_eq!(HistoryCursor::decode(&text, conversation_id), Ok(cursor));
        assert!(HistoryCursor::decode(&text, other_conversation_id).is_err());
    }
}

#[test]
fn garbage_is_rejected() {
    let conversation_id = ConversationId::from_parts(1, 1);
    for garbage in ["", "abc", "!!!!", &"A".repeat(35), &"A".repeat(36)] {
        assert_eq!(
            HistoryCursor::decode(garbage, conversation_id),
            Err(Error::invalid(
                "cursor",
                "is not a cursor for this conversation"
            )),
            "{garbage:?}"
        );
    }
}
