//! Search cursors survive their trip through a client; anything else is refused.

use super::*;

#[test]
fn cursors_round_trip_and_anything_else_is_refused() {
    for cursor in [
        SearchCursor::Offset(0),
        SearchCursor::Offset(1_234),
        SearchCursor::Before {
            sent_at: Timestamp(1_767_355_200_000),
            message_id: MessageId::from_parts(7, 9),
        },
    ] {
        assert_eq!(SearchCursor::decode(&cursor.encode()), Ok(cursor));
    }
    for bad in ["", "!!", "AQ", "AgAAAAAAAAAA", "AQIAAAAAAAAAAA"] {
        assert!(
            matches!(SearchCursor::decode(bad), Err(crate::Error::Invalid { field, .. }) if field == "cursor"),
            "{bad}"
        );
    }
}
