//! The abuse limits every shard of the process shares.
//!
//! SO_REUSEPORT spreads one source's 5-tuples over all shards, so per-shard buckets would
//! multiply each per-source limit (and the all-sources ceiling) by the shard count. The
//! core takes no lock, so the buckets live here: one `Mutex<AbuseLimiters>` handed to
//! each shard's core as its [`RateLimits`]. The lock is short (a hash, a four-way set
//! scan and a bucket update) and taken only for unauthenticated input and failed
//! authentication, never on the relay path or for a request whose integrity verified:
//! under a spoofed flood the shards queue on it for the flood's packets only, which the
//! buckets then drop.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use turn_proto::hash::SeededState;
use turn_proto::ratelimit::{AbuseLimiters, Limited, RateLimits};

/// A handle on the process-wide buckets; clones share them.
#[derive(Debug, Clone)]
pub(super) struct SharedLimits(Arc<Mutex<AbuseLimiters>>);

impl SharedLimits {
    /// Full buckets at `now` for `unauthorized-ratelimit-rps` = `challenge_rate`, their
    /// sets keyed by `hasher`.
    pub(super) fn new(challenge_rate: u32, now: Instant, hasher: SeededState) -> Self {
        Self(Arc::new(Mutex::new(AbuseLimiters::new(
            challenge_rate,
            now,
            hasher,
        ))))
    }

    fn limiters(&self) -> std::sync::MutexGuard<'_, AbuseLimiters> {
        // Each update completes before the guard drops: a panicking holder leaves
        // consistent buckets.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RateLimits for SharedLimits {
    fn admit(&mut self, what: Limited, source: IpAddr, now: Instant, probe: bool) -> bool {
        self.limiters().admit(what, source, now, probe)
    }

    fn set_challenge_rate(&mut self, rate: u32, now: Instant) {
        self.limiters().set_challenge_rate(rate, now);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use turn_proto::ratelimit::RateLimit;

    use super::*;

    #[test]
    fn handles_share_the_buckets() {
        let now = Instant::now();
        let hasher = SeededState::new(&mut SmallRng::seed_from_u64(1));
        let mut first = SharedLimits::new(10, now, hasher);
        let mut second = first.clone();
        let source: IpAddr = "203.0.113.9".parse().unwrap();
        let burst = RateLimit::UNAUTHENTICATED_PER_SOURCE.burst;
        let admitted = (0..2 * burst)
            .filter(|i| {
                let handle = if i % 2 == 0 { &mut first } else { &mut second };
                handle.admit(Limited::Unauthenticated, source, now, false)
            })
            .count();
        assert_eq!(admitted, burst as usize, "one bucket, not one per handle");
    }
}
