//! The relay ports this process holds, shared by the shards: which `(address, port)`
//! carries one of our UDP relay sockets (bound, reserved or parked) or RFC 6062 TCP relay
//! listeners.
//!
//! Finding a free port is then a walk over bits, not a `socket` + `bind` attempt per
//! taken port: with most of the range parked or in use, that attempt per port made each
//! allocation cost thousands of system calls. It is also what keeps two shards off one
//! TCP relay port: a relay listener carries SO_REUSEPORT (its connections to peers
//! leave from the same address), so the kernel would let two shards listen on one port
//! and split an allocation's incoming peer connections between them.
//!
//! Touched only when a relay socket is bound or closed (under one lock), never per
//! packet. A port another program holds is found by the bind that follows a claim; the
//! ledger then skips it for up to [`ELSEWHERE_FOR`], so a range crowded by other
//! programs' sockets (coturn's default range overlaps Linux's ephemeral ports, and an
//! SFU on the same host binds in it too) costs one failed bind per such port every few
//! seconds, not one per allocation, and a nearly full range is not a walk of thousands
//! of system calls per Allocate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a port found held by another program is skipped: long enough that a
/// crowded range is not re-probed per allocation, short enough that a port the other
/// program lets go is soon ours again.
pub(crate) const ELSEWHERE_FOR: Duration = Duration::from_secs(10);

/// Which kind of relay socket a port is held for (UDP and TCP ports are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PortKind {
    /// A UDP relay socket.
    Udp,
    /// An RFC 6062 TCP relay listener.
    Tcp,
}

/// One walk over `min..=max` from a random start, as coturn picks relay ports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Walk {
    /// The relay address.
    pub(crate) ip: IpAddr,
    /// `min-port`.
    pub(crate) min: u32,
    /// `max-port - min-port + 1`.
    pub(crate) span: u32,
    /// Where the walk starts, `0..span`.
    pub(crate) start: u32,
    /// Only even ports (EVEN-PORT).
    pub(crate) even: bool,
    /// The port after it too (EVEN-PORT with R: the next one is reserved).
    pub(crate) pair: bool,
}

impl Walk {
    /// The port at `step` of the walk, if it fits the request.
    fn port(&self, step: u32) -> Option<u16> {
        let port = u16::try_from(self.min + (self.start + step) % self.span).ok()?;
        if self.even && port % 2 == 1 {
            return None;
        }
        if self.pair && u32::from(port) + 1 > self.min + self.span - 1 {
            return None;
        }
        Some(port)
    }
}

/// The relay ports held by every shard (a clone shares them).
#[derive(Debug, Clone, Default)]
pub struct RelayPorts(Arc<Mutex<HashMap<(PortKind, IpAddr), PortSet>>>);

impl RelayPorts {
    /// Claims the first port at or after `step` of `walk` that no shard holds and no
    /// other program was found holding in the last [`ELSEWHERE_FOR`] before `now` (and,
    /// for a pair, the next one too): the port and the step it was found at; `None` when
    /// the rest of the walk is all taken.
    pub(crate) fn claim(
        &self,
        kind: PortKind,
        walk: &Walk,
        step: u32,
        now: Instant,
    ) -> Option<(u16, u32)> {
        let mut sets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let ports = sets.entry((kind, walk.ip)).or_default();
        if ports
            .elsewhere_since
            .is_some_and(|since| now.saturating_duration_since(since) >= ELSEWHERE_FOR)
        {
            ports.elsewhere = Bits::default();
            ports.elsewhere_since = None;
        }
        let taken = |port: u16| ports.ours.get(port) || ports.elsewhere.get(port);
        let (port, step) = (step..walk.span).find_map(|step| {
            let port = walk.port(step)?;
            let busy = taken(port) || (walk.pair && taken(port + 1));
            (!busy).then_some((port, step))
        })?;
        ports.ours.put(port, true);
        if walk.pair {
            ports.ours.put(port + 1, true);
        }
        Some((port, step))
    }

    /// Gives `address` back: its socket is closed.
    pub(crate) fn release(&self, kind: PortKind, address: SocketAddr) {
        let mut sets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ports) = sets.get_mut(&(kind, address.ip())) {
            ports.ours.put(address.port(), false);
        }
    }

    /// Gives back a claimed `address` whose bind failed at `now`: another program holds
    /// it (or the kernel refuses it), so walks skip it for a while.
    pub(crate) fn held_elsewhere(&self, kind: PortKind, address: SocketAddr, now: Instant) {
        let mut sets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ports) = sets.get_mut(&(kind, address.ip())) {
            ports.ours.put(address.port(), false);
            ports.elsewhere.put(address.port(), true);
            ports.elsewhere_since.get_or_insert(now);
        }
    }
}

