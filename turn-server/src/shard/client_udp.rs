//! A shard's receive loop for one UDP client listener socket.
//!
//! The socket is read with `readable()` then batched `recvmmsg` calls into the shard's
//! single set of receive slots, so no buffer is held across an await and nothing is
//! allocated per packet.

use std::rc::Rc;

use super::{Buffers, RECV_ROUNDS, Shard};
use crate::io::batch::more_after;
use turn_proto::{FiveTuple, Transport};

/// Reads client datagrams from the shard's listener socket `index` and feeds them to the
/// core, until the socket fails.
pub(super) async fn client_loop(shard: Rc<Shard>, index: usize) {
    let (local, socket) = shard.udp[index].clone();
    let ipv6 = local.is_ipv6();
    loop {
        if let Err(error) = socket.readable().await {
            tracing::error!(%local, %error, "listener failed");
            return;
        }
        for _ in 0..RECV_ROUNDS {
            let mut buffers = shard.buffers.borrow_mut();
            let Buffers { recv, out } = &mut *buffers;
            let Some(more) = more_after(recv.recv(&socket, ipv6)) else {
                break;
            };
            for (data, client) in recv.iter() {
                let tuple = FiveTuple {
                    transport: Transport::Udp,
                    client,
                    server: local,
                };
                shard.handle_client(tuple, data, out);
            }
            if !more {
                break;
            }
        }
        tokio::task::yield_now().await;
    }
}
