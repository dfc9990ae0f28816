//! The byte layout of the program's map keys and values, mirroring the C structs in
//! `ebpf/relay.bpf.c` (which pins their sizes with `_Static_assert`). Encoding to byte
//! arrays keeps the loader free of `unsafe`: aya accepts byte arrays as map types.
//!
//! Addresses are 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`); ports and the
//! channel number in network byte order, as in the packet; the counter slot in host
//! byte order, as the program reads it.

use std::net::{IpAddr, SocketAddr};

use crate::binding::{Binding, Counters, Traffic};

/// `struct client_key`: the client's 5-tuple and channel.
pub(crate) type ClientKey = [u8; 40];
/// `struct client_value`: where client ChannelData goes, and its counter slot.
pub(crate) type ClientValue = [u8; 40];
/// `struct peer_key`: the peer's address and the relay address it sends to.
pub(crate) type PeerKey = [u8; 36];
/// `struct peer_value`: where the peer's datagrams go, and its counter slot.
pub(crate) type PeerValue = [u8; 44];
/// `struct traffic`: one CPU's counters of one slot.
pub(crate) type TrafficValue = [u64; 4];

fn ip(addr: SocketAddr) -> [u8; 16] {
    match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Writes the fields one after another.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
        self
    }
}

fn write(out: &mut [u8]) -> Writer<'_> {
    Writer { out, at: 0 }
}

pub(crate) fn client_key(b: &Binding) -> ClientKey {
    let mut key = [0; 40];
    write(&mut key)
        .put(&ip(b.client))
        .put(&ip(b.server))
        .put(&b.client.port().to_be_bytes())
        .put(&b.server.port().to_be_bytes())
        .put(&b.channel.to_be_bytes());
    key
}

pub(crate) fn client_value(b: &Binding, slot: u32) -> ClientValue {
    let mut value = [0; 40];
    write(&mut value)
        .put(&ip(b.relay))
        .put(&ip(b.peer))
        .put(&slot.to_ne_bytes())
        .put(&b.relay.port().to_be_bytes())
        .put(&b.peer.port().to_be_bytes());
    value
}

pub(crate) fn peer_key(b: &Binding) -> PeerKey {
    let mut key = [0; 36];
    write(&mut key)
        .put(&ip(b.peer))
        .put(&ip(b.relay))
        .put(&b.peer.port().to_be_bytes())
        .put(&b.relay.port().to_be_bytes());
    key
}

pub(crate) fn peer_value(b: &Binding, slot: u32) -> PeerValue {
    let mut value = [0; 44];
    write(&mut value)
        .put(&ip(b.client))
        .put(&ip(b.server))
        .put(&slot.to_ne_bytes())
        .put(&b.client.port().to_be_bytes())
        .put(&b.server.port().to_be_bytes())
        .put(&b.channel.to_be_bytes());
    value
}

/// Sums one slot's per-CPU counters.
pub(crate) fn counters<'a>(per_cpu: impl IntoIterator<Item = &'a TrafficValue>) -> Counters {
    per_cpu.into_iter().fold(Counters::default(), |sum, t| {
        sum + Counters {
            to_peer: Traffic {
                packets: t[0],
                bytes: t[1],
            },
            to_client: Traffic {
                packets: t[2],
                bytes: t[3],
            },
        }
    })
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
            channel: 0x4001,
        }
    }

    const MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

    #[test]
    fn client_entry_matches_the_c_structs() {
        let key = client_key(&binding());
        assert_eq!(&key[..12], &MAPPED);
        assert_eq!(&key[12..16], &[198, 18, 1, 2]);
        assert_eq!(&key[28..32], &[198, 18, 1, 1]);
        assert_eq!(&key[32..40], &[0x9c, 0x40, 0x0d, 0x96, 0x40, 0x01, 0, 0]);
        let value = client_value(&binding(), 7);
        assert_eq!(&value[12..16], &[198, 18, 2, 1]);
        assert_eq!(&value[28..32], &[198, 18, 2, 2]);
        assert_eq!(&value[32..36], &7u32.to_ne_bytes());
        assert_eq!(&value[36..40], &[0xc0, 0x00, 0xc3, 0x50]);
    }

    #[test]
    fn peer_entry_matches_the_c_structs() {
        let key = peer_key(&binding());
        assert_eq!(&key[12..16], &[198, 18, 2, 2]);
        assert_eq!(&key[28..32], &[198, 18, 2, 1]);
        assert_eq!(&key[32..36], &[0xc3, 0x50, 0xc0, 0x00]);
        let value = peer_value(&binding(), 9);
        assert_eq!(&value[12..16], &[198, 18, 1, 2]);
        assert_eq!(&value[28..32], &[198, 18, 1, 1]);
        assert_eq!(&value[32..36], &9u32.to_ne_bytes());
        assert_eq!(&value[36..44], &[0x9c, 0x40, 0x0d, 0x96, 0x40, 0x01, 0, 0]);
    }

    #[test]
    fn ipv6_addresses_are_stored_as_they_are() {
        let b = Binding {
            client: "[2001:db8:1::2]:40000".parse().unwrap(),
            server: "[2001:db8:1::1]:3478".parse().unwrap(),
            relay: "[2001:db8:2::1]:49152".parse().unwrap(),
            peer: "[2001:db8:2::2]:50000".parse().unwrap(),
            channel: 0x4000,
        };
        let key = client_key(&b);
        assert_eq!(&key[..4], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(key[15], 2);
    }

    #[test]
    fn per_cpu_counters_are_summed() {
        let sum = counters(&[[1, 10, 2, 20], [3, 30, 0, 0]]);
        assert_eq!(
            sum.to_peer,
            Traffic {
                packets: 4,
                bytes: 40
            }
        );
        assert_eq!(
            sum.to_client,
            Traffic {
                packets: 2,
                bytes: 20
            }
        );
    }
}
