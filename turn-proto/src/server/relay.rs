//! The data plane: peer datagrams to clients (ChannelData or Data indications) and
//! client ChannelData and Send indications to peers, with `max-bps` and the counters.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::{Server, count, slot_mut};
use crate::allocation::Allocation;
use crate::codec::address::decode_xor;
use crate::codec::attribute::AttrType;
use crate::codec::{ChannelData, Class, Message, MessageWriter, Method, TransactionId};
use crate::names::{AllocId, FiveTuple};
use crate::stats::Stats;
use crate::transmit::PEER_HEADROOM;
use crate::transmit::{Destination, Payload, Transmit};

/// Largest peer payload that still fits a Data indication's 16-bit length.
pub(super) const MAX_DATA_INDICATION_PAYLOAD: usize = 65_000;

impl Server {
    /// Handles a datagram from `peer` on allocation `id`'s relay socket. `datagram` is
    /// [`PEER_HEADROOM`] bytes of room followed by the payload: for a UDP client with a
    /// channel to `peer`, the core writes the ChannelData header there and the transmit
    /// points into `datagram`; otherwise it writes into `out`.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        id: AllocId,
        peer: SocketAddr,
        datagram: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        out.clear();
        let data = datagram.get(PEER_HEADROOM..)?;
        let fingerprint = self.config.fingerprint;
        let allocation = slot_mut(&mut self.slots, id)?;
        if !allocation.permits(peer.ip(), now) {
            self.stats.unroutable += 1;
            return None;
        }
        if let Some(limit) = allocation.downstream_limit.as_mut()
            && !limit.take(data.len(), now)
        {
            allocation.downstream.dropped += 1;
            self.stats.downstream.dropped += 1;
            return None;
        }
        let tuple = allocation.tuple;
        let len = data.len();
        let payload = if let Some(channel) = allocation.channel_to(peer, now) {
            if tuple.transport.is_stream() {
                // Padded to 4 bytes (RFC 8656 §12.5): written out whole.
                if !ChannelData::write(channel.number, data, true, out) {
                    self.stats.unroutable += 1;
                    return None;
                }
                Payload::Output
            } else {
                let header = ChannelData::header(channel.number, len)?;
                datagram[..PEER_HEADROOM].copy_from_slice(&header);
                Payload::Input(0..PEER_HEADROOM + len)
            }
        } else {
            if data.len() > MAX_DATA_INDICATION_PAYLOAD {
                self.stats.unroutable += 1;
                return None;
            }
            // Only the Data indication path needs a transaction id: ChannelData stays free of it.
            let transaction = TransactionId(self.rng.random());
            let mut writer = MessageWriter::new(out, Method::DATA, Class::Indication, transaction);
            writer
                .xor_address(AttrType::XOR_PEER_ADDRESS, peer)
                .attr(AttrType::DATA, data);
            if fingerprint {
                writer.fingerprint();
            }
            Payload::Output
        };
        count(&mut allocation.downstream, len);
        count(&mut self.stats.downstream, len);
        Some(Transmit {
            destination: Destination::Client(tuple),
            payload,
        })
    }

    pub(super) fn relay_channel_data(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
    ) -> Option<Transmit> {
        let Some(message) = ChannelData::parse(data) else {
            self.stats.malformed += 1;
            return None;
        };
        let Some(&id) = self.by_tuple.get(&tuple) else {
            self.stats.unroutable += 1;
            return None;
        };
        // One lookup: the allocation found here is the one that sends.
        let Some(allocation) = slot_mut(&mut self.slots, id) else {
            self.stats.unroutable += 1;
            return None;
        };
        let Some(peer) = allocation
            .channel(message.channel, now)
            .map(|channel| channel.peer)
            .filter(|peer| allocation.permits(peer.ip(), now))
        else {
            self.stats.unroutable += 1;
            return None;
        };
        send_to_peer(
            &mut self.stats,
            allocation,
            now,
            peer,
            4..4 + message.data.len(),
        )
    }

    pub(super) fn relay_send(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Option<Transmit> {
        let id = *self.by_tuple.get(&tuple)?;
        let (Some(peer), Some(range)) = (
            message.attr(AttrType::XOR_PEER_ADDRESS),
            message.attr_range(AttrType::DATA),
        ) else {
            self.stats.malformed += 1;
            return None;
        };
        let Ok(peer) = decode_xor(peer, &message.transaction()) else {
            self.stats.malformed += 1;
            return None;
        };
        let peer = self.internal_peer(peer);
        if self.config.policy.check(peer).is_err() {
            self.stats.peers_denied += 1;
            return None;
        }
        let allocation = slot_mut(&mut self.slots, id)?;
        if allocation.tcp || !allocation.permits(peer.ip(), now) {
            self.stats.unroutable += 1;
            return None;
        }
        send_to_peer(&mut self.stats, allocation, now, peer, range)
    }
}

/// Relays `range` of the client's input to `peer` from `allocation`'s relay of the peer's
/// family, after `max-bps`; counts it.
pub(super) fn send_to_peer(
    stats: &mut Stats,
    allocation: &mut Allocation,
    now: Instant,
    peer: SocketAddr,
    range: std::ops::Range<usize>,
) -> Option<Transmit> {
    let Some(relay) = allocation.relay_for(peer) else {
        stats.unroutable += 1;
        return None;
    };
    let len = range.len();
    if let Some(limit) = allocation.upstream_limit.as_mut()
        && !limit.take(len, now)
    {
        allocation.upstream.dropped += 1;
        stats.upstream.dropped += 1;
        return None;
    }
    count(&mut allocation.upstream, len);
    count(&mut stats.upstream, len);
    Some(Transmit {
        destination: Destination::Peer {
            socket: relay.socket,
            peer,
        },
        payload: Payload::Input(range),
    })
}
