//! Per-source token buckets for unauthenticated requests and 401 answers
//! (turn-anchors.md §4.4, §6 #6), on by default unlike coturn's `unauthorized-ratelimit`.
//!
//! A spoofed UDP source makes the server answer a victim; the limiter bounds what one
//! source address (an IPv6 /64, since one host owns a whole /64) can get: at most
//! `burst` answers at once, then `rate` per second. A global bucket bounds all sources
//! together, so spraying random spoofed sources (each starting with a full bucket) still
//! meets a ceiling.
//!
//! The limits are the process's, not a shard's: SO_REUSEPORT spreads one source's
//! 5-tuples over every shard, so per-shard buckets would multiply each limit by the shard
//! count. A lone core owns its [`AbuseLimiters`]; the shards of a process share one
//! through the driver's [`RateLimits`] handle (the core takes no lock). They are asked
//! only for input that is not, or not yet, authenticated: never on the relay path.
//!
//! State is fixed: [`SETS`] × [`WAYS`] entries (4096 sources), set-associative with keyed
//! SipHash so an attacker cannot aim at one set; a new source takes an empty way or
//! evicts the one idle longest. Memory does not grow with the number of sources.
//!
//! Logging is fail2ban-friendly: one `warn` line when a source starts being refused,
//! `rate limited: refusing <what> from <address>`, and none until its bucket has refilled
//! completely (the flood stopped for `burst / rate` seconds), so a sustained flood costs
//! one line.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use super::hash::SeededState;

/// Number of sets; with [`WAYS`], 4096 sources are tracked at once.
pub const SETS: usize = 1024;
/// Entries per set.
pub const WAYS: usize = 4;

/// One token, in the buckets' fixed-point unit (micro-tokens keep integer math exact
/// down to one token per second).
const TOKEN: u64 = 1_000_000;

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens per second.
    pub rate: u32,
    /// Bucket size: requests allowed at once after idling.
    pub burst: u32,
}

impl RateLimit {
    /// coturn's default for `unauthorized-ratelimit-rps` (10/s per IP), burst 20.
    pub const CHALLENGES_PER_SOURCE: Self = Self {
        rate: 10,
        burst: 20,
    };
    /// All 401/438 answers together: 2000/s of ~150 bytes is 300 kB/s at most.
    pub const CHALLENGES_GLOBAL: Self = Self {
        rate: 2000,
        burst: 4000,
    };
    /// Binding and other requests without MESSAGE-INTEGRITY per source: enough for a
    /// NAT full of ICE agents gathering candidates.
    pub const UNAUTHENTICATED_PER_SOURCE: Self = Self {
        rate: 50,
        burst: 100,
    };
    /// All unauthenticated requests together.
    pub const UNAUTHENTICATED_GLOBAL: Self = Self {
        rate: 10_000,
        burst: 20_000,
    };
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    last: Instant,
    /// Refusing since the bucket was last full: one log line per flood, however long.
    refusing: bool,
}

impl Bucket {
    fn full(limit: RateLimit, now: Instant) -> Self {
        Self {
            tokens: u64::from(limit.burst) * TOKEN,
            last: now,
            refusing: false,
        }
    }

    /// Refills for the time since the last call and takes one token if there is one.
    /// A bucket found full ends a refusal episode: the source calmed down.
    fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_micros();
        let refill = elapsed.saturating_mul(u128::from(limit.rate));
        let capacity = u64::from(limit.burst) * TOKEN;
        self.tokens = u128::from(self.tokens)
            .saturating_add(refill)
            .min(u128::from(capacity)) as u64;
        self.last = now;
        if self.tokens == capacity {
            self.refusing = false;
        }
        if self.tokens >= TOKEN {
            self.tokens -= TOKEN;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    source: IpAddr,
    bucket: Bucket,
}

/// Token buckets per source address, plus one for all sources.
#[derive(Debug)]
pub struct SourceLimiter {
    /// What is limited, for the log line ("401 answers").
    what: &'static str,
    per_source: RateLimit,
    global_limit: RateLimit,
    global: Bucket,
    sets: Box<[[Option<Entry>; WAYS]]>,
    hasher: SeededState,
    /// Refusal episodes started (= log lines written).
    episodes: u64,
}

impl SourceLimiter {
    /// A limiter for `what`, every bucket full at `now`, its sets keyed by `hasher`.
    pub fn new(
        what: &'static str,
        per_source: RateLimit,
        global: RateLimit,
        now: Instant,
        hasher: SeededState,
    ) -> Self {
        Self {
            what,
            per_source,
            global_limit: global,
            global: Bucket::full(global, now),
            sets: vec![[None; WAYS]; SETS].into_boxed_slice(),
            hasher,
            episodes: 0,
        }
    }

