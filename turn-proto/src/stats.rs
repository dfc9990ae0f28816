//! Counters for logs and metrics, cumulative since start, one set per shard.

use super::allocation::Traffic;

/// Counters for logs and metrics, cumulative since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations ended (refresh to 0, expiry, shutdown).
    pub allocations_ended: u64,
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Requests refused for missing or wrong credentials (401/441).
    pub auth_failures: u64,
    /// Requests refused for a stale or invalid nonce (438).
    pub stale_nonces: u64,
    /// Permissions, channels or sends refused by peer policy.
    pub peers_denied: u64,
    /// Allocations refused by quotas (486).
    pub quota_refusals: u64,
    /// Input that was neither STUN nor ChannelData, or malformed.
    pub malformed: u64,
    /// Relayed data dropped: no allocation, permission or channel.
    pub unroutable: u64,
    /// Client to peer traffic, all allocations.
    pub upstream: Traffic,
    /// Peer to client traffic, all allocations.
    pub downstream: Traffic,
}

impl Stats {
    /// Adds another shard's counters.
    pub fn merge(&mut self, other: &Stats) {
        self.allocations_created += other.allocations_created;
        self.allocations_ended += other.allocations_ended;
        self.binding_requests += other.binding_requests;
        self.auth_failures += other.auth_failures;
        self.stale_nonces += other.stale_nonces;
        self.peers_denied += other.peers_denied;
        self.quota_refusals += other.quota_refusals;
        self.malformed += other.malformed;
        self.unroutable += other.unroutable;
        self.upstream.merge(&other.upstream);
        self.downstream.merge(&other.downstream);
    }
}
