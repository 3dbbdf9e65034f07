//! Token-bucket rate limiting, as arithmetic.
//!
//! A bucket holds at most `burst` tokens and refills at `per_minute` tokens a minute; each
//! message takes one. The state is two integers and time is passed in, so the same bucket works
//! in an actor, in a test with a hand-moved clock, or in a future shared store.
//! Credit is counted in token-milliseconds-per-minute units (one token = 60,000 units, refill =
//! `per_minute` units per millisecond), which keeps the arithmetic exact in integers.

use crate::time::Timestamp;

const UNITS_PER_TOKEN: u64 = 60_000;

/// The shape of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained rate in tokens per minute; 0 turns limiting off.
    pub per_minute: u32,
    /// How many tokens can be spent at once after a quiet period (at least 1 when enabled).
    pub burst: u32,
}

impl RateLimit {
    /// Whether this limit admits everything.
    pub fn is_disabled(&self) -> bool {
        self.per_minute == 0
    }

    fn capacity_units(&self) -> u64 {
        u64::from(self.burst.max(1)) * UNITS_PER_TOKEN
    }
}

/// The kinds of request that have a rate limit of their own, per user per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActionClass {
    /// Sends, and each copy a forward makes.
    Messages,
    /// Edits, deletes and reactions.
    Operations,
    /// Changes to a conversation: members, roles, profile, archive, moderation.
    Changes,
    /// Live signals: read and delivered receipts, typing, presence.
    Signals,
    /// Searches.
    Search,
}

impl ActionClass {
    /// The name used in configuration keys (`<name>_per_minute`) and documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionClass::Messages => "messages",
            ActionClass::Operations => "operations",
            ActionClass::Changes => "changes",
            ActionClass::Signals => "signals",
            ActionClass::Search => "search",
        }
    }
}

/// One limit per action class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// For [`ActionClass::Messages`].
    pub messages: RateLimit,
    /// For [`ActionClass::Operations`].
    pub operations: RateLimit,
    /// For [`ActionClass::Changes`].
    pub changes: RateLimit,
    /// For [`ActionClass::Signals`].
    pub signals: RateLimit,
    /// For [`ActionClass::Search`].
    pub search: RateLimit,
}

impl RateLimits {
    /// Every class at the same limit.
    pub fn uniform(limit: RateLimit) -> Self {
        RateLimits {
            messages: limit,
            operations: limit,
            changes: limit,
            signals: limit,
            search: limit,
        }
    }

    /// The limit of one class.
    pub fn get(&self, class: ActionClass) -> RateLimit {
        match class {
            ActionClass::Messages => self.messages,
            ActionClass::Operations => self.operations,
            ActionClass::Changes => self.changes,
            ActionClass::Signals => self.signals,
            ActionClass::Search => self.search,
        }
    }
}

/// One client's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    credit_units: u64,
    last_refill: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn full(limit: &RateLimit, now: Timestamp) -> Self {
        TokenBucket {
            credit_units: limit.capacity_units(),
            last_refill: now,
        }
    }

    /// Takes one token if there is one.
    ///
    /// # Errors
    /// The number of milliseconds until a token will be available (always at least 1).
    pub fn try_take(&mut self, limit: &RateLimit, now: Timestamp) -> Result<(), u64> {
        if limit.is_disabled() {
            return Ok(());
        }
        let elapsed_ms = now.millis_since(self.last_refill);
        let refill = elapsed_ms.saturating_mul(u64::from(limit.per_minute));
        self.credit_units = self
            .credit_units
            .saturating_add(refill)
            .min(limit.capacity_units());
        if now > self.last_refill {
            self.last_refill = now;
        }
        if self.credit_units >= UNITS_PER_TOKEN {
            self.credit_units -= UNITS_PER_TOKEN;
            return Ok(());
        }
        let missing = UNITS_PER_TOKEN - self.credit_units;
        Err(missing.div_ceil(u64::from(limit.per_minute)).max(1))
    }

    /// Whether the bucket would be full at `now`: such a bucket carries no information and can
    /// be forgotten (a new full bucket behaves identically).
    pub fn is_full_at(&self, limit: &RateLimit, now: Timestamp) -> bool {
        let elapsed_ms = now.millis_since(self.last_refill);
        let refill = elapsed_ms.saturating_mul(u64::from(limit.per_minute));
        limit.is_disabled() || self.credit_units.saturating_add(refill) >= limit.capacity_units()
    }
}

#[cfg(test)]
mod tests;
