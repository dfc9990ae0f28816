//! Several cores in one process, one per thread: what they share, and how a UDP message
//! finds the core that owns its allocation.
//!
//! The kernel spreads UDP clients over the shards' SO_REUSEPORT sockets by a hash of the
//! 5-tuple, so a client's packets always reach the same shard and that shard owns its
//! allocation. Two requests name an allocation of another 5-tuple: a mobility Refresh
//! (RFC 8016: the client's address changed) and an Allocate with a RESERVATION-TOKEN.
//! Tickets and tokens carry the index of the shard that issued them; a shard that gets
//! one of another shard in a request that authenticates (every shard knows the
//! credentials and the nonce key) hands the message over ([`crate::Destination::Shard`])
//! and keeps handing over that 5-tuple's later packets while they keep coming; a spoofed
//! one is answered where it landed and adds no entry. Handing over costs the receiving
//! shard a lookup and the driver a copy: only moved clients pay it.

use std::time::{Duration, Instant};

use super::hash::{Map, SeededState};
use super::names::FiveTuple;

/// 5-tuples handed over to other shards, at most: past this, a spoofed flood of
/// ticket-carrying requests is answered locally (437) instead of growing the table.
const MAX_HANDED_OVER: usize = 65_536;

/// This core's place among the process's shards, and the nonce key all of them share
/// (quota counts are shared through the driver's [`super::quota::QuotaLedger`]).
#[derive(Debug, Clone)]
pub struct ShardContext {
    /// This shard's index, carried in the tickets and tokens it issues.
    pub index: u8,
    /// Shards in the process.
    pub count: u8,
    /// Nonce key and epoch: a nonce one shard issued checks on every other.
    pub(super) nonce_key: [u8; 32],
    pub(super) nonce_epoch: Instant,
}

impl ShardContext {
    /// Contexts for `count` shards (at least one) sharing a nonce key.
    pub fn group(count: u8, nonce_key: [u8; 32], now: Instant) -> Vec<ShardContext> {
        (0..count.max(1))
            .map(|index| ShardContext {
                index,
                count: count.max(1),
                nonce_key,
                nonce_epoch: now,
            })
            .collect()
    }

    /// The shard that issued a mobility ticket or reservation token whose first byte is
    /// `first`, when it is another valid shard.
    pub(super) fn other_owner(&self, first: u8) -> Option<u8> {
        (first != self.index && first < self.count).then_some(first)
    }
}

/// Where a 5-tuple's packets go instead of this shard.
#[derive(Debug, Clone, Copy)]
struct HandedOver {
    shard: u8,
    last: Instant,
}

/// The 5-tuples this shard hands over, forgotten after `idle` without a packet.
#[derive(Debug)]
pub(super) struct HandOvers {
    tuples: Map<FiveTuple, HandedOver>,
}

impl HandOvers {
    /// An empty table hashing with `hasher`.
    pub(super) fn new(hasher: SeededState) -> Self {
        Self {
            tuples: Map::with_hasher(hasher),
        }
    }

    /// The shard `tuple` is handed over to, noting the packet.
    pub(super) fn lookup(&mut self, tuple: &FiveTuple, now: Instant) -> Option<u8> {
        if self.tuples.is_empty() {
            return None;
        }
        let entry = self.tuples.get_mut(tuple)?;
        entry.last = now;
        Some(entry.shard)
    }

    /// Starts handing `tuple` over to `shard`; false when the table is full.
    pub(super) fn insert(&mut self, tuple: FiveTuple, shard: u8, now: Instant) -> bool {
        if self.tuples.len() >= MAX_HANDED_OVER {
            return false;
        }
        self.tuples.insert(tuple, HandedOver { shard, last: now });
        true
    }

    /// Forgets 5-tuples silent for `idle`.
    pub(super) fn sweep(&mut self, now: Instant, idle: Duration) {
        self.tuples
            .retain(|_, entry| now.saturating_duration_since(entry.last) < idle);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tuples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;
    use rand::SeedableRng;

    fn tuple(port: u16) -> FiveTuple {
        FiveTuple {
            transport: Transport::Udp,
            client: ([192, 0, 2, 1], port).into(),
            server: ([192, 0, 2, 2], 3478).into(),
        }
    }

    #[test]
    fn owners_are_other_valid_shards() {
        let group = ShardContext::group(3, [0; 32], Instant::now());
        assert_eq!(group.len(), 3);
        assert_eq!(group[1].other_owner(1), None, "own shard");
        assert_eq!(group[1].other_owner(2), Some(2));
        assert_eq!(group[1].other_owner(3), None, "no such shard");
        let single = ShardContext::group(0, [0; 32], Instant::now());
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].other_owner(1), None);
    }

    #[test]
    fn handed_over_tuples_expire_when_idle_and_are_bounded() {
        let start = Instant::now();
        let mut table = HandOvers::new(SeededState::new(&mut rand::rngs::SmallRng::seed_from_u64(
            1,
        )));
        assert!(table.insert(tuple(1), 2, start));
        assert_eq!(
            table.lookup(&tuple(1), start + Duration::from_secs(50)),
            Some(2)
        );
        assert_eq!(table.lookup(&tuple(2), start), None);
        table.sweep(start + Duration::from_secs(100), Duration::from_secs(60));
        assert_eq!(table.len(), 1, "a packet at 50 s kept it");
        table.sweep(start + Duration::from_secs(111), Duration::from_secs(60));
        assert_eq!(table.len(), 0);
        for port in 0..=u16::MAX {
            assert!(table.insert(tuple(port), 1, start));
        }
        assert_eq!(table.len(), MAX_HANDED_OVER);
        assert!(!table.insert(
            FiveTuple {
                client: ([192, 0, 2, 9], 1).into(),
                ..tuple(1)
            },
            1,
            start
        ));
    }
}
