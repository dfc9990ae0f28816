//! Batched UDP I/O through nix's safe wrappers, nothing allocated per call.
//!
//! Receive: one `recvmmsg` reads up to [`BATCH`] datagrams into the shard's preallocated
//! slots. A call that returns fewer datagrams than asked for has emptied the socket, so
//! it also clears the socket's readiness: no second, empty call per wake-up just to see
//! EAGAIN (with edge-triggered epoll, a datagram that arrives later raises a new event).
//!
//! Send: datagrams to clients queue in an [`Outbox`] per listener socket while the
//! shard's ready tasks run, and one `sendmmsg` sends them all.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use std::io::IoSlice;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams per call.
pub(crate) const BATCH: usize = 32;

/// Room per datagram: the core's headroom and the UDP maximum, plus a cache line so the
/// slots do not all start on the same cache set.
const SLOT: usize = HEADROOM + 65_536 + 64;

/// Bytes left free in front of each received datagram: the core frames peer data as
/// ChannelData there, in place ([`turn_proto::PEER_HEADROOM`]).
const HEADROOM: usize = turn_proto::PEER_HEADROOM;

/// The receive slots of one shard.
pub(crate) struct RecvBatch {
    slots: Vec<u8>,
    /// Per address family (IPv4, IPv6): the kernel shrinks each header's address length
    /// to the last source's and nix does not restore it, so an IPv6 source read through
    /// a header last used for IPv4 would lose its address.
    headers: [MultiHeaders<SockaddrStorage>; 2],
    received: [(usize, Option<SocketAddr>); BATCH],
    count: usize,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            // Zeroed pages are mapped lazily: only slots that receive cost memory.
            slots: vec![0; BATCH * SLOT],
            headers: [
                MultiHeaders::preallocate(BATCH, None),
                MultiHeaders::preallocate(BATCH, None),
            ],
            received: [(0, None); BATCH],
            count: 0,
        }
    }

    /// Reads what `socket` (bound to an IPv6 address when `ipv6`) holds, up to [`BATCH`]
    /// datagrams; `Ok(BATCH)` means there may be more. Errors: `WouldBlock` when nothing
    /// was queued, or the socket's error (an ICMP error surfaces as ECONNREFUSED: not
    /// fatal).
    pub(crate) fn recv(&mut self, socket: &UdpSocket, ipv6: bool) -> io::Result<usize> {
        self.count = 0;
        let result = socket.try_io(Interest::READABLE, || {
            self.count = self.recv_now(socket, ipv6)?;
            if self.count < BATCH {
                // Emptied: clear readiness now.
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(())
            }
        });
        match result {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock && self.count == 0 => {
                Err(error)
            }
            Err(error) if error.kind() != io::ErrorKind::WouldBlock => Err(error),
            _ => Ok(self.count),
        }
    }

    fn recv_now(&mut self, socket: &UdpSocket, ipv6: bool) -> io::Result<usize> {
        let Self {
            slots,
            headers,
            received,
            ..
        } = self;
        let mut chunks = slots.chunks_mut(SLOT);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            let slot = chunks.next().unwrap_or_default();
            [IoSliceMut::new(
                slot.get_mut(HEADROOM..).unwrap_or_default(),
            )]
        });
        let results = match recvmmsg(
            socket.as_raw_fd(),
            &mut headers[usize::from(ipv6)],
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => results,
            Err(Errno::EAGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(errno) => return Err(errno.into()),
        };
        let mut count = 0;
        for (slot, message) in received.iter_mut().zip(results) {
            *slot = (message.bytes, message.address.as_ref().and_then(to_std));
            count += 1;
        }
        Ok(count)
    }

    /// The datagrams of the last [`Self::recv`] with their sources.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.received[..self.count]
            .iter()
            .zip(self.slots.chunks(SLOT))
            .filter_map(|(&(len, source), slot)| {
                Some((&slot[HEADROOM..(HEADROOM + len).min(SLOT)], source?))
            })
    }

    /// The datagrams of the last [`Self::recv`] with their sources, each preceded by
    /// [`HEADROOM`] free bytes, for [`turn_proto::Server::handle_peer`].
    pub(crate) fn iter_framed_mut(&mut self) -> impl Iterator<Item = (&mut [u8], SocketAddr)> + '_ {
        self.received[..self.count]
            .iter()
            .zip(self.slots.chunks_mut(SLOT))
            .filter_map(|(&(len, source), slot)| {
                Some((&mut slot[..(HEADROOM + len).min(SLOT)], source?))
            })
    }
}

/// Datagrams waiting for one `sendmmsg` on a listener socket.
pub(crate) struct Outbox {
    /// Payloads back to back.
    bytes: Vec<u8>,
    /// Where each payload starts and ends in `bytes`.
    ends: Vec<usize>,
    destinations: Vec<Option<SockaddrStorage>>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(BATCH * 1500),
            ends: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Queues `payload` for `to`; true when the outbox is now full and must be sent.
    pub(crate) fn push(&mut self, to: SocketAddr, payload: &[u8]) -> bool {
        self.bytes.extend_from_slice(payload);
        self.ends.push(self.bytes.len());
        self.destinations.push(Some(SockaddrStorage::from(to)));
        self.ends.len() >= BATCH
    }