    /// True when one more request or answer for `source` is allowed now; false means
    /// drop it silently. `global` false skips the all-sources bucket (a liveness probe
    /// from loopback, which no remote flood can spoof). Never allocates.
    pub fn admit(&mut self, source: IpAddr, now: Instant, global: bool) -> bool {
        let source = key(source);
        let index = (self.hasher.hash_one(source) % SETS as u64) as usize;
        let set = &mut self.sets[index];
        let way = match set
            .iter()
            .position(|e| e.is_some_and(|e| e.source == source))
        {
            Some(way) => way,
            None => {
                // An empty way, else the one idle longest.
                let way = set
                    .iter()
                    .position(Option::is_none)
                    .or_else(|| (0..WAYS).min_by_key(|&w| set[w].map(|e| e.bucket.last)))
                    .unwrap_or(0);
                set[way] = Some(Entry {
                    source,
                    bucket: Bucket::full(self.per_source, now),
                });
                way
            }
        };
        let Some(entry) = set[way].as_mut() else {
            return false;
        };
        // The per-source bucket first: a refused source must not drain the global one.
        let allowed = entry.bucket.take(self.per_source, now)
            && (!global || self.global.take(self.global_limit, now));
        if allowed {
            return true;
        }
        if entry.bucket.tokens < TOKEN {
            if !entry.bucket.refusing {
                entry.bucket.refusing = true;
                self.episodes += 1;
                tracing::warn!("rate limited: refusing {} from {}", self.what, source);
            }
        } else if !self.global.refusing {
            self.global.refusing = true;
            self.episodes += 1;
            tracing::warn!(
                "rate limited: refusing {} from all sources (global limit)",
                self.what
            );
        }
        false
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Requests that carry no verified MESSAGE-INTEGRITY (Binding always), before any
    /// work is done for them.
    Unauthenticated,
    /// 401 and 438 answers.
    Challenges,
}

/// Where a core asks whether spoofable input may be answered.
///
/// A lone core uses its own [`AbuseLimiters`]. The shards of a process must share one
/// set of buckets, which needs a lock or atomics the core does not take: the driver owns
/// it and hands each shard a handle implementing this trait. Called only for
/// unauthenticated input, never on the relay path.
pub trait RateLimits: Send {
    /// True when one more of `what` for `source` is allowed now; `probe` marks a
    /// liveness probe (a Binding from loopback), exempt from the all-sources bucket.
    fn admit(&mut self, what: Limited, source: IpAddr, now: Instant, probe: bool) -> bool;
    /// `unauthorized-ratelimit-rps` changed (reload): the 401/438 buckets start over.
    fn set_challenge_rate(&mut self, rate: u32, now: Instant);
}

/// The buckets for unauthenticated requests and for 401/438 answers.
#[derive(Debug)]
pub struct AbuseLimiters {
    unauthenticated: SourceLimiter,
    challenges: SourceLimiter,
    challenge_rate: u32,
    hasher: SeededState,
}

impl AbuseLimiters {
    /// Full buckets at `now`; `challenge_rate` is `unauthorized-ratelimit-rps` (401/438
    /// answers per source and second, burst twice that).
    pub fn new(challenge_rate: u32, now: Instant, hasher: SeededState) -> Self {
        Self {
            unauthenticated: SourceLimiter::new(
                "unauthenticated requests",
                RateLimit::UNAUTHENTICATED_PER_SOURCE,
                RateLimit::UNAUTHENTICATED_GLOBAL,
                now,
                hasher,
            ),
            challenges: challenge_limiter(challenge_rate, now, hasher),
            challenge_rate,
            hasher,
        }
    }
}

impl RateLimits for AbuseLimiters {
    fn admit(&mut self, what: Limited, source: IpAddr, now: Instant, probe: bool) -> bool {
        match what {
            Limited::Unauthenticated => self.unauthenticated.admit(source, now, !probe),
            Limited::Challenges => self.challenges.admit(source, now, true),
        }
    }

