//! Capped exponential backoff with jitter, as arithmetic.
//!
//! Every adapter that retries a backend (MongoDB appends that conflicted, the Redis bus
//! reconnecting, Kafka topics waiting for the brokers, restarted background tasks, the start-up
//! store probe) waits by this one rule. The randomness is passed in, like time elsewhere in the
//! engine, so the rule is tested with fixed values.

use std::time::Duration;

/// Waits that double from `base` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry, before jitter.
    pub base: Duration,
    /// The longest wait, before jitter.
    pub max: Duration,
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first): `base * 2^attempt`, capped at
    /// `max`, then scaled into between half and all of that by `jitter` (0.0 to 1.0, clamped),
    /// so that retries that collided once do not collide again in step.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponential = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(30)))
            .min(self.max);
        exponential.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };

    #[test]
    fn waits_double_up_to_the_cap_and_jitter_spreads_them_over_the_upper_half() {
        let without_jitter: Vec<u128> = (0..6)
            .map(|attempt| BACKOFF.delay(attempt, 1.0).as_millis())
            .collect();
        assert_eq!(without_jitter, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(BACKOFF.delay(2, 0.0), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(2, 0.5), Duration::from_millis(300));
        assert_eq!(BACKOFF.delay(u32::MAX, 7.0), Duration::from_secs(1));
    }
}
