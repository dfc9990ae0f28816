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
//! packet. A port another program holds is found by the bind that follows a claim,
//! which then gives it back.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

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
    /// Claims the first port at or after `step` of `walk` that no shard holds (and, for a
    /// pair, the next one too): the port and the step it was found at; `None` when the
    /// rest of the walk is all taken.
    pub(crate) fn claim(&self, kind: PortKind, walk: &Walk, step: u32) -> Option<(u16, u32)> {
        let mut sets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let set = sets.entry((kind, walk.ip)).or_default();
        let (port, step) = (step..walk.span).find_map(|step| {
            let port = walk.port(step)?;
            let taken = set.held(port) || (walk.pair && set.held(port + 1));
            (!taken).then_some((port, step))
        })?;
        set.put(port, true);
        if walk.pair {
            set.put(port + 1, true);
        }
        Some((port, step))
    }

    /// Gives `address` back: its socket is closed, or could not be bound.
    pub(crate) fn release(&self, kind: PortKind, address: SocketAddr) {
        let mut sets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = sets.get_mut(&(kind, address.ip())) {
            set.put(address.port(), false);
        }
    }
}

/// One bit per port number.
#[derive(Debug)]
struct PortSet(Box<[u64; 1024]>);

impl Default for PortSet {
    fn default() -> Self {
        Self(Box::new([0; 1024]))
    }
}

impl PortSet {
    fn held(&self, port: u16) -> bool {
        self.0[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }

    fn put(&mut self, port: u16, held: bool) {
        let word = &mut self.0[usize::from(port / 64)];
        if held {
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
        let w = walk(100, 103, 2);
        let claimed: Vec<u16> = (0..4)
            .map(|_| ports.claim(PortKind::Udp, &w, 0).unwrap().0)
            .collect();
        assert_eq!(claimed, [102, 103, 100, 101], "from the start, wrapping");
        assert_eq!(ports.claim(PortKind::Udp, &w, 0), None, "all held");
        assert!(
            ports.claim(PortKind::Tcp, &w, 0).is_some(),
            "TCP ports are separate"
        );
        ports.release(PortKind::Udp, SocketAddr::new(w.ip, 101));
        assert_eq!(ports.claim(PortKind::Udp, &w, 0), Some((101, 3)));
        let other = Walk {
            ip: Ipv4Addr::new(127, 0, 0, 2).into(),
            ..w
        };
        assert!(
            ports.claim(PortKind::Udp, &other, 0).is_some(),
            "each address has its own ports"
        );
    }

    #[test]
    fn a_later_step_skips_what_the_walk_passed() {
        let ports = RelayPorts::default();
        let w = walk(100, 109, 0);
        assert_eq!(ports.claim(PortKind::Udp, &w, 5), Some((105, 5)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 9), Some((109, 9)));
        assert_eq!(ports.claim(PortKind::Udp, &w, 9), None);
    }

    #[test]
    fn even_ports_and_pairs() {
        let ports = RelayPorts::default();
        let pair = Walk {
            even: true,
            pair: true,
            ..walk(101, 106, 0)
        };
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0), Some((102, 1)));
        // 103 is held with 102; 104 and 105 are next.
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0), Some((104, 3)));
        // 106 is even, but 107 lies beyond max-port.
        assert_eq!(ports.claim(PortKind::Udp, &pair, 0), None);
        let single = walk(101, 106, 0);
        assert_eq!(ports.claim(PortKind::Udp, &single, 0), Some((101, 0)));
        assert_eq!(ports.claim(PortKind::Udp, &single, 0), Some((106, 5)));
    }
}
