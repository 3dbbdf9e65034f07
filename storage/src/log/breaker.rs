//! A circuit breaker in front of a store that lives on another machine (MongoDB).
//!
//! When the backend goes away, every operation would otherwise wait for the driver's server
//! selection timeout and then fail, and every conversation actor would keep retrying: the
//! engine would hammer a server that is trying to come back and keep its callers waiting.
//! [`BreakerStore`] counts consecutive [`StoreError::Unavailable`] failures; after
//! `failures_to_open` of them it *opens* and fails every call at once (with the last error, so
//! `/ready` still says what is wrong) for a cool-down that doubles on each failed probe up to
//! `max_cooldown`. Then it is *half-open*: exactly one call goes through as a probe (the others
//! still fail fast); its success closes the breaker, its failure opens it again. Any other
//! outcome (success, a conflict, a refusal) counts as the backend answering.
//!
//! The state machine, [`CircuitBreaker`], takes time as an argument so that its tests need no
//! clock; the store reads `tokio::time::Instant`, which tests could pause.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchboard_engine::StoreError;
use switchboard_engine::ports::{AppendEntry, AppendOutcome, MessageStore};
use tokio::time::Instant;

/// When a breaker opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive unavailable failures that open the breaker.
    pub failures_to_open: u32,
    /// How long it stays open the first time.
    pub initial_cooldown: Duration,
    /// The longest it stays open (the cool-down doubles on each failed probe).
    pub max_cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures_to_open: 5,
            initial_cooldown: Duration::from_millis(500),
            max_cooldown: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BreakerState {
    Closed {
        consecutive_failures: u32,
    },
    Open {
        until: Instant,
        cooldown: Duration,
    },
    /// A probe is in flight; `cooldown` is what a failed probe doubles.
    HalfOpen {
        cooldown: Duration,
    },
}

/// What [`CircuitBreaker::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Pass,
    /// Half-open: go ahead; this call is the probe.
    Probe,
    /// Open (or another probe is in flight): fail now.
    Refuse,
}

/// The breaker's state machine. Time is an argument.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    state: BreakerState,
    last_error: Option<String>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            state: BreakerState::Closed {
                consecutive_failures: 0,
            },
            last_error: None,
        }
    }

    /// Whether a call may go to the backend at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed { .. } => Admission::Pass,
            BreakerState::Open { until, cooldown } if now >= until => {
                self.state = BreakerState::HalfOpen { cooldown };
                Admission::Probe
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => Admission::Refuse,
        }
    }

    /// The backend answered.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed {
            consecutive_failures: 0,
        };
        self.last_error = None;
    }

    /// The backend was unavailable at `now`.
    pub fn on_failure(&mut self, now: Instant, error: String) {
        self.last_error = Some(error);
        self.state = match self.state {
            BreakerState::Closed {
                consecutive_failures,
            } if consecutive_failures + 1 < self.settings.failures_to_open => {
                BreakerState::Closed {
                    consecutive_failures: consecutive_failures + 1,
                }
            }
            BreakerState::Closed { .. } => BreakerState::Open {
                until: now + self.settings.initial_cooldown,
                cooldown: self.settings.initial_cooldown,
            },
            BreakerState::HalfOpen { cooldown } => {
                let cooldown = (cooldown * 2).min(self.settings.max_cooldown);
                BreakerState::Open {
                    until: now + cooldown,
                    cooldown,
                }
            }
            // A call admitted before the breaker opened failed late: it stays open as it is.
            BreakerState::Open { until, cooldown } => BreakerState::Open { until, cooldown },
        };
    }

    /// A probe ended without telling whether the backend answers (it was cancelled): the next
    /// call probes again.
    pub fn on_probe_abandoned(&mut self, now: Instant) {
        if let BreakerState::HalfOpen { cooldown } = self.state {
            self.state = BreakerState::Open {
                until: now,
                cooldown,
            };
        }
    }

    /// Why calls are refused now.
    pub fn refusal(&self, now: Instant) -> StoreError {
        let retry_in = match self.state {
            BreakerState::Open { until, .. } => until.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        StoreError::Unavailable(format!(
            "circuit open after repeated failures, next attempt in {} ms; last error: {}",
            retry_in.as_millis(),
            self.last_error.as_deref().unwrap_or("none")
        ))
    }
}

/// A [`MessageStore`] behind a [`CircuitBreaker`].
pub struct BreakerStore<Inner> {
    inner: Inner,
    breaker: Mutex<CircuitBreaker>,
}

/// Re-opens the half-open breaker if a probe is dropped before it finishes.
struct ProbeGuard<'breaker> {
    breaker: Option<&'breaker Mutex<CircuitBreaker>>,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker {
            breaker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .on_probe_abandoned(Instant::now());
        }
    }
}

impl<Inner: MessageStore> BreakerStore<Inner> {
    /// `inner` behind a closed breaker.
    pub fn new(inner: Inner, settings: BreakerSettings) -> Self {
        Self {
            inner,
            breaker: Mutex::new(CircuitBreaker::new(settings)),
        }
    }

    /// The store behind the breaker.
    pub fn inner(&self) -> &Inner {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CircuitBreaker> {
        // The breaker's state is a few fields, each write complete: a poisoned lock is usable.
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn guarded<Output>(
        &self,
        operation: impl Future<Output = Result<Output, StoreError>>,
    ) -> Result<Output, StoreError> {
        let admission = {
            let mut breaker = self.lock();
            let now = Instant::now();
            let admission = breaker.admit(now);
            if admission == Admission::Refuse {
                return Err(breaker.refusal(now));
            }
            admission
        };
        let mut probe = ProbeGuard {
            breaker: (admission == Admission::Probe).then_some(&self.breaker),
        };
        let result = operation.await;
        probe.breaker = None;
        let mut breaker = self.lock();
        match &result {
            Err(StoreError::Unavailable(reason)) => {
                breaker.on_failure(Instant::now(), reason.clone());
            }
            _ => breaker.on_success(),
        }
        result
    }
}

crate::log::delegate::delegating_message_store!(
    impl[Inner: MessageStore] for BreakerStore<Inner>,
    inner: inner,
    wrap: guarded,
    {
    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.guarded(self.inner.append(entries)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.guarded(self.inner.ping()).await
    }
    }
);

#[cfg(test)]
mod tests;
