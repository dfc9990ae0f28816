//! A shard's receive loop for one UDP relay socket: peer datagrams for one allocation.
//!
//! Batched `recvmmsg` into the shard's receive slots, each datagram behind the headroom
//! the core frames ChannelData in (see [`turn_proto::PEER_HEADROOM`]); sends never wait.

use std::rc::Rc;
use std::time::Instant;

use tokio::net::UdpSocket;
use turn_proto::AllocId;

use super::{Buffers, RECV_ROUNDS, Shard};
use crate::io::batch::more_after;

/// Reads peer datagrams from allocation `id`'s relay socket until the socket is closed
/// (its task is aborted on release).
pub(super) async fn relay_loop(shard: Rc<Shard>, id: AllocId, socket: Rc<UdpSocket>) {
    let ipv6 = socket.local_addr().is_ok_and(|local| local.is_ipv6());
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        for _ in 0..RECV_ROUNDS {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let Some(more) = more_after(recv.recv(&socket, ipv6)) else {
                break;
            };
            // One clock read per batch: the datagrams arrived together.
            let now = Instant::now();
            for (datagram, peer) in recv.iter_framed_mut() {
                let transmit = shard
                    .server
                    .borrow_mut()
                    .handle_peer(now, id, peer, datagram, out);
                if let Some(transmit) = transmit {
                    shard.send(&transmit, datagram, out);
                }
            }
            if !more {
                break;
            }
        }
        tokio::task::yield_now().await;
    }
}
