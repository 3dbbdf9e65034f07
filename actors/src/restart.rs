//! The restart policy supervisors apply to children that fail.
//!
//! A failed child is restarted after a capped, jittered exponential backoff; more than
//! `max_restarts` failures within `window` means restarting is not helping, and the supervisor
//! escalates (it stops itself, or for conversations refuses to start that one for a while).
//! Time is passed in, so the policy is tested without waiting.

use std::collections::VecDeque;
use std::time::Duration;

/// The shape of a restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Failures tolerated within `window` before escalating.
    pub max_restarts: usize,
    /// The window over which failures are counted.
    pub window: Duration,
    /// The delay before the first restart.
    pub base_delay: Duration,
    /// The longest delay between restarts.
    pub max_delay: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 5,
            window: Duration::from_secs(60),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart after this delay.
    RestartAfter(Duration),
    /// Too many failures: escalate.
    Escalate,
}

/// The failure history of one child.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker {
    /// Failure times (as durations since an arbitrary origin), oldest first, within the window.
    failures: VecDeque<Duration>,
}

impl RestartTracker {
    /// Records a failure at `now` and decides what to do. `jitter` in `[0, 1)` spreads restarts
    /// of many children apart.
    pub fn on_failure(
        &mut self,
        policy: &RestartPolicy,
        now: Duration,
        jitter: f64,
    ) -> RestartDecision {
        while let Some(oldest) = self.failures.front() {
            if now.saturating_sub(*oldest) > policy.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        let n_recent = self.failures.len();
        if n_recent > policy.max_restarts {
            return RestartDecision::Escalate;
        }
        let exponent = u32::try_from(n_recent.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        let delay = policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(policy.max_delay);
        let jittered = delay.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * 0.5);
        RestartDecision::RestartAfter(jittered.min(policy.max_delay))
    }

    /// The number of failures currently counted.
    pub fn n_recent_failures(&self) -> usize {
        self.failures.len()
    }
}

#[cfg(test)]
mod tests;

/// A reference to a supervised singleton that survives its restarts: the supervisor swaps the
/// actor behind it, and holders always reach the current incarnation.
pub struct SharedActorRef<M: ractor::Message> {
    current: std::sync::Arc<std::sync::RwLock<ractor::ActorRef<M>>>,
}

impl<M: ractor::Message> Clone for SharedActorRef<M> {
    fn clone(&self) -> Self {
        SharedActorRef {
            current: std::sync::Arc::clone(&self.current),
        }
    }
}

impl<M: ractor::Message> SharedActorRef<M> {
    /// A shared reference to `actor`.
    pub fn new(actor: ractor::ActorRef<M>) -> Self {
        SharedActorRef {
            current: std::sync::Arc::new(std::sync::RwLock::new(actor)),
        }
    }

    /// Points every holder at a restarted actor.
    pub fn replace(&self, actor: ractor::ActorRef<M>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = actor;
    }

    /// The current actor.
    pub fn get(&self) -> ractor::ActorRef<M> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
