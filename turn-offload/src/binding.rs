//! What the driver installs: one channel binding of a UDP allocation, and what the
//! program counted for it.

use std::net::SocketAddr;
use std::ops::{Add, Sub};

use thiserror::Error;

/// One channel binding of a UDP allocation with a UDP client, as the kernel sees its
/// packets. All four addresses are concrete (no wildcard) and of one address family:
/// the program rewrites headers in place and cannot turn IPv4 into IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The client's address as the server sees it (source of its ChannelData).
    pub client: SocketAddr,
    /// The server's listening address the client sends to (not a wildcard address).
    pub server: SocketAddr,
    /// The allocation's relayed transport address.
    pub relay: SocketAddr,
    /// The peer the channel is bound to.
    pub peer: SocketAddr,
    /// The channel number (0x4000-0x7FFF: the leading bits 01 mark ChannelData).
    pub channel: u16,
}

/// Why a binding cannot go to the fast path; the driver keeps it in userspace.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindingError {
    /// Client and relay sides differ in address family (RFC 6156 allows it; the
    /// program rewrites in place and cannot).
    #[error("the four addresses of a fast-path binding must share one address family")]
    MixedFamilies,
    /// A wildcard or zero-port address cannot match a packet.
    #[error("{0} is not a concrete address and port")]
    NotConcrete(SocketAddr),
    /// Not a ChannelData channel number.
    #[error("channel number {0:#06x} is outside 0x4000-0x7FFF")]
    Channel(u16),
}

impl Binding {
    /// Checks what the program relies on.
    pub fn validate(&self) -> Result<(), BindingError> {
        let addrs = [self.client, self.server, self.relay, self.peer];
        if addrs.iter().any(|a| a.is_ipv4() != self.client.is_ipv4()) {
            return Err(BindingError::MixedFamilies);
        }
        if let Some(&bad) = addrs
            .iter()
            .find(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(BindingError::NotConcrete(bad));
        }
        if !(0x4000..=0x7FFF).contains(&self.channel) {
            return Err(BindingError::Channel(self.channel));
        }
        Ok(())
    }
}

/// Packets and bytes relayed in one direction. Bytes are application data bytes (the
/// peer's UDP payload, the ChannelData payload), as userspace counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams relayed.
    pub packets: u64,
    /// Application data bytes relayed.
    pub bytes: u64,
}

/// What the kernel relayed for one binding, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Client to peer (ChannelData in, UDP datagram out).
    pub to_peer: Traffic,
    /// Peer to client (UDP datagram in, ChannelData out).
    pub to_client: Traffic,
}

impl Counters {
    /// True when nothing was relayed.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

impl Add for Traffic {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            packets: self.packets.wrapping_add(other.packets),
            bytes: self.bytes.wrapping_add(other.bytes),
        }
    }
}

impl Sub for Traffic {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self {
            packets: self.packets.wrapping_sub(other.packets),
            bytes: self.bytes.wrapping_sub(other.bytes),
        }
    }
}

impl Add for Counters {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            to_peer: self.to_peer + other.to_peer,
            to_client: self.to_client + other.to_client,
        }
    }
}

impl Sub for Counters {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self {
            to_peer: self.to_peer - other.to_peer,
            to_client: self.to_client - other.to_client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            client: "198.18.1.2:40000".parse().unwrap(),
            server: "198.18.1.1:3478".parse().unwrap(),
            relay: "198.18.2.1:49152".parse().unwrap(),
            peer: "198.18.2.2:50000".parse().unwrap(),
            channel: 0x4000,
        }
    }

    #[test]
    fn validate_accepts_one_family_and_channel_numbers() {
        assert_eq!(binding().validate(), Ok(()));
        let top = Binding {
            channel: 0x7FFF,
            ..binding()
        };
        assert_eq!(top.validate(), Ok(()));
    }

    #[test]
    fn validate_refuses_what_the_program_cannot_match() {
        let mixed = Binding {
            peer: "[2001:db8::2]:50000".parse().unwrap(),
            ..binding()
        };
        assert_eq!(mixed.validate(), Err(BindingError::MixedFamilies));
        let wildcard = Binding {
            server: "0.0.0.0:3478".parse().unwrap(),
            ..binding()
        };
        assert_eq!(
            wildcard.validate(),
            Err(BindingError::NotConcrete(wildcard.server))
        );
        let no_port = Binding {
            relay: "198.18.2.1:0".parse().unwrap(),
            ..binding()
        };
        assert_eq!(
            no_port.validate(),
            Err(BindingError::NotConcrete(no_port.relay))
        );
        for channel in [0x3FFF, 0x8000, 0] {
            let bad = Binding {
                channel,
                ..binding()
            };
            assert_eq!(bad.validate(), Err(BindingError::Channel(channel)));
        }
    }

    #[test]
    fn counters_subtract_to_deltas() {
        let later = Counters {
            to_peer: Traffic {
                packets: 5,
                bytes: 500,
            },
            to_client: Traffic {
                packets: 2,
                bytes: 20,
            },
        };
        let earlier = Counters {
            to_peer: Traffic {
                packets: 3,
                bytes: 300,
            },
            to_client: Traffic::default(),
        };
        let delta = later - earlier;
        assert_eq!(
            delta.to_peer,
            Traffic {
                packets: 2,
                bytes: 200
            }
        );
        assert_eq!(delta + earlier, later);
        assert!(Counters::default().is_zero());
    }
}
