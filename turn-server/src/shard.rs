//! One shard: a thread with a current-thread runtime that alone owns a
//! [`turn_proto::Server`], its socket of every UDP listener, its relay sockets and its
//! buffers, and the tasks that drive them.
//!
//! This file holds the state those tasks share and how transmits go out. Tasks run on the
//! shard's thread and borrow the `RefCell`s only between awaits, so a borrow never fails
//! and no lock is taken. Layers, each using only those before it:
//!
//! - [`command`]: what the control thread and the other shards send a shard.
//! - [`peer_connections`]: the RFC 6062 peer connection table.
//! - this file: [`Shard`], the state, and sending.
//! - [`relay_udp`], [`tcp_relay`]: tasks per relay socket and per peer connection.
//! - [`events`]: feeding the core and carrying out the events it emits.
//! - [`client_udp`], [`stream`]: tasks per client listener and per TCP/TLS client.
//! - [`thread`]: the thread itself: runtime, command loop, timer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::sync::mpsc::Sender;

use crate::io::batch::{Outbox, RecvBatch};
use crate::io::relay::RelaySockets;
use command::Command;
use peer_connections::PeerConnections;
use turn_proto::{Destination, FiveTuple, Payload, Server, Transmit, Transport};

mod client_udp;
pub(crate) mod command;
mod events;
mod peer_connections;
mod relay_udp;
mod stream;
mod tcp_relay;
pub(crate) mod thread;

/// Batched receive calls per socket before a receive loop yields, so one busy socket
/// cannot starve the timer or the other sockets.
const RECV_ROUNDS: usize = 4;

/// Largest output the core writes (a Data indication around a 65 000-byte payload).
const MAX_OUTPUT: usize = 65_535 + 64;

/// Bytes queued for one stream client before further data to it is dropped: a slow TCP
/// client loses its own media instead of growing the server's memory.
const MAX_STREAM_BACKLOG: usize = 256 * 1024;

/// The shard's reusable buffers.
struct Buffers {
    recv: RecvBatch,
    out: Vec<u8>,
}

/// Outgoing bytes of one TCP/TLS client, written by its connection's writer task.
#[derive(Default)]
struct StreamOut {
    queued: RefCell<Vec<u8>>,
    wake: Notify,
}

/// What one shard's tasks share.
struct Shard {
    server: RefCell<Server>,
    relays: RefCell<RelaySockets>,
    /// RFC 6062 peer connections.
    peers: RefCell<PeerConnections>,
    udp: Vec<(SocketAddr, Rc<UdpSocket>)>,
    streams: RefCell<HashMap<FiveTuple, Rc<StreamOut>>>,
    buffers: RefCell<Buffers>,
    send_drops: Cell<u64>,
    /// Datagrams to clients, per entry of `udp`, sent by the flush task.
    outboxes: RefCell<Vec<Outbox>>,
    /// Wakes the flush task when an outbox gets its first datagram.
    flush: Notify,
    /// Every shard's command queue, by index, for input another shard owns (bounded: a
    /// busy shard drops handed-over input as a full socket buffer would).
    shards: Vec<Sender<Command>>,
}

impl Shard {
    fn new(
        server: Server,
        relays: RelaySockets,
        udp: Vec<(SocketAddr, Rc<UdpSocket>)>,
        shards: Vec<Sender<Command>>,
    ) -> Self {
        Self {
            server: RefCell::new(server),
            relays: RefCell::new(relays),
            peers: RefCell::new(PeerConnections::default()),
            outboxes: RefCell::new(udp.iter().map(|_| Outbox::new()).collect()),
            flush: Notify::new(),
            udp,
            streams: RefCell::new(HashMap::new()),
            buffers: RefCell::new(Buffers {
                recv: RecvBatch::new(),
                out: Vec::with_capacity(MAX_OUTPUT),
            }),
            send_drops: Cell::new(0),
            shards,
        }
    }

    /// Performs `transmit`; `input` is the message it answers, `out` the core's output.
    fn send(&self, transmit: &Transmit, input: &[u8], out: &[u8]) {
        let payload = match &transmit.payload {
            Payload::Output => out,
            Payload::Input(range) => &input[range.clone()],
        };
        let sent = match transmit.destination {
            Destination::Client(tuple) => match tuple.transport {
                Transport::Udp => self.queue_datagram(&tuple, payload),
                Transport::Tcp | Transport::Tls => self.queue_stream(&tuple, payload),
            },
            Destination::Peer { socket, peer } => match self.relays.borrow().socket(socket) {
                Some(socket) => send_datagram(socket, payload, peer),
                None => false,
            },
            Destination::Shard { shard, tuple } => match self.shards.get(usize::from(shard)) {
                Some(queue) => queue
                    .try_send(Command::Input {
                        tuple,
                        data: payload.into(),
                    })
                    .is_ok(),
                None => false,
            },
        };
        if !sent {
            self.count_drop();
        }
    }

    fn count_drop(&self) {
        let drops = self.send_drops.get() + 1;
        self.send_drops.set(drops);
        if drops.is_power_of_two() {
            tracing::debug!(drops, "send failed or backlog full; data dropped");
        }
    }

    /// Queues a datagram to a UDP client in its listener's outbox. The flush task sends
    /// the outbox once the tasks that are ready now have run, so datagrams that several
    /// relay sockets produce in one wake-up go out in one `sendmmsg`.
    fn queue_datagram(&self, tuple: &FiveTuple, payload: &[u8]) -> bool {
        let Some(index) = self.udp.iter().position(|(a, _)| *a == tuple.server) else {
            return false;
        };
        let mut outboxes = self.outboxes.borrow_mut();
        let outbox = &mut outboxes[index];
        let first = outbox.is_empty();
        if outbox.push(tuple.client, payload) {
            let dropped = outbox.flush(&self.udp[index].1);
            self.count_drops(dropped);
        } else if first {
            self.flush.notify_one();
        }
        true
    }

    /// Sends every queued datagram to clients.
    fn flush_outboxes(&self) {
        let mut outboxes = self.outboxes.borrow_mut();
        let mut dropped = 0;
        for (outbox, (_, socket)) in outboxes.iter_mut().zip(&self.udp) {
            if !outbox.is_empty() {
                dropped += outbox.flush(socket);
            }
        }
        drop(outboxes);
        self.count_drops(dropped);
    }

    fn count_drops(&self, dropped: usize) {
        for _ in 0..dropped {
            self.count_drop();
        }
    }

    fn queue_stream(&self, tuple: &FiveTuple, payload: &[u8]) -> bool {
        let streams = self.streams.borrow();
        let Some(stream) = streams.get(tuple) else {
            return false;
        };
        let mut queued = stream.queued.borrow_mut();
        if queued.len() + payload.len() > MAX_STREAM_BACKLOG {
            return false;
        }
        queued.extend_from_slice(payload);
        stream.wake.notify_one();
        true
    }
}

/// Sends one datagram straight through the non-blocking socket. tokio's `try_send_to`
/// refuses with WouldBlock until its reactor has seen the socket writable, which drops
/// the first packets of every new allocation; UDP sends almost never block, and when the
/// kernel buffer is full the datagram is dropped either way.
fn send_datagram(socket: &UdpSocket, payload: &[u8], to: SocketAddr) -> bool {
    socket2::SockRef::from(socket)
        .send_to(payload, &to.into())
        .is_ok()
}
