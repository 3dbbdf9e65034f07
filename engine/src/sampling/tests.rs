//! The sampler logs the first events of each interval and counts the rest, each logged line
//! counting what was left out before it.

use std::time::Duration;

use super::*;

const INTERVAL: Duration = Duration::from_secs(10);

fn at(seconds: u64) -> Timestamp {
    Timestamp(1_700_000_000_000 + seconds * 1000)
}

#[test]
fn the_first_event_is_logged_then_at_most_one_per_interval_counting_the_rest() {
    let mut sampler = LogSampler::new(INTERVAL);
    assert_eq!(sampler.record(at(0)), Some(0), "the first is logged");
    for _ in 0..999 {
        assert_eq!(
            sampler.record(at(0)),
            None,
            "then nothing in the same instant"
        );
    }
    assert_eq!(
        sampler.record(at(9)),
        None,
        "nor before the interval is over"
    );
    assert_eq!(
        sampler.record(at(10)),
        Some(1000),
        "the next line comes an interval later and counts the 1000 left out"
    );
    assert_eq!(sampler.record(at(15)), None);
    assert_eq!(sampler.record(at(20)), Some(1));
    assert_eq!(
        sampler.record(at(100)),
        Some(0),
        "after a quiet spell the next is logged at once"
    );
}

#[test]
fn a_clock_that_steps_back_does_not_silence_the_log() {
    let mut sampler = LogSampler::new(INTERVAL);
    assert_eq!(sampler.record(at(100)), Some(0));
    assert_eq!(sampler.record(at(101)), None);
    assert_eq!(
        sampler.record(at(50)),
        Some(1),
        "an hour back is not an hour of silence"
    );
    assert_eq!(sampler.record(at(51)), None);
}

#[test]
fn lines_per_stream_are_bounded_by_the_time_it_takes() {
    // 100 000 events spread evenly over 60 s: at most one line per 10 s, plus the first.
    let mut sampler = LogSampler::new(INTERVAL);
    let n_events: u64 = 100_000;
    let mut n_lines = 0;
    let mut n_reported = 0;
    for event in 0..n_events {
        let now = Timestamp(at(0).as_millis() + event * 60_000 / n_events);
        if let Some(n_left_out) = sampler.record(now) {
            n_lines += 1;
            n_reported += 1 + n_left_out;
        }
    }
    assert!(n_lines <= 1 + 60 / 10, "{n_lines} lines");
    assert!(n_lines >= 6, "{n_lines} lines: it still logs");
    // Every event up to the last line is logged or counted by a line (those after it wait for
    // the next line): the last line came at 50 s of 60.
    assert!(
        n_reported <= n_events && n_reported >= n_events * 5 / 6,
        "{n_reported} of {n_events} reported"
    );
}

#[test]
fn a_burst_lets_that_many_lines_through_per_interval() {
    let mut sampler = LogSampler::with_burst(INTERVAL, 3);
    let logged: Vec<Option<u64>> = (0..6).map(|_| sampler.record(at(0))).collect();
    assert_eq!(logged, [Some(0), Some(0), Some(0), None, None, None]);
    assert_eq!(
        sampler.record(at(10)),
        Some(3),
        "the next interval counts the 3 left out"
    );
    assert_eq!(sampler.record(at(11)), Some(0));
    assert_eq!(sampler.record(at(12)), Some(0));
    assert_eq!(sampler.record(at(13)), None);
}
