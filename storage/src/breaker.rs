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

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use switchboard_engine::StoreError;
use switchboard_engine::ids::{ClientId, ConversationId, MessageId, Seq, TenantId, UserId};
use switchboard_engine::model::{
    Conversation, ConversationSnapshot, Member, MemberSettings, Message, MessageRef, ReadCursors,
};
use switchboard_engine::operations::{ConversationEvent, LogEntry};
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

#[async_trait]
impl<Inner: MessageStore> MessageStore for BreakerStore<Inner> {
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        members: &[Member],
    ) -> Result<(), StoreError> {
        self.guarded(self.inner.create_conversation(conversation, members))
            .await
    }

    async fn direct_conversation(
        &self,
        tenant_id: &TenantId,
        first: &UserId,
        second: &UserId,
    ) -> Result<Option<ConversationId>, StoreError> {
        self.guarded(self.inner.direct_conversation(tenant_id, first, second))
            .await
    }

    async fn load_conversation(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Option<ConversationSnapshot>, StoreError> {
        self.guarded(self.inner.load_conversation(tenant_id, conversation_id))
            .await
    }

    async fn conversations_of_user(
        &self,
        tenant_id: &TenantId,
        user_id: &UserId,
        after: Option<ConversationId>,
        limit: usize,
    ) -> Result<Vec<ConversationId>, StoreError> {
        self.guarded(
            self.inner
                .conversations_of_user(tenant_id, user_id, after, limit),
        )
        .await
    }

    async fn head(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
    ) -> Result<Seq, StoreError> {
        self.guarded(self.inner.head(tenant_id, conversation_id))
            .await
    }

    async fn append(&self, entries: Vec<AppendEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.guarded(self.inner.append(entries)).await
    }

    async fn entry_by_client_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        client_id: &ClientId,
    ) -> Result<Option<MessageRef>, StoreError> {
        self.guarded(
            self.inner
                .entry_by_client_id(tenant_id, conversation_id, client_id),
        )
        .await
    }

    async fn message_by_id(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.guarded(
            self.inner
                .message_by_id(tenant_id, conversation_id, message_id),
        )
        .await
    }

    async fn entries_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        self.guarded(
            self.inner
                .entries_after(tenant_id, conversation_id, after, limit),
        )
        .await
    }

    async fn thread_replies(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        root: MessageId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.guarded(
            self.inner
                .thread_replies(tenant_id, conversation_id, root, after, limit),
        )
        .await
    }

    async fn messages_after(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.guarded(
            self.inner
                .messages_after(tenant_id, conversation_id, after, limit),
        )
        .await
    }

    async fn messages_before(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.guarded(
            self.inner
                .messages_before(tenant_id, conversation_id, before, limit),
        )
        .await
    }

    async fn moderation_log(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        before: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<ConversationEvent>, StoreError> {
        self.guarded(
            self.inner
                .moderation_log(tenant_id, conversation_id, before, limit),
        )
        .await
    }

    async fn hide_message(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        message_id: MessageId,
    ) -> Result<(), StoreError> {
        self.guarded(
            self.inner
                .hide_message(tenant_id, conversation_id, user_id, message_id),
        )
        .await
    }

    async fn hidden_messages(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<BTreeSet<MessageId>, StoreError> {
        self.guarded(
            self.inner
                .hidden_messages(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<MemberSettings, StoreError> {
        self.guarded(
            self.inner
                .member_settings(tenant_id, conversation_id, user_id),
        )
        .await
    }

    async fn set_member_settings(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        settings: MemberSettings,
    ) -> Result<(), StoreError> {
        self.guarded(
            self.inner
                .set_member_settings(tenant_id, conversation_id, user_id, settings),
        )
        .await
    }

    async fn read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
    ) -> Result<ReadCursors, StoreError> {
        self.guarded(self.inner.read_cursors(tenant_id, conversation_id, user_id))
            .await
    }

    async fn set_read_cursors(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        cursors: ReadCursors,
    ) -> Result<(), StoreError> {
        self.guarded(
            self.inner
                .set_read_cursors(tenant_id, conversation_id, user_id, cursors),
        )
        .await
    }

    async fn count_unread(
        &self,
        tenant_id: &TenantId,
        conversation_id: ConversationId,
        user_id: &UserId,
        after: Seq,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.guarded(
            self.inner
                .count_unread(tenant_id, conversation_id, user_id, after, limit),
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.guarded(self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests;
