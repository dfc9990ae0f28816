//! Keyed hashing for the core's tables.
//!
//! std's `RandomState` draws its keys from the OS, which the core never touches; these
//! tables use the same SipHash-1-3 with keys drawn from the server's seed instead, so a
//! peer that chooses 5-tuples, tickets or source addresses still cannot aim at one bucket
//! without knowing the seed.

use std::collections::HashMap;
use std::hash::BuildHasher;

use rand::Rng;
use siphasher::sip::SipHasher13;

/// SipHash-1-3 keys, drawn once per server from its seeded RNG.
#[derive(Debug, Clone, Copy)]
pub struct SeededState {
    k0: u64,
    k1: u64,
}

impl SeededState {
    /// Fresh keys from `rng` (itself seeded by the driver).
    pub fn new(rng: &mut impl Rng) -> Self {
        Self {
            k0: rng.random(),
            k1: rng.random(),
        }
    }
}

impl BuildHasher for SeededState {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// A hash map keyed by [`SeededState`].
pub type Map<K, V> = HashMap<K, V, SeededState>;
