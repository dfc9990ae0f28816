//! Batched UDP I/O through nix's safe wrappers, nothing allocated per call.
//!
//! Receive: one `recvmmsg` reads up to [`BATCH`] datagrams into the shard's preallocated
//! slots. A call that returns fewer datagrams than asked for has emptied the socket, so
//! it also clears the socket's readiness: no second, empty call per wake-up just to see
//! EAGAIN (with edge-triggered epoll, a datagram that arrives later raises a new event).
//!
//! Send: datagrams to clients queue in an [`Outbox`] per listener socket while the
//! shard's ready tasks run; one `sendmmsg` sends them all, runs of equal-sized datagrams
//! to one client as one UDP GSO message each.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use std::rc::Rc;
use std::sync::OnceLock;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
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

/// Most datagrams one UDP GSO send carries (the kernel's `UDP_MAX_SEGMENTS` is 64;
/// an outbox holds at most [`BATCH`]).
const MAX_SEGMENTS: usize = BATCH;
/// Most payload bytes of one GSO send: the datagrams together must fit one IP packet's
/// length field before the kernel segments them.
const MAX_GSO_BYTES: usize = 65_000;

/// Whether this kernel knows UDP GSO (`UDP_SEGMENT`, Linux 4.18+): asked once per process
/// with a throwaway socket.
fn gso_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .is_ok_and(|probe| setsockopt(&probe, sockopt::UdpGsoSegment, &1200).is_ok())
    })
}

