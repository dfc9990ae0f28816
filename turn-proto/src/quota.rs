//! `user-quota`, `total-quota` and `bps-capacity`: limits on concurrent allocations
//! (answered with 486 Allocation Quota Reached).
//!
//! The limits are each shard's copy of the configuration; the counts are a
//! [`QuotaLedger`], which the driver shares between the shards of a process.

use std::collections::BTreeMap;

use super::server_config::ServerConfig;

/// The limits in force, from the configuration (0 disables each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Max allocations per user id.
    pub user: u32,
    /// Max allocations in total.
    pub total: u32,
    /// Bytes per second each allocation reserves (its `max-bps`).
    pub bps_per_allocation: u64,
    /// Bytes per second all allocations may reserve together.
    pub bps_capacity: u64,
    /// RFC 6062 peer connections per user id.
    pub user_tcp_connections: u32,
}

impl QuotaLimits {
    /// The limits `config` sets.
    pub fn of(config: &ServerConfig) -> Self {
        Self {
            user: config.user_quota,
            total: config.total_quota,
            bps_per_allocation: config.max_bps,
            bps_capacity: config.bps_capacity,
            user_tcp_connections: config.user_tcp_connections,
        }
    }
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

/// Where a core counts live allocations for its quotas.
///
/// A lone core counts its own ([`QuotaCounts`]). The shards of one process must share
/// their counts, and sharing needs a lock or atomics, which the core does not take: the
/// driver owns the shared counts and hands each shard a handle implementing this trait.
/// It is called only when an allocation starts or ends, never on the relay path.
pub trait QuotaLedger: Send {
    /// Counts one more allocation for `user` if every limit allows it; check and count
    /// must be one step, so two shards cannot both take the last place.
    fn admit(&mut self, user: &str, limits: &QuotaLimits) -> Result<(), QuotaExceeded>;
    /// Records the end of an allocation for `user` (or of an admitted one that failed).
    fn release(&mut self, user: &str);
    /// Counts one more RFC 6062 peer connection for `user` if `user-tcp-relay-quota`
    /// allows it (check and count in one step, as for allocations).
    fn admit_connection(&mut self, user: &str, limits: &QuotaLimits) -> bool;
    /// Records the end of `count` peer connections of `user`.
    fn release_connections(&mut self, user: &str, count: u32);
}

/// Live allocations per real user id and in total.
///
/// A `BTreeMap`: user ids come from authenticated requests, and an ordered map needs no
/// hash keys.
#[derive(Debug, Default)]
pub struct QuotaCounts {
    per_user: BTreeMap<Box<str>, u32>,
    total: u32,
    /// RFC 6062 peer connections per user id.
    connections: BTreeMap<Box<str>, u32>,
}

impl QuotaCounts {
    /// Live allocations counted.
    pub fn total(&self) -> u32 {
        self.total
    }
}

impl QuotaLedger for QuotaCounts {
    fn admit(&mut self, user: &str, limits: &QuotaLimits) -> Result<(), QuotaExceeded> {
        if limits.total > 0 && self.total >= limits.total {
            return Err(QuotaExceeded::Total);
        }
        if limits.user > 0 && self.per_user.get(user).copied().unwrap_or(0) >= limits.user {
            return Err(QuotaExceeded::User);
        }
        if limits.bps_capacity > 0
            && limits.bps_per_allocation > 0
            && u64::from(self.total + 1).saturating_mul(limits.bps_per_allocation)
                > limits.bps_capacity
        {
            return Err(QuotaExceeded::Bandwidth);
        }
        self.total += 1;
        *self.per_user.entry(user.into()).or_default() += 1;
        Ok(())
    }

    fn release(&mut self, user: &str) {
        self.total = self.total.saturating_sub(1);
        take(&mut self.per_user, user, 1);
    }

    fn admit_connection(&mut self, user: &str, limits: &QuotaLimits) -> bool {
        let count = self.connections.get(user).copied().unwrap_or(0);
        if limits.user_tcp_connections > 0 && count >= limits.user_tcp_connections {
            return false;
        }
        *self.connections.entry(user.into()).or_default() += 1;
        true
    }

    fn release_connections(&mut self, user: &str, count: u32) {
        take(&mut self.connections, user, count);
    }
}

/// Takes `count` from `user`'s entry, dropping it at zero so no entry outlives its user.
fn take(counts: &mut BTreeMap<Box<str>, u32>, user: &str, count: u32) {
    if let Some(left) = counts.get_mut(user) {
        *left = left.saturating_sub(count);
        if *left == 0 {
            counts.remove(user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(user: u32, total: u32, bps_per_allocation: u64, bps_capacity: u64) -> QuotaLimits {
        QuotaLimits {
            user,
            total,
            bps_per_allocation,
            bps_capacity,
            ..QuotaLimits::default()
        }
    }

    #[test]
    fn user_total_and_bandwidth_limits() {
        let mut counts = QuotaCounts::default();
        let l = limits(2, 3, 0, 0);
        assert_eq!(counts.admit("alice", &l), Ok(()));
        assert_eq!(counts.admit("alice", &l), Ok(()));
        assert_eq!(counts.admit("alice", &l), Err(QuotaExceeded::User));
        assert_eq!(counts.admit("bob", &l), Ok(()));
        assert_eq!(counts.admit("carol", &l), Err(QuotaExceeded::Total));
        assert_eq!(counts.total(), 3, "refusals are not counted");
        counts.release("alice");
        assert_eq!(counts.admit("alice", &l), Ok(()));
        counts.release("alice");
        counts.release("alice");
        counts.release("bob");
        assert_eq!(counts.total(), 0);
        assert!(counts.per_user.is_empty(), "no entry left behind");

        let mut connections = QuotaCounts::default();
        let l = QuotaLimits {
            user_tcp_connections: 2,
            ..QuotaLimits::default()
        };
        assert!(connections.admit_connection("alice", &l));
        assert!(connections.admit_connection("alice", &l));
        assert!(!connections.admit_connection("alice", &l));
        assert!(connections.admit_connection("bob", &l));
        connections.release_connections("alice", 2);
        connections.release_connections("bob", 1);
        assert!(connections.connections.is_empty(), "no entry left behind");

        let mut bandwidth = QuotaCounts::default();
        let l = limits(0, 0, 1000, 2500);
        assert_eq!(bandwidth.admit("a", &l), Ok(()));
        assert_eq!(bandwidth.admit("b", &l), Ok(()));
        assert_eq!(bandwidth.admit("c", &l), Err(QuotaExceeded::Bandwidth));
    }
}
