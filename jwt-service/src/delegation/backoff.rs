//! Exponential backoff with jitter for homeserver and SFU retries (spec §5.1): starts at
//! 1 s, grows ×1.5, ±50 % jitter, capped at 60 s. Jitter spreads the retries of many
//! jobs that failed together (a homeserver restart) instead of hitting it in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// First delay.
pub const INITIAL: Duration = Duration::from_secs(1);
/// Growth per attempt.
pub const FACTOR: f64 = 1.5;
/// Largest delay before jitter.
pub const CAP: Duration = Duration::from_secs(60);

/// The delays of one retry sequence.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    random: RandomState,
    counter: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// A fresh sequence.
    pub fn new() -> Self {
        Self {
            next: INITIAL,
            random: RandomState::new(),
            counter: 0,
        }
    }

    /// The next delay: the current base with ±50 % jitter; the base then grows.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = base.mul_f64(FACTOR).min(CAP);
        base.mul_f64(0.5 + self.unit())
    }

    /// A pseudo-random number in [0, 1): SipHash with a random key over a counter,
    /// good enough for jitter without another dependency.
    fn unit(&mut self) -> f64 {
        let mut hasher = self.random.build_hasher();
        hasher.write_u64(self.counter);
        self.counter += 1;
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_caps() {
        let mut backoff = Backoff::new();
        let mut base = INITIAL.as_secs_f64();
        let mut seen = Vec::new();
        for _ in 0..30 {
            let d = backoff.next_delay().as_secs_f64();
            assert!(
                d >= base * 0.5 - 1e-9 && d < base * 1.5 + 1e-9,
                "{d} vs base {base}"
            );
            seen.push(d);
            base = (base * FACTOR).min(CAP.as_secs_f64());
        }
        assert!(seen.iter().all(|d| *d <= 90.0));
        // Jitter: not all delays at the cap are equal.
        let tail = &seen[20..];
        assert!(tail.iter().any(|d| (d - tail[0]).abs() > 1e-6));
    }
}
