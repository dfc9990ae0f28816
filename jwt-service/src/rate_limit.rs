//! An optional per-client limit on token requests (upstream has none): each token
//! request costs a homeserver round trip, so one client should not be able to make the
//! service hammer homeservers. A fixed one-minute window per client.
//!
//! A client is an IPv4 address or an IPv6 /64 (what one host or home network is given),
//! so rotating through the addresses of one /64 does not multiply the limit. Windows
//! live in a bounded concurrent cache (moka): it never holds more than [`MAX_TRACKED`]
//! clients, drops a window a minute after it started, evicts in constant time and never
//! scans the map or holds one lock across it. When more clients than that are active,
//! the least useful windows are forgotten, which makes the limit lenient for them rather
//! than letting memory grow.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

const WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at once (about 100 bytes each).
pub const MAX_TRACKED: u64 = 50_000;

/// Counts requests per client per minute.
pub struct RateLimiter {
    per_minute: u32,
    windows: Cache<ClientKey, Arc<Mutex<Window>>>,
}

/// Who a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

impl RateLimiter {
    /// At most `per_minute` requests per client in each one-minute window.
    pub fn new(per_minute: u32) -> Self {
        Self::with_capacity(per_minute, MAX_TRACKED)
    }

    fn with_capacity(per_minute: u32, capacity: u64) -> Self {
        Self {
            per_minute,
            windows: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(WINDOW)
                .build(),
        }
    }

    /// Counts one request from `ip` at `now`; `false` when it is over the limit.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        let window = self.windows.get_with(ClientKey::from(ip), || {
            Arc::new(Mutex::new(Window {
                start: now,
                count: 0,
            }))
        });
        let Ok(mut window) = window.lock() else {
            return true;
        };
        if now.saturating_duration_since(window.start) >= WINDOW {
            *window = Window {
                start: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
        window.count <= self.per_minute
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_minute", &self.per_minute)
            .field("tracked", &self.windows.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_window() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limiter.allow(a, t0));
        assert!(limiter.allow(a, t0));
        assert!(!limiter.allow(a, t0 + Duration::from_secs(10)));
        assert!(limiter.allow(b, t0));
        assert!(limiter.allow(a, t0 + WINDOW));
    }

    #[test]
    fn ipv6_hosts_count_per_64() {
        let limiter = RateLimiter::new(2);
        let now = Instant::now();
        let in_64 = |last: u16| IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]);
        assert!(limiter.allow(in_64(1), now));
        assert!(limiter.allow(in_64(2), now));
        assert!(
            !limiter.allow(in_64(3), now),
            "a new address in the same /64"
        );
        let next_64 = IpAddr::from([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert!(limiter.allow(next_64, now));
        // IPv4-mapped addresses count as the IPv4 address.
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(limiter.allow(v4, now) && limiter.allow(mapped, now));
        assert!(!limiter.allow(v4, now));
    }

    #[test]
    fn memory_stays_bounded_under_many_clients() {
        let limiter = RateLimiter::with_capacity(5, 1000);
        let now = Instant::now();
        for i in 0..20_000u32 {
            assert!(limiter.allow(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), now));
        }
        limiter.windows.run_pending_tasks();
        let tracked = limiter.windows.entry_count();
        assert!(tracked <= 1000, "{tracked} clients tracked");
    }
}
