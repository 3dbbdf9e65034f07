//! Storage quotas: how many bytes of media a tenant, and each of its users, may keep.
//!
//! Usage counts every byte of complete media and every byte declared by an unfinished upload,
//! so that many uploads begun at once cannot together overrun a quota that each alone would
//! fit. An upload is checked when it is declared (from its length, before any byte is taken);
//! its bytes then cannot exceed what it declared.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The quotas in bytes; `None` is no quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaQuotas {
    /// What all of a tenant's media may take together.
    pub tenant_bytes: Option<u64>,
    /// What one user's media may take.
    pub user_bytes: Option<u64>,
}

/// What a tenant and one of its users hold now, in bytes (complete media plus the declared
/// lengths of unfinished uploads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaUsage {
    /// The tenant's total.
    pub tenant_bytes: u64,
    /// The user's total.
    pub user_bytes: u64,
}

/// Which quota a refusal names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaScope {
    /// The tenant's.
    Tenant,
    /// The user's.
    User,
}

impl QuotaScope {
    /// The scope as the wire names it.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaScope::Tenant => "tenant",
            QuotaScope::User => "user",
        }
    }
}

impl MediaQuotas {
    /// Whether `more_bytes` fit next to `usage`. The user's quota is checked first: it is the
    /// one the user can do something about.
    ///
    /// # Errors
    /// [`Error::QuotaExceeded`] naming the quota, its size and what is left of it.
    pub fn admit(&self, usage: MediaUsage, more_bytes: u64) -> Result<()> {
        for (scope, quota, used) in [
            (QuotaScope::User, self.user_bytes, usage.user_bytes),
            (QuotaScope::Tenant, self.tenant_bytes, usage.tenant_bytes),
        ] {
            let Some(limit_bytes) = quota else { continue };
            let remaining_bytes = limit_bytes.saturating_sub(used);
            if more_bytes > remaining_bytes {
                return Err(Error::QuotaExceeded {
                    scope,
                    limit_bytes,
                    remaining_bytes,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTAS: MediaQuotas = MediaQuotas {
        tenant_bytes: Some(1_000),
        user_bytes: Some(300),
    };

    fn usage(tenant_bytes: u64, user_bytes: u64) -> MediaUsage {
        MediaUsage {
            tenant_bytes,
            user_bytes,
        }
    }

    #[test]
    fn what_fits_both_quotas_is_admitted_up_to_the_last_byte() {
        assert_eq!(QUOTAS.admit(usage(0, 0), 300), Ok(()));
        assert_eq!(QUOTAS.admit(usage(700, 0), 300), Ok(()));
        assert_eq!(QUOTAS.admit(usage(999, 299), 1), Ok(()));
        assert_eq!(
            QUOTAS.admit(usage(1_000, 300), 0),
            Ok(()),
            "empty files always fit"
        );
        assert_eq!(
            MediaQuotas::default().admit(usage(u64::MAX, u64::MAX), u64::MAX),
            Ok(())
        );
    }

    #[test]
    fn refusals_name_the_quota_and_what_is_left() {
        assert_eq!(
            QUOTAS.admit(usage(0, 250), 51),
            Err(Error::QuotaExceeded {
                scope: QuotaScope::User,
                limit_bytes: 300,
                remaining_bytes: 50,
            })
        );
        assert_eq!(
            QUOTAS.admit(usage(900, 0), 101),
            Err(Error::QuotaExceeded {
                scope: QuotaScope::Tenant,
                limit_bytes: 1_000,
                remaining_bytes: 100,
            })
        );
        assert_eq!(
            QUOTAS.admit(usage(1_200, 400), 1),
            Err(Error::QuotaExceeded {
                scope: QuotaScope::User,
                limit_bytes: 300,
                remaining_bytes: 0,
            }),
            "usage over a lowered quota leaves nothing"
        );
    }
}
