//! `user-quota`, `total-quota` and `bps-capacity`: limits on concurrent allocations
//! (answered with 486 Allocation Quota Reached).

use std::collections::HashMap;

/// Counts live allocations per real user id and in total.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    per_user: HashMap<Box<str>, u32>,
    total: u32,
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
    /// Limits as configured; 0 disables each.
    pub fn new(
        user_limit: u32,
        total_limit: u32,
        bps_per_allocation: u64,
        bps_capacity: u64,
    ) -> Self {
        Self {
            user_limit,
            total_limit,
            bps_per_allocation,
            bps_capacity,
            ..Self::default()
        }
    }

    /// Checks whether `user` may open one more allocation.
    pub fn admit(&self, user: &str) -> Result<(), QuotaExceeded> {
        if self.total_limit > 0 && self.total >= self.total_limit {
            return Err(QuotaExceeded::Total);
        }
        if self.user_limit > 0 && self.per_user.get(user).copied().unwrap_or(0) >= self.user_limit {
            return Err(QuotaExceeded::User);
        }
        if self.bps_capacity > 0
            && self.bps_per_allocation > 0
            && u64::from(self.total + 1).saturating_mul(self.bps_per_allocation) > self.bps_capacity
        {
            return Err(QuotaExceeded::Bandwidth);
        }
        Ok(())
    }

    /// Records a new allocation for `user`.
    pub fn add(&mut self, user: &str) {
        self.total += 1;
        *self.per_user.entry(user.into()).or_default() += 1;
    }

    /// Records the end of an allocation for `user`.
    pub fn remove(&mut self, user: &str) {
        self.total = self.total.saturating_sub(1);
        if let Some(count) = self.per_user.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                self.per_user.remove(user);
            }
        }
    }

    /// Live allocations.
    pub fn total(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_total_and_bandwidth_limits() {
        let mut quotas = Quotas {
            user_limit: 2,
            total_limit: 3,
            ..Quotas::default()
        };
        quotas.add("alice");
        quotas.add("alice");
        assert_eq!(quotas.admit("alice"), Err(QuotaExceeded::User));
        assert_eq!(quotas.admit("bob"), Ok(()));
        quotas.add("bob");
        assert_eq!(quotas.admit("carol"), Err(QuotaExceeded::Total));
        quotas.remove("alice");
        assert_eq!(quotas.admit("alice"), Ok(()));
        quotas.remove("alice");
        quotas.remove("bob");
        assert_eq!(quotas.total(), 0);
        assert!(quotas.per_user.is_empty(), "no entry left behind");

        let mut bandwidth = Quotas {
            bps_per_allocation: 1000,
            bps_capacity: 2500,
            ..Quotas::default()
        };
        bandwidth.add("a");
        bandwidth.add("b");
        assert_eq!(bandwidth.admit("c"), Err(QuotaExceeded::Bandwidth));
    }
}