    fn set_challenge_rate(&mut self, rate: u32, now: Instant) {
        if rate != self.challenge_rate {
            // A new rate starts with full buckets: the state is only seconds of history.
            self.challenges = challenge_limiter(rate, now, self.hasher);
            self.challenge_rate = rate;
        }
    }
}

/// The 401/438 limiter for `unauthorized-ratelimit-rps` = `rate`, full at `now`.
fn challenge_limiter(rate: u32, now: Instant, hasher: SeededState) -> SourceLimiter {
    SourceLimiter::new(
        "401 answers",
        RateLimit {
            rate,
            burst: rate.saturating_mul(2),
        },
        RateLimit::CHALLENGES_GLOBAL,
        now,
        hasher,
    )
}

/// The address a bucket is kept for: IPv4 as is, IPv6 by /64.
fn key(source: IpAddr) -> IpAddr {
    match source {
        IpAddr::V4(_) => source,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limiter(now: Instant) -> SourceLimiter {
        SourceLimiter::new(
            "401 answers",
            RateLimit::CHALLENGES_PER_SOURCE,
            RateLimit::CHALLENGES_GLOBAL,
            now,
            SeededState::new(&mut SmallRng::seed_from_u64(7)),
        )
    }

    #[test]
    fn one_flooding_source_gets_burst_plus_rate_and_others_are_served() {
        let start = Instant::now();
        let mut limiter = limiter(start);
        let flooder = ip("203.0.113.9");
        let mut allowed = 0;
        // 1000 requests per second for 10 s.
        for ms in 0..10_000u64 {
            let now = start + Duration::from_millis(ms);
            if limiter.admit(flooder, now, true) {
                allowed += 1;
            }
            if ms % 1000 == 500 {
                assert!(
                    limiter.admit(ip("198.51.100.7"), now, true),
                    "another source at {ms} ms"
                );
            }
        }
        // Burst 20, then 10/s over 10 s (the last refill may land on the boundary).
        assert!((119..=121).contains(&allowed), "{allowed}");
        assert_eq!(limiter.episodes, 1, "one log line for the whole flood");
        // Quiet long enough to refill the bucket, then a new flood: a new line.
        let later = start + Duration::from_secs(13);
        for _ in 0..21 {
            limiter.admit(flooder, later, true);
        }
        assert_eq!(limiter.episodes, 2);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64() {
        let now = Instant::now();
        let mut limiter = limiter(now);
        for i in 0..20u16 {
            assert!(limiter.admit(ip(&format!("2001:db8:1:2::{i:x}")), now, true));
        }
        assert!(
            !limiter.admit(ip("2001:db8:1:2:ffff::1"), now, true),
            "same /64"
        );
        assert!(limiter.admit(ip("2001:db8:1:3::1"), now, true), "next /64");
        assert!(limiter.admit(ip("::ffff:192.0.2.1"), now, true));
        for _ in 0..19 {
            limiter.admit(ip("192.0.2.1"), now, true);
        }
        assert!(
            !limiter.admit(ip("::ffff:192.0.2.1"), now, true),
            "mapped = plain IPv4"
        );
    }

    #[test]
    fn spoofed_sources_meet_the_global_ceiling_and_state_stays_fixed() {
        let start = Instant::now();
        let mut limiter = limiter(start);
        let mut allowed = 0u32;
        // 100 000 distinct sources in one second: each has a full bucket, the global
        // bucket does not.
        for i in 0..100_000u32 {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000u32 + i));
            let now = start + Duration::from_micros(u64::from(i) * 10);
            if limiter.admit(source, now, true) {
                allowed += 1;
            }
        }
        let global = RateLimit::CHALLENGES_GLOBAL;
        assert!(allowed <= global.burst + global.rate + 1, "{allowed}");
        assert!(allowed >= global.burst, "{allowed}");
        assert_eq!(limiter.sets.len() * WAYS, 4096);
    }

    /// A liveness probe from loopback skips the all-sources bucket: a flood of spoofed
    /// sources that empties it cannot fail the health check (and restart the pod).
    #[test]
    fn probes_skip_the_global_bucket() {
        let start = Instant::now();
        let mut limits =
            AbuseLimiters::new(10, start, SeededState::new(&mut SmallRng::seed_from_u64(3)));
        let global = RateLimit::UNAUTHENTICATED_GLOBAL.burst;
        for i in 0..=global {
            let source = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000u32 + i));
            limits.admit(Limited::Unauthenticated, source, start, false);
        }
        let probe = ip("127.0.0.1");
        assert!(
            !limits.admit(Limited::Unauthenticated, probe, start, false),
            "not a probe"
        );
        assert!(
            limits.admit(Limited::Unauthenticated, probe, start, true),
            "a probe"
        );
    }

    #[test]
    fn a_refused_source_recovers_at_the_rate() {
        let start = Instant::now();
        let mut limiter = limiter(start);
        let source = ip("192.0.2.77");
        for _ in 0..20 {
            assert!(limiter.admit(source, start, true));
        }
        assert!(!limiter.admit(source, start, true));
        assert!(!limiter.admit(source, start + Duration::from_millis(99), true));
        assert!(limiter.admit(source, start + Duration::from_millis(200), true));
    }
}