/// Datagrams waiting for the next send on a listener socket, grouped into messages.
///
/// Datagrams to one client that follow each other with the same size (the last one may
/// be shorter) form one message sent with UDP GSO: one pass through the kernel's UDP and
/// IP layers for the whole run, split into datagrams only at the device (coturn measured
/// +91 % for one flow). The rest go out as one `sendmmsg` per run of single datagrams.
/// When the kernel refuses GSO (no `UDP_SEGMENT`, or a device without checksum offload,
/// EIO), this outbox sends every datagram on its own from then on.
pub(crate) struct Outbox {
    /// Payloads back to back.
    bytes: Vec<u8>,
    /// Per message: where its bytes end in `bytes`.
    ends: Vec<usize>,
    /// Per message: where it goes.
    destinations: Vec<Option<SockaddrStorage>>,
    targets: Vec<SocketAddr>,
    /// Per message: its first datagram's size (the GSO segment size) and how many
    /// datagrams it holds.
    segment: Vec<usize>,
    counts: Vec<usize>,
    /// Per message: a shorter datagram ended it (GSO allows only the last one shorter).
    closed: Vec<bool>,
    datagrams: usize,
    headers: MultiHeaders<SockaddrStorage>,
    /// Headers with room for the UDP_SEGMENT control message.
    gso_headers: MultiHeaders<SockaddrStorage>,
    gso: bool,
    /// GSO sends made, for tests and curiosity.
    gso_sends: u64,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(BATCH * 1500),
            ends: Vec::with_capacity(BATCH),
            destinations: Vec::with_capacity(BATCH),
            targets: Vec::with_capacity(BATCH),
            segment: Vec::with_capacity(BATCH),
            counts: Vec::with_capacity(BATCH),
            closed: Vec::with_capacity(BATCH),
            datagrams: 0,
            headers: MultiHeaders::preallocate(BATCH, None),
            gso_headers: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u16))),
            gso: gso_supported(),
            gso_sends: 0,
        }
    }

    /// Queues `payload` for `to`; true when the outbox is now full and must be sent.
    pub(crate) fn push(&mut self, to: SocketAddr, payload: &[u8]) -> bool {
        self.datagrams += 1;
        let len = payload.len();
        if let Some(last) = self.ends.len().checked_sub(1) {
            let start = if last == 0 { 0 } else { self.ends[last - 1] };
            let joins = self.gso
                && self.targets[last] == to
                && !self.closed[last]
                && len > 0
                && len <= self.segment[last]
                && self.counts[last] < MAX_SEGMENTS
                && self.ends[last] - start + len <= MAX_GSO_BYTES;
            if joins {
                self.bytes.extend_from_slice(payload);
                self.ends[last] = self.bytes.len();
                self.counts[last] += 1;
                self.closed[last] = len < self.segment[last];
                return self.datagrams >= BATCH;
            }
        }
        self.bytes.extend_from_slice(payload);
        self.ends.push(self.bytes.len());
        self.destinations.push(Some(SockaddrStorage::from(to)));
        self.targets.push(to);
        self.segment.push(len);
        self.counts.push(1);
        self.closed.push(false);
        self.datagrams >= BATCH
    }

    /// Nothing queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Sends what is queued without waiting, and empties the outbox; returns how many
    /// datagrams were dropped (socket buffer full, or destination refused), as single
    /// sends would drop them.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) -> usize {
        let messages = self.ends.len();
        let (mut done, mut dropped) = (0, 0);
        while done < messages {
            let sent = if self.counts[done] == 1 {
                self.send_singles(socket, done)
            } else if self.gso {
                match self.send_gso(socket, done) {
                    Err(errno) => {
                        if gso_refused_for_good(errno) {
                            self.gso = false;
                            tracing::warn!(
                                %errno,
                                "UDP GSO refused by the kernel; sending datagrams one by one"
                            );
                        }
                        dropped += self.send_split(socket, done);
                        Ok(1)
                    }
                    sent => sent,
                }
            } else {
                dropped += self.send_split(socket, done);
                Ok(1)
            };
            match sent {
                // Socket buffer full: the rest is dropped.
                Ok(0) => {
                    dropped += self.counts[done..].iter().sum::<usize>();
                    break;
                }
                Ok(count) => done += count,
                // The first datagram's destination was refused (unreachable and the
                // like): skip it, send the others.
                Err(_) => {
                    dropped += self.counts[done];
                    done += 1;
                }
            }
        }
        self.bytes.clear();
        self.ends.clear();
        self.destinations.clear();
        self.targets.clear();
        self.segment.clear();
        self.counts.clear();
        self.closed.clear();
        self.datagrams = 0;
        dropped
    }

    /// One `sendmmsg` of the single datagrams from `first` on, up to the next GSO message.
    fn send_singles(&mut self, socket: &UdpSocket, first: usize) -> Result<usize, Errno> {
        let run = self.counts[first..]
            .iter()
            .take_while(|&&count| count == 1)
            .count();
        let Self {
            bytes,
            ends,
            destinations,
            headers,
            ..
        } = self;
        let iovs = message_slices(bytes, ends, first, run);
        let cmsgs: [ControlMessage<'_>; 0] = [];
        send(
            socket,
            headers,
            &iovs[..run],
            &destinations[first..first + run],
            cmsgs,
        )
    }

    /// One `sendmmsg` of the GSO messages from `first` on that share its segment size.
    fn send_gso(&mut self, socket: &UdpSocket, first: usize) -> Result<usize, Errno> {
        let size = self.segment[first];
        let run = (first..self.ends.len())
            .take_while(|&m| self.counts[m] > 1 && self.segment[m] == size)
            .count();
        let Self {
            bytes,
            ends,
            destinations,
            gso_headers,
            ..
        } = self;
        let iovs = message_slices(bytes, ends, first, run);
        let segment = u16::try_from(size).unwrap_or(u16::MAX);
        let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
        let sent = send(
            socket,
            gso_headers,
            &iovs[..run],
            &destinations[first..first + run],
            cmsgs,
        )?;
        self.gso_sends += sent as u64;
        Ok(sent)
    }

    /// Message `message`'s datagrams one by one (GSO refused); returns how many were
    /// dropped.
    fn send_split(&mut self, socket: &UdpSocket, message: usize) -> usize {
        let Self {
            bytes,
            ends,
            destinations,
            segment,
            counts,
            headers,
            ..
        } = self;
        let whole = range(ends, message);
        let (size, count) = (segment[message], counts[message]);
        let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|slot| {
            let from = whole.start + slot * size;
            if slot < count {
                [IoSlice::new(&bytes[from..(from + size).min(whole.end)])]
            } else {
                [IoSlice::new(&[])]
            }
        });
        let destinations = [destinations[message]; BATCH];
        let cmsgs: [ControlMessage<'_>; 0] = [];
        let mut done = 0;
        while done < count {
            match send(
                socket,
                headers,
                &iovs[done..count],
                &destinations[done..count],
                cmsgs,
            ) {
                Ok(0) => break,
                Ok(sent) => done += sent,
                Err(_) => return count - done,
            }
        }
        count - done
    }

    /// GSO sends made so far.
    #[cfg(test)]
    pub(crate) fn gso_sends(&self) -> u64 {
        self.gso_sends
    }
}

