//! Token buckets for `max-bps` (per allocation and direction).

use std::time::Instant;

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
        let elapsed = now.saturating_duration_since(self.last);
        if !elapsed.is_zero() {
            let refill = (u128::from(self.rate) * elapsed.as_nanos() / 1_000_000_000) as u64;
            if refill > 0 {
                self.tokens = self.tokens.saturating_add(refill).min(self.rate);
                self.last = now;
            }
        }
        let bytes = bytes as u64;
        if self.tokens >= bytes {
            self.tokens -= bytes;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
