//! Operations on a running core: what metrics read at scrape time, and applying a
//! reloaded configuration without ending a single allocation.
//!
//! Reload rules (docs/operations.md):
//! - peer policy applies at once: permissions and channels to peers the new policy denies
//!   are removed, so their traffic stops with the reload; RFC 6062 peer connections to
//!   them close at the next sweep (within a second);
//! - quotas and `bps-capacity` apply to the next Allocate (live allocations are never
//!   evicted to fit a lower quota); `max-bps` also replaces live allocations' limiters;
//! - credentials and realm: an allocation whose cached key the new configuration can no
//!   longer derive (retired secret, removed user, new realm) keeps relaying until its
//!   current lifetime ends, but its next Refresh, CreatePermission or ChannelBind is
//!   refused with 401, so it lives at most to its next refresh;
//! - a new `stale-nonce` re-keys nonces: every client pays one 438 round on its next
//!   request.

use std::time::Instant;

use rtc_auth::constant_time::ct_eq;

use super::{AllocId, Allocation, Server, ServerConfig, nonces, userhashes};
use crate::auth::{Credentials, LongTermKey, PasswordAlgorithm};
use crate::bandwidth::TokenBucket;
use crate::quota::QuotaLimits;

/// What a reconfiguration changed in live allocations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Permissions removed because the new policy denies their peer.
    pub permissions_removed: usize,
    /// Channels removed for the same reason.
    pub channels_removed: usize,
    /// Allocations whose credentials the new configuration no longer accepts.
    pub credentials_retired: usize,
}

impl Reconfigured {
    /// Adds another shard's changes.
    pub fn merge(&mut self, other: &Reconfigured) {
        self.permissions_removed += other.permissions_removed;
        self.channels_removed += other.channels_removed;
        self.credentials_retired += other.credentials_retired;
    }
}

impl Server {
    /// Every live allocation with its id, in table order; metrics walk them at scrape
    /// time so gauges are exact without counters on the relay path.
    pub fn allocations(&self) -> impl Iterator<Item = (AllocId, &Allocation)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let allocation = slot.allocation.as_ref()?;
            let id = AllocId {
                index: index as u32,
                generation: slot.generation,
            };
            Some((id, allocation))
        })
    }

    /// Requests and answers refused by the per-source limits so far: (unauthenticated
    /// requests, 401/438 answers).
    pub fn rate_limited(&self) -> (u64, u64) {
        self.rate_limited
    }

    /// Applies a reloaded configuration (see the module doc for what changes when).
    /// Allocations, their relay sockets and their counters are kept.
    pub fn reconfigure(&mut self, config: ServerConfig, now: Instant) -> Reconfigured {
        // Config-dependent state is derived exactly as `new_shard` derives it.
        let userhashes = userhashes(&config, self.hasher);
        let features_changed = userhashes.is_empty() != self.userhashes.is_empty();
        if features_changed || config.stale_nonce != self.config.stale_nonce {
            self.nonces = nonces(&config, &self.shard, &userhashes);
        }
        self.userhashes = userhashes;
        self.quota_limits = QuotaLimits::of(&config);
        self.limits.set_challenge_rate(config.challenge_rate, now);
        let max_bps_changed = config.max_bps != self.config.max_bps;
        self.config = config;

        let mut changed = Reconfigured::default();
        let config = &self.config;
        let mut ids = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let Some(allocation) = slot.allocation.as_mut() else {
                continue;
            };
            ids.push(AllocId {
                index: index as u32,
                generation: slot.generation,
            });
            let client = allocation.tuple.client;
            let before = allocation.permissions.len();
            allocation.permissions.retain(|permission| {
                let keep = config.policy.check_permission(permission.ip).is_ok();
                if !keep {
                    tracing::info!(%client, peer = %permission.ip, "reload: permission removed, peer now denied");
                }
                keep
            });
            changed.permissions_removed += before - allocation.permissions.len();
            if max_bps_changed {
                let limit = (config.max_bps > 0).then(|| TokenBucket::new(config.max_bps, now));
                allocation.upstream_limit = limit.clone();
                allocation.downstream_limit = limit;
            }
            if let Some(key) = allocation.key
                && !derivable(config, &allocation.username, &key)
            {
                allocation.key = None;
                changed.credentials_retired += 1;
                tracing::info!(%client, user = &*allocation.user, "reload: credentials retired; allocation ends at its next refresh");
            }
        }
        for id in ids {
            // Routes to peers now denied (their permissions went above) or of allocations
            // now under `max-bps` end before their channels go.
            self.sync_routes(id, now);
            let policy = &self.config.policy;
            if let Some(allocation) = super::slot_mut(&mut self.slots, id) {
                let before = allocation.channels.len();
                allocation
                    .channels
                    .retain(|channel| policy.check(channel.peer).is_ok());
                changed.channels_removed += before - allocation.channels.len();
            }
        }
        changed
    }
}

/// True when `config` still yields `key` for `username`. Expiry is ignored (time 0):
/// a REST credential past its expiry keeps its call, as coturn does (§2.3); only a
/// retired secret, a removed user or a new realm retire it.
fn derivable(config: &ServerConfig, username: &str, key: &LongTermKey) -> bool {
    let algorithm = match key {
        LongTermKey::Md5(_) => PasswordAlgorithm::Md5,
        LongTermKey::Sha256(_) => PasswordAlgorithm::Sha256,
    };
    if matches!(config.credentials, Credentials::None) {
        return true;
    }
    match config
        .credentials
        .keys(username, &config.realm, 0, algorithm)
    {
        Ok((mut keys, _)) => keys.any(|candidate| ct_eq(candidate.as_bytes(), key.as_bytes())),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
