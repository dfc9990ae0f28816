//! Token buckets for `max-bps` (per allocation and direction).

use std::time::{Duration, Instant};

/// A byte-rate limiter with a one-second burst, refilled lazily on each packet.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket allowing `rate` bytes per second.
    pub fn new(rate: u64, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes `bytes` if available; false means drop the packet.
    pub fn take(&mut self, bytes: usize, now: Instant) -> bool {
        self.refill(now);
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }

    /// Takes `bytes` even when short, and returns how long the caller must pause before
    /// relaying more: a TCP relay slows its sender down instead of dropping bytes.
    pub fn delay(&mut self, bytes: usize, now: Instant) -> Duration {
        self.refill(now);
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            return Duration::ZERO;
        }
        let deficit = u128::from(bytes - self.tokens);
        self.tokens = 0;
        let wait = Duration::from_nanos((deficit * 1_000_000_000 / u128::from(self.rate)) as u64);
        // The refill until then pays the deficit.
        self.last = now + wait;
        wait
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        if !elapsed.is_zero() {
            let refill = (u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000) as u64;
            if refill > 0 {
                self.tokens = self.tokens.saturating_add(refill).min(self.rate);
                self.last = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert!(bucket.take(600, start));
        assert!(bucket.take(400, start));
        assert!(!bucket.take(1, start));
        assert!(!bucket.take(200, start + Duration::from_millis(100)));
        assert!(bucket.take(100, start + Duration::from_millis(100)));
        // Never more than one second's worth, however long the pause.
        assert!(!bucket.take(1001, start + Duration::from_secs(60)));
        assert!(bucket.take(1000, start + Duration::from_secs(60)));
    }

    #[test]
    fn delay_paces_a_stream_at_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert_eq!(bucket.delay(1000, start), Duration::ZERO);
        // 500 bytes beyond the budget: half a second of refill pays for them.
        assert_eq!(bucket.delay(500, start), Duration::from_millis(500));
        // Nothing refills before that debt is paid.
        let paid = start + Duration::from_millis(500);
        assert_eq!(bucket.delay(100, paid), Duration::from_millis(100));
        let later = paid + Duration::from_millis(100) + Duration::from_secs(1);
        assert_eq!(bucket.delay(1000, later), Duration::ZERO);
    }
}
