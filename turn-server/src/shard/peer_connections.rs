//! The RFC 6062 peer connections of one shard, as far as the driver is concerned: what
//! each one is doing, and which client data connection was just joined to which.
//! (The relay listeners are relay sockets, [`crate::io::relay::RelaySockets`].)

use std::collections::HashMap;
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use turn_proto::{ConnectionId, FiveTuple};

/// What a peer connection is doing.
pub(super) enum Peer {
    /// The connect task is running.
    Connecting(AbortHandle),
    /// Connected or accepted; unread until joined.
    Ready(TcpStream),
    /// Its pipe is running; notified to stop it.
    Piping(Rc<Notify>),
}

/// Peer connections by id, and data connections joined by the last core call.
#[derive(Default)]
pub(super) struct PeerConnections {
    pub(super) peers: HashMap<ConnectionId, Peer>,
    joined: HashMap<FiveTuple, ConnectionId>,
}

impl PeerConnections {
    /// The client data connection `data` now carries `connection`
    /// ([`turn_proto::Event::Join`]).
    pub(super) fn join(&mut self, connection: ConnectionId, data: FiveTuple) {
        self.joined.insert(data, connection);
    }

    /// The peer connection the last request on client connection `tuple` joined it to
    /// (a successful ConnectionBind): from now on the connection carries raw bytes.
    pub(super) fn take_joined(&mut self, tuple: FiveTuple) -> Option<ConnectionId> {
        self.joined.remove(&tuple)
    }

    /// Closes the peer connection and stops its pipe ([`turn_proto::Event::Close`]).
    pub(super) fn close(&mut self, connection: ConnectionId) {
        match self.peers.remove(&connection) {
            Some(Peer::Connecting(task)) => task.abort(),
            Some(Peer::Piping(stop)) => stop.notify_one(),
            // A ready stream closes as it drops.
            Some(Peer::Ready(_)) | None => {}
        }
        self.joined.retain(|_, joined| *joined != connection);
    }
}