    /// Nothing queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Sends what is queued without waiting, and empties the outbox; returns how many
    /// datagrams were dropped (socket buffer full, or destination refused), as single
    /// sends would drop them.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) -> usize {
        let queued = self.ends.len();
        let (mut done, mut dropped) = (0, 0);
        while done < queued {
            match self.send_from(socket, done) {
                // Socket buffer full: the rest is dropped.
                Ok(0) => {
                    dropped += queued - done;
                    break;
                }
                Ok(count) => done += count,
                // The first datagram's destination was refused (unreachable and the
                // like): skip it, send the others.
                Err(_) => {
                    done += 1;
                    dropped += 1;
                }
            }
        }
        self.bytes.clear();
        self.ends.clear();
        self.destinations.clear();
        dropped
    }

    fn send_from(&mut self, socket: &UdpSocket, first: usize) -> io::Result<usize> {
        let Self {
            bytes,
            ends,
            destinations,
            headers,
        } = self;
        let start = |index: usize| if index == 0 { 0 } else { ends[index - 1] };
        let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|slot| {
            let index = first + slot;
            match ends.get(index) {
                Some(&end) => [IoSlice::new(&bytes[start(index)..end])],
                None => [IoSlice::new(&[])],
            }
        });
        let count = ends.len() - first;
        let cmsgs: [ControlMessage<'_>; 0] = [];
        match sendmmsg(
            socket.as_raw_fd(),
            headers,
            iovs[..count].iter(),
            &destinations[first..],
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(results) => Ok(results.count()),
            Err(Errno::EAGAIN) => Ok(0),
            Err(errno) => Err(errno.into()),
        }
    }
}

fn to_std(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// After a receive call: None when the socket was empty, else whether it may hold more
/// (a full batch, or an ICMP error such as ECONNREFUSED, which is not fatal).
pub(crate) fn more_after(result: io::Result<usize>) -> Option<bool> {
    match result {
        Ok(count) => Some(count == BATCH),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => None,
        Err(_) => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_burst_in_batches_and_reports_an_empty_socket() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let sent: Vec<Vec<u8>> = (0..BATCH + 5).map(|i| vec![i as u8; 1 + i * 37]).collect();
        for datagram in &sent {
            sender.send_to(datagram, to).unwrap();
        }
        let big = vec![7u8; 60_000];
        sender.send_to(&big, to).unwrap();
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < sent.len() + 1 {
            receiver.readable().await.unwrap();
            match batch.recv(&receiver, false) {
                Ok(count) => {
                    assert!(count <= BATCH);
                    for (data, source) in batch.iter() {
                        assert_eq!(source, sender.local_addr().unwrap());
                        got.push(data.to_vec());
                    }
                }
                Err(error) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(&got[..sent.len()], &sent[..]);
        assert_eq!(got[sent.len()], big, "a 60 000-byte datagram arrives whole");
        let error = batch.recv(&receiver, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.iter().count(), 0);
        // After an emptying read, a new datagram wakes the reader again.
        sender.send_to(b"later", to).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), receiver.readable())
            .await
            .expect("woken by the new datagram")
            .unwrap();
        assert_eq!(batch.recv(&receiver, false).unwrap(), 1);
        assert_eq!(batch.iter().next().unwrap().0, b"later");
    }

    #[tokio::test]
    async fn outbox_sends_queued_datagrams_in_order_to_each_destination() {
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let second = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut outbox = Outbox::new();
        assert!(outbox.is_empty());
        for i in 0..BATCH - 1 {
            let to = if i % 2 == 0 { &first } else { &second };
            let full = outbox.push(to.local_addr().unwrap(), &vec![i as u8; 10 + i]);
            assert!(!full, "not full before {BATCH}");
        }
        assert!(
            outbox.push(first.local_addr().unwrap(), &[0xAA; 2000]),
            "full"
        );
        assert_eq!(outbox.flush(&sender), 0, "nothing dropped");
        assert!(outbox.is_empty());
        let mut buf = [0u8; 4096];
        for i in (0..BATCH - 1).step_by(2) {
            let (len, from) = first.recv_from(&mut buf).unwrap();
            assert_eq!(from, sender.local_addr().unwrap());
            assert_eq!(&buf[..len], &vec![i as u8; 10 + i][..]);
        }
        let (len, _) = first.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[0xAA; 2000][..]);
        for i in (1..BATCH - 1).step_by(2) {
            let (len, _) = second.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &vec![i as u8; 10 + i][..]);
        }
        // An IPv6 destination from an IPv4 socket is refused; the others still go.
        outbox.push("[::1]:9".parse().unwrap(), b"refused");
        outbox.push(second.local_addr().unwrap(), b"after");
        assert_eq!(outbox.flush(&sender), 1);
        let (len, _) = second.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"after");
    }

    #[tokio::test]
    async fn ipv6_sources() {
        let Ok(receiver) = UdpSocket::bind("[::1]:0").await else {
            return; // no IPv6 loopback on this host
        };
        let sender = std::net::UdpSocket::bind("[::1]:0").unwrap();
        sender
            .send_to(b"six", receiver.local_addr().unwrap())
            .unwrap();
        receiver.readable().await.unwrap();
        // The same slots read IPv4 first, as a shard's listener and relay sockets do.
        let mut batch = RecvBatch::new();
        let four = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let four_sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        four_sender
            .send_to(b"four", four.local_addr().unwrap())
            .unwrap();
        four.readable().await.unwrap();
        assert_eq!(batch.recv(&four, false).unwrap(), 1);
        assert_eq!(batch.recv(&receiver, true).unwrap(), 1);
        let (data, source) = batch.iter().next().unwrap();
        assert_eq!((data, source), (&b"six"[..], sender.local_addr().unwrap()));
    }
}
