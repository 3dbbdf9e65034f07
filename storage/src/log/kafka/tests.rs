//! The pipeline's reply records: a refusal crosses the topic as the engine's own error, and
//! its bytes are those the earlier mirror type (`Refusal`, with interned texts) wrote, so
//! replies already in a topic still read.

use std::borrow::Cow;

use switchboard_engine::Error;
use switchboard_engine::ports::AppendOutcome;

use super::{Reply, ReplyOutcome};
use crate::codec;

fn reply_refusing(error: Error) -> Reply {
    Reply {
        origin: "n".to_owned(),
        request: 7,
        outcomes: vec![ReplyOutcome::from(AppendOutcome::Refused { error })],
    }
}

#[test]
fn a_refusal_reads_back_as_the_same_error() {
    let errors = [
        Error::invalid("thread_root", "a reply cannot start a thread"),
        Error::TooLarge {
            what: "text".into(),
            limit: 4,
            actual: 5,
        },
        Error::NotFound,
        Error::NotMember,
        Error::Forbidden {
            reason: "only the author may edit a message".into(),
        },
        Error::RateLimited { retry_after_ms: 9 },
        Error::Conflict {
            reason: "taken".to_owned(),
        },
        Error::TooManyConnections { limit: 3 },
        Error::unavailable("storage is unavailable"),
    ];
    for error in errors {
        let bytes = codec::encode(&reply_refusing(error.clone())).expect("replies encode");
        let reply: Reply = codec::decode("kafka replies", &bytes).expect("replies decode");
        let outcomes: Vec<AppendOutcome> = reply.outcomes.into_iter().map(Into::into).collect();
        assert_eq!(outcomes, [AppendOutcome::Refused { error }]);
    }
}

#[test]
fn a_refusal_has_the_bytes_the_earlier_mirror_type_wrote() {
    let bytes = codec::encode(&reply_refusing(Error::Invalid {
        field: Cow::Borrowed("f"),
        reason: "r".to_owned(),
    }))
    .expect("replies encode");
    // Format version, origin "n", request 7, one outcome: `Refused` (variant 2), `Invalid`
    // (variant 0), field "f", reason "r": postcard's varints and length-prefixed strings.
    assert_eq!(
        bytes,
        [codec::FORMAT_VERSION, 1, b'n', 7, 1, 2, 0, 1, b'f', 1, b'r']
    );
}
