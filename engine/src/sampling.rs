//! Log sampling: which of a stream of events get a log line, so that whoever can cause the
//! events (anyone who can send a datagram or a request) cannot write to the log at their rate.
//!
//! A [`LogSampler`] lets through at most `burst` lines per interval: the first events of an
//! interval are logged, the rest are counted, and the next line that is logged says how many were
//! left out since the line before. Every event is meant to be counted in a metric as well; the log
//! only has to say that something is happening, by whom and from where. Pure: time is passed in.

use std::time::Duration;

use crate::time::Timestamp;

/// Decides which of a stream of events are logged (see the module documentation).
#[derive(Debug)]
pub struct LogSampler {
    interval_millis: u64,
    burst: u32,
    /// When the current interval began; `None` before the first event.
    interval_started_at: Option<Timestamp>,
    /// Lines logged in the current interval.
    n_logged_in_interval: u32,
    /// Events since the last line that were not logged.
    n_left_out: u64,
}

impl LogSampler {
    /// A sampler that logs at most one line per `interval`: the first event, then the first one
    /// at least an interval after the previous logged one.
    pub fn new(interval: Duration) -> Self {
        LogSampler::with_burst(interval, 1)
    }

    /// A sampler that logs at most `burst` lines (at least one) per `interval`.
    pub fn with_burst(interval: Duration, burst: u32) -> Self {
        LogSampler {
            interval_millis: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            burst: burst.max(1),
            interval_started_at: None,
            n_logged_in_interval: 0,
            n_left_out: 0,
        }
    }

    /// Records one event at `now`. `Some(n_left_out)` means log this one, saying that
    /// `n_left_out` events since the previous line were not logged; `None` means leave it out.
    /// A clock that went backwards starts a new interval, so a clock step never silences the log
    /// for longer than the interval.
    pub fn record(&mut self, now: Timestamp) -> Option<u64> {
        let new_interval = match self.interval_started_at {
            None => true,
            Some(started) => {
                now < started || now.as_millis() - started.as_millis() >= self.interval_millis
            }
        };
        if new_interval {
            self.interval_started_at = Some(now);
            self.n_logged_in_interval = 0;
        }
        if self.n_logged_in_interval < self.burst {
            self.n_logged_in_interval += 1;
            Some(std::mem::take(&mut self.n_left_out))
        } else {
            self.n_left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests;