/// Datagrams to peers produced by one batch of client input: consecutive ones leaving
/// the same relay socket go out together, one `sendmmsg`, and runs of equal-sized
/// datagrams to one peer (a client sending a burst) as one UDP GSO message.
pub(crate) struct PeerBatch {
    socket: Option<Rc<UdpSocket>>,
    outbox: Outbox,
}

impl PeerBatch {
    pub(crate) fn new() -> Self {
        Self {
            socket: None,
            outbox: Outbox::new(),
        }
    }

    /// Queues `payload` from `socket` to `to`; returns how many datagrams were dropped by
    /// the sends this made room with.
    pub(crate) fn push(&mut self, socket: &Rc<UdpSocket>, to: SocketAddr, payload: &[u8]) -> usize {
        let mut dropped = 0;
        if self
            .socket
            .as_ref()
            .is_some_and(|current| !Rc::ptr_eq(current, socket))
        {
            dropped += self.flush();
        }
        self.socket = Some(socket.clone());
        if self.outbox.push(to, payload) {
            dropped += self.flush();
        }
        dropped
    }

    /// Sends what is queued; returns how many datagrams were dropped.
    pub(crate) fn flush(&mut self) -> usize {
        match self.socket.take() {
            Some(socket) if !self.outbox.is_empty() => self.outbox.flush(&socket),
            _ => 0,
        }
    }
}

/// Errors of a GSO send that will not go away: the kernel or the socket cannot do GSO
/// (no `UDP_SEGMENT`; a route through IPsec or a device without checksum offload, EIO;
/// checksums off, EINVAL). A segment larger than the path MTU (EMSGSIZE) and the errors
/// a plain send has too concern one message only.
fn gso_refused_for_good(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::EIO | Errno::EINVAL | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP
    )
}