/// The ports of one address and kind.
#[derive(Debug, Default)]
struct PortSet {
    /// Bound, reserved or parked by a shard.
    ours: Bits,
    /// Found held by another program since `elsewhere_since` (cleared all at once
    /// [`ELSEWHERE_FOR`] after it).
    elsewhere: Bits,
    elsewhere_since: Option<Instant>,
}

/// One bit per port number.
#[derive(Debug)]
struct Bits(Box<[u64; 1024]>);

impl Default for Bits {
    fn default() -> Self {
        Self(Box::new([0; 1024]))
    }
}

impl Bits {
    fn get(&self, port: u16) -> bool {
        self.0[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }

    fn put(&mut self, port: u16, on: bool) {
        let word = &mut self.0[usize::from(port / 64)];
        if on {
            *word |= 1 << (port % 64);
        } else {
            *word &= !(1 << (port % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn walk(min: u32, max: u32, start: u32) -> Walk {
        Walk {
            ip: Ipv4Addr::LOCALHOST.into(),
            min,
            span: max - min + 1,
            start,
            even: false,
            pair: false,
        }
    }

    #[test]
    fn claims_skip_held_ports_and_come_back_when_released() {
        let ports = RelayPorts::default();
        let t0 = Instant::now();
        let w = walk(100, 103, 2);
        let claimed: Vec<u16> = (0..4)
            .map(|_| ports.claim(PortKind::Udp, &w, 0, t0).unwrap().0)
            .collect();
        assert_eq!(claimed, [102, 103, 100, 101], "from the start, wrapping");
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, t0), None, "all held");
        assert!(
            ports.claim(PortKind::Tcp, &w, 0, t0).is_some(),
            "TCP ports are separate"
        );
        ports.release(PortKind::Udp, SocketAddr::new(w.ip, 101));
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, t0), Some((101, 3)));
        let other = Walk {
            ip: Ipv4Addr::new(127, 0, 0, 2).into(),
            ..w
        };
        assert!(
            ports.claim(PortKind::Udp, &other, 0, t0).is_some(),
            "each address has its own ports"
        );
    }

    #[test]
    fn ports_held_elsewhere_are_skipped_for_a_while() {
        let ports = RelayPorts::default();
        let t0 = Instant::now();
        let w = walk(100, 102, 0);
        let at = |port| SocketAddr::new(w.ip, port);
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, t0), Some((100, 0)));
        ports.held_elsewhere(PortKind::Udp, at(100), t0);
        let later = t0 + ELSEWHERE_FOR / 2;
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, later), Some((101, 1)));
        ports.held_elsewhere(PortKind::Udp, at(101), later);
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, later), Some((102, 2)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, later), None);
        assert!(
            ports.claim(PortKind::Tcp, &w, 0, later).is_some(),
            "only the kind whose bind failed"
        );
        // All found-elsewhere marks end together, ELSEWHERE_FOR after the first.
        let expired = t0 + ELSEWHERE_FOR;
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, expired), Some((100, 0)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 0, expired), Some((101, 1)));
    }

    #[test]
    fn a_later_step_skips_what_the_walk_passed() {
        let ports = RelayPorts::default();
        let t0 = Instant::now();
        let w = walk(100, 109, 0);
        assert_eq!(ports.claim(PortKind::Udp, &w, 5, t0), Some((105, 5)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 9, t0), Some((109, 9)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 9, t0), None);
    }

    #[test]
    fn even_ports_and_pairs() {
        let ports = RelayPorts::default();
        let t0 = Instant::now();
        let pair = Walk {
            even: true,
            pair: true,
            ..walk(101, 106, 0)
        };
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0, t0), Some((102, 1)));
        // 103 is held with 102; 104 and 105 are next.
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0, t0), Some((104, 3)));
        // 106 is even, but 107 lies beyond max-port.
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0, t0), None);
        let single = walk(101, 106, 0);
        assert_eq!(ports.claim(PortKind::Udp, &single, 0, t0), Some((101, 0)));
        assert_eq!(ports.claim(PortKind::Udp, &single, 0, t0), Some((106, 5)));
    }
}
