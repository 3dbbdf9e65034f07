//! The one place that reads the system clock, and the id generator built on it.
//!
//! The engine takes time as an argument; [`SystemClock`] is what production passes in. Tests can
//! pass any other [`Clock`], such as [`ManualClock`]. Ids are ULIDs made from the clock's time and fresh random bits, so
//! they sort by creation time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_engine::ids::{AuditId, ConversationId, MediaId, MessageId, SessionId};
use switchboard_engine::ports::Clock;
use switchboard_engine::time::Timestamp;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// A clock that moves only when told to: for tests of anything that depends on time passing
/// (ban and mute expiry, edit windows, token lifetimes).
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn at(start: Timestamp) -> Self {
        ManualClock {
            millis: std::sync::atomic::AtomicU64::new(start.as_millis()),
        }
    }

    /// Moves the clock forward by `millis`.
    pub fn advance(&self, millis: u64) {
        self.millis
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // This is the designated clock.
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Makes time-ordered ids from a clock.
#[derive(Clone)]
pub struct IdGenerator {
    clock: Arc<dyn Clock>,
}

impl IdGenerator {
    /// An id generator reading `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        IdGenerator { clock }
    }

    fn parts(&self) -> (u64, u128) {
        (self.clock.now().as_millis(), fastrand::u128(..))
    }

    /// A new conversation id.
    pub fn conversation_id(&self) -> ConversationId {
        let (timestamp_ms, random) = self.parts();
        ConversationId::from_parts(timestamp_ms, random)
    }

    /// A new message id.
    pub fn message_id(&self) -> MessageId {
        let (timestamp_ms, random) = self.parts();
        MessageId::from_parts(timestamp_ms, random)
    }

    /// A new audit record id.
    pub fn audit_id(&self) -> AuditId {
        let (timestamp_ms, random) = self.parts();
        AuditId::from_parts(timestamp_ms, random)
    }

    /// A new media id.
    pub fn media_id(&self) -> MediaId {
        let (timestamp_ms, random) = self.parts();
        MediaId::from_parts(timestamp_ms, random)
    }

    /// A random token naming one writer of an upload.
    pub fn lease_token(&self) -> u128 {
        fastrand::u128(..)
    }

    /// A new session id.
    pub fn session_id(&self) -> SessionId {
        let (timestamp_ms, random) = self.parts();
        SessionId::from_parts(timestamp_ms, random)
    }

    /// The clock behind the generator.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
