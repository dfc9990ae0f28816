//! `user-quota`, `total-quota` and `bps-capacity`: limits on concurrent allocations
//! (answered with 486 Allocation Quota Reached).
//!
//! The counts are shared by every shard of the process (one lock, taken only when an
//! allocation starts or ends, never on the relay path); the limits are each shard's copy
//! of the configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Live allocations per real user id and in total, for the whole process.
#[derive(Debug, Default)]
struct Counts {
    per_user: HashMap<Box<str>, u32>,
    total: u32,
}

/// Quota limits and a handle on the process-wide counts.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    counts: Arc<Mutex<Counts>>,
    /// Max allocations per user id; 0 = unlimited.
    pub user_limit: u32,
    /// Max allocations in total; 0 = unlimited.
    pub total_limit: u32,
    /// Bytes per second each allocation reserves (its `max-bps`).
    pub bps_per_allocation: u64,
    /// Bytes per second all allocations may reserve together; 0 = unlimited.
    pub bps_capacity: u64,
}

/// Which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaExceeded {
    /// `user-quota`.
    User,
    /// `total-quota`.
    Total,
    /// `bps-capacity`.
    Bandwidth,
}

impl Quotas {
    /// Limits as configured (0 disables each), counting with `self`'s shared counts.
    pub fn with_limits(
        &self,
        user_limit: u32,
        total_limit: u32,
        bps_per_allocation: u64,
        bps_capacity: u64,
    ) -> Self {
        Self {
            counts: self.counts.clone(),
            user_limit,
            total_limit,
            bps_per_allocation,
            bps_capacity,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent whatever a panicking holder did: each update is one
        // statement.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more allocation for `user` if every limit allows it; check and count
    /// are one step, so two shards cannot both take the last place.
    pub fn admit(&self, user: &str) -> Result<(), QuotaExceeded> {
        let mut counts = self.counts();
        if self.total_limit > 0 && counts.total >= self.total_limit {
            return Err(QuotaExceeded::Total);
        }
        if self.user_limit > 0 && counts.per_user.get(user).copied().unwrap_or(0) >= self.user_limit
        {
            return Err(QuotaExceeded::User);
        }
        if self.bps_capacity > 0
            && self.bps_per_allocation > 0
            && u64::from(counts.total + 1).saturating_mul(self.bps_per_allocation)
                > self.bps_capacity
        {
            return Err(QuotaExceeded::Bandwidth);
        }
        counts.total += 1;
        *counts.per_user.entry(user.into()).or_default() += 1;
        Ok(())
    }

    /// Records the end of an allocation for `user` (or of an admitted one that failed).
    pub fn remove(&self, user: &str) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_user.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                counts.per_user.remove(user);
            }
        }
    }

    /// Live allocations, all shards.
    pub fn total(&self) -> u32 {
        self.counts().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_total_and_bandwidth_limits() {
        let quotas = Quotas::default().with_limits(2, 3, 0, 0);
        assert_eq!(quotas.admit("alice"), Ok(()));
        assert_eq!(quotas.admit("alice"), Ok(()));
        assert_eq!(quotas.admit("alice"), Err(QuotaExceeded::User));
        assert_eq!(quotas.admit("bob"), Ok(()));
        assert_eq!(quotas.admit("carol"), Err(QuotaExceeded::Total));
        assert_eq!(quotas.total(), 3, "refusals are not counted");
        quotas.remove("alice");
        assert_eq!(quotas.admit("alice"), Ok(()));
        quotas.remove("alice");
        quotas.remove("alice");
        quotas.remove("bob");
        assert_eq!(quotas.total(), 0);
        assert!(quotas.counts().per_user.is_empty(), "no entry left behind");

        let bandwidth = Quotas::default().with_limits(0, 0, 1000, 2500);
        assert_eq!(bandwidth.admit("a"), Ok(()));
        assert_eq!(bandwidth.admit("b"), Ok(()));
        assert_eq!(bandwidth.admit("c"), Err(QuotaExceeded::Bandwidth));
    }

    #[test]
    fn shards_share_the_counts() {
        let first = Quotas::default().with_limits(1, 2, 0, 0);
        let second = first.with_limits(1, 2, 0, 0);
        assert_eq!(first.admit("alice"), Ok(()));
        assert_eq!(second.admit("alice"), Err(QuotaExceeded::User));
        assert_eq!(second.admit("bob"), Ok(()));
        assert_eq!(first.admit("carol"), Err(QuotaExceeded::Total));
        second.remove("alice");
        assert_eq!(first.total(), 1);
    }
}