/// One I/O slice per message for `sendmmsg`: messages `first..first + run` of the
/// buffer, empty slices after them.
fn message_slices<'a>(
    bytes: &'a [u8],
    ends: &[usize],
    first: usize,
    run: usize,
) -> [[IoSlice<'a>; 1]; BATCH] {
    std::array::from_fn(|slot| {
        if slot < run {
            [IoSlice::new(&bytes[range(ends, first + slot)])]
        } else {
            [IoSlice::new(&[])]
        }
    })
}

/// Where message `message` lies in the outbox's bytes.
fn range(ends: &[usize], message: usize) -> std::ops::Range<usize> {
    let start = if message == 0 { 0 } else { ends[message - 1] };
    start..ends[message]
}

/// One `sendmmsg` without waiting: how many messages went, 0 when the socket buffer is
/// full.
fn send<'a, const N: usize>(
    socket: &UdpSocket,
    headers: &'a mut MultiHeaders<SockaddrStorage>,
    iovs: &'a [[IoSlice<'a>; 1]],
    destinations: &[Option<SockaddrStorage>],
    cmsgs: [ControlMessage<'a>; N],
) -> Result<usize, Errno> {
    match sendmmsg(
        socket.as_raw_fd(),
        headers,
        iovs.iter(),
        destinations,
        cmsgs,
        MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(results) => Ok(results.count()),
        Err(Errno::EAGAIN) => Ok(0),
        Err(errno) => Err(errno),
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

    /// Reads `count` datagrams from `socket` (blocking, bounded).
    fn receive(socket: &std::net::UdpSocket, count: usize) -> Vec<Vec<u8>> {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = vec![0u8; 65_536];
        (0..count)
            .map(|_| {
                let (len, _) = socket.recv_from(&mut buf).expect("a datagram");
                buf[..len].to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn equal_datagrams_to_one_client_go_out_as_one_gso_message() {
        assert!(gso_supported(), "this kernel has UDP GSO (4.18+)");
        let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to, elsewhere) = (client.local_addr().unwrap(), other.local_addr().unwrap());
        let mut outbox = Outbox::new();
        // A video frame: equal packets and a shorter last one; then audio, then the next
        // frame, with a datagram to another client in between.
        let mut expected = Vec::new();
        for i in 0..10u8 {
            expected.push(vec![i; 1000]);
        }
        expected.push(vec![0xEE; 300]);
        expected.push(vec![0xAD; 120]);
        for datagram in &expected {
            assert!(!outbox.push(to, datagram));
        }
        outbox.push(elsewhere, b"other");
        let after = vec![vec![0x11; 1000], vec![0x22; 1000]];
        for datagram in &after {
            outbox.push(to, datagram);
        }
        expected.extend(after);
        assert_eq!(outbox.flush(&sender), 0);
        assert!(outbox.is_empty());
        assert_eq!(
            outbox.gso_sends(),
            2,
            "the frame and the pair after the other client's datagram"
        );
        assert_eq!(receive(&client, expected.len()), expected);
        assert_eq!(receive(&other, 1), vec![b"other".to_vec()]);
    }

    #[tokio::test]
    async fn peer_sends_go_out_per_relay_socket_in_order() {
        let first = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let second = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = peer.local_addr().unwrap();
        let mut batch = PeerBatch::new();
        // A burst on the first relay socket, one datagram on the second, more on the first.
        for i in 0..5u8 {
            assert_eq!(batch.push(&first, to, &[i; 800]), 0);
        }
        batch.push(&second, to, b"second");
        batch.push(&first, to, &[9; 800]);
        assert_eq!(batch.flush(), 0);
        assert_eq!(batch.flush(), 0, "nothing left");
        assert_eq!(batch.outbox.gso_sends(), 1, "the burst of five");
        let mut buf = [0u8; 2048];
        let mut got = Vec::new();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        for _ in 0..7 {
            let (len, from) = peer.recv_from(&mut buf).unwrap();
            got.push((from, buf[..len].to_vec()));
        }
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        let mut expected: Vec<(SocketAddr, Vec<u8>)> =
            (0..5u8).map(|i| (a, vec![i; 800])).collect();
        expected.push((b, b"second".to_vec()));
        expected.push((a, vec![9; 800]));
        assert_eq!(got, expected);
    }

    #[test]
    fn gso_refusals_that_last_turn_it_off() {
        assert!(gso_refused_for_good(Errno::EIO));
        assert!(gso_refused_for_good(Errno::EINVAL));
        assert!(!gso_refused_for_good(Errno::EMSGSIZE));
        assert!(!gso_refused_for_good(Errno::ECONNREFUSED));
    }

    /// The kernel refuses a GSO send whose segments exceed the path MTU (EMSGSIZE) where
    /// a plain send would fragment: the datagrams then go one by one. In a network
    /// namespace of its own with `lo` at MTU 1280 (root, as CI runs).
    #[test]
    fn a_refused_gso_message_goes_out_datagram_by_datagram() {
        let name = format!("turnsrv-gso-{}", std::process::id());
        let ip = |args: &[&str]| {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "ip {args:?}");
        };
        struct Remove(String);
        impl Drop for Remove {
            fn drop(&mut self) {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", &self.0])
                    .status();
            }
        }
        ip(&["netns", "add", &name]);
        let _remove = Remove(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "mtu", "1280", "up"]);
        let path = format!("/run/netns/{name}");
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let to = client.local_addr().unwrap();
                let mut outbox = Outbox::new();
                let expected: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1400]).collect();
                for datagram in &expected {
                    outbox.push(to, datagram);
                }
                assert_eq!(outbox.flush(&sender), 0, "nothing dropped");
                assert_eq!(outbox.gso_sends(), 0, "the kernel refused GSO");
                assert!(outbox.gso, "EMSGSIZE concerns that message only");
                assert_eq!(receive(&client, 3), expected);
                // Small datagrams still go out with GSO.
                let small: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 500]).collect();
                for datagram in &small {
                    outbox.push(to, datagram);
                }
                assert_eq!(outbox.flush(&sender), 0);
                assert_eq!(outbox.gso_sends(), 1);
                assert_eq!(receive(&client, 3), small);
            });
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
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
