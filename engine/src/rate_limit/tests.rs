//! Data-driven token bucket tests: a script of `(time, outcome)` steps rendered as text.

use expect_test::{Expect, expect};

use super::*;

fn check(limit: RateLimit, times_ms: &[u64], expect: Expect) {
    let mut bucket = TokenBucket::full(&limit, Timestamp(0));
    let rendered: Vec<String> = times_ms
        .iter()
        .map(
            |&time_ms| match bucket.try_take(&limit, Timestamp(time_ms)) {
                Ok(()) => format!("{time_ms}:ok"),
                Err(retry_after_ms) => format!("{time_ms}:wait {retry_after_ms}"),
            },
        )
        .collect();
    expect.assert_eq(&rendered.join(" "));
}

#[test]
fn sixty_a_minute_with_burst_of_three() {
    let limit = RateLimit {
        per_minute: 60,
        burst: 3,
    };
    check(
        limit,
        &[0, 0, 0, 0, 500, 1000, 1000, 4000, 4000, 4000, 4000],
        expect![
            "0:ok 0:ok 0:ok 0:wait 1000 500:wait 500 1000:ok 1000:wait 1000 4000:ok 4000:ok 4000:ok 4000:wait 1000"
        ],
    );
}

#[test]
fn disabled_admits_everything() {
    let limit = RateLimit {
        per_minute: 0,
        burst: 0,
    };
    check(limit, &[0, 0, 0, 0], expect!["0:ok 0:ok 0:ok 0:ok"]);
}

#[test]
fn clock_going_backwards_never_mints_tokens() {
    let limit = RateLimit {
        per_minute: 6,
        burst: 1,
    };
    check(
        limit,
        &[10_000, 5_000, 10_000, 20_000],
        expect!["10000:ok 5000:wait 10000 10000:wait 10000 20000:ok"],
    );
}
