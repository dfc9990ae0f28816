//! Caps on TCP and TLS client connections, for the whole process: in total
//! (`max-tcp-clients`) and per source (`max-tcp-clients-per-ip`, an IPv6 /64 counting as
//! one source, as for the abuse limits). A connection is admitted once, before any byte
//! of it is read, and gives its place back when it closes, on whichever shard it ends.
//! The lock is taken only then, never on the relay path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use turn_proto::ratelimit::source_key;

/// The caps and the connections counted against them; clones share the counts.
#[derive(Debug, Clone)]
pub struct Admission {
    counts: Arc<Mutex<Counts>>,
    total: usize,
    per_source: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Open connections by source; an entry exists only while its count is above zero,
    /// so the map never holds more entries than there are connections.
    by_source: HashMap<IpAddr, usize>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max-tcp-clients`.
    Total,
    /// `max-tcp-clients-per-ip`.
    Source,
}

/// A connection's place; given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    admission: Admission,
    source: IpAddr,
}

impl Admission {
    /// Caps of `total` connections and `per_source` per source (0 = unlimited).
    pub fn new(total: u32, per_source: u32) -> Self {
        Self {
            counts: Arc::default(),
            total: total as usize,
            per_source: per_source as usize,
        }
    }

    /// Counts a connection from `source` if both caps allow it.
    pub fn admit(&self, source: IpAddr) -> Result<Admitted, Refused> {
        let source = source_key(source);
        let mut counts = self.counts();
        if self.total > 0 && counts.total >= self.total {
            return Err(Refused::Total);
        }
        let from_source = counts.by_source.get(&source).copied().unwrap_or(0);
        if self.per_source > 0 && from_source >= self.per_source {
            return Err(Refused::Source);
        }
        counts.total += 1;
        counts.by_source.insert(source, from_source + 1);
        Ok(Admitted {
            admission: self.clone(),
            source,
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Each update completes under the guard: a panicking holder leaves them whole.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn total_and_per_source_caps_with_places_given_back() {
        let admission = Admission::new(3, 2);
        let a1 = admission.admit(ip("192.0.2.1")).unwrap();
        let _a2 = admission.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            admission.admit(ip("192.0.2.1")).unwrap_err(),
            Refused::Source
        );
        // One host's whole /64 is one source.
        let _b1 = admission.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(
            admission.admit(ip("192.0.2.9")).unwrap_err(),
            Refused::Total
        );
        drop(a1);
        let _a3 = admission
            .admit(ip("192.0.2.1"))
            .expect("its place came back");
        let clone = admission.clone();
        assert_eq!(
            clone.admit(ip("2001:db8::2")).unwrap_err(),
            Refused::Total,
            "shared"
        );
    }

    #[test]
    fn ipv6_hosts_count_by_slash_64_and_no_entry_outlives_its_connections() {
        let admission = Admission::new(0, 1);
        let first = admission.admit(ip("2001:db8:0:1::1")).unwrap();
        assert_eq!(
            admission.admit(ip("2001:db8:0:1::ffff")).unwrap_err(),
            Refused::Source
        );
        assert!(
            admission.admit(ip("2001:db8:0:2::1")).is_ok(),
            "another /64"
        );
        drop(first);
        assert!(admission.counts().by_source.is_empty());
    }
}
