//! RFC 6062 in the core: Connect and ConnectionBind requests on TCP allocations, peer
//! connections accepted on relayed addresses, and the bytes relayed once joined.
//!
//! The same peer rules hold as for UDP (turn-anchors §1.4): a peer must pass the peer
//! policy and hold a permission, both for a Connect and for an incoming connection. The
//! policy sees the peer's port, so one permission for this host's address opens only its
//! relay ports, not every port of the host. Connections are capped per allocation
//! (`max-tcp-relay-connections`) and per user over all allocations and shards
//! (`user-tcp-relay-quota`, counted by the [`crate::quota::QuotaLedger`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::{Server, Signing, finish, slot_mut};
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method, TransactionId};
use crate::connection::{BIND_TIMEOUT, Connection, Direction, State};
use crate::names::ConnectionId;
use crate::names::FiveTuple;
use crate::transmit::{Destination, Payload, Transmit};
use crate::{AllocId, Event, Stats};

impl Server {
    /// The driver finished connecting a Connect's peer connection (`connected`) or gave
    /// up: the Connect is answered with CONNECTION-ID or 447 (RFC 6062 §5.2). None when
    /// the connection is no longer wanted (its allocation ended): the driver drops it.
    pub fn handle_tcp_connected(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        connected: bool,
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        out.clear();
        let entry = self.connections.get_mut(&connection)?;
        let State::Connecting {
            transaction,
            fingerprint,
            sha256,
        } = entry.state
        else {
            return None;
        };
        let id = entry.allocation;
        let peer = entry.peer;
        let allocation = self.allocation(id)?;
        let tuple = allocation.tuple;
        let signing = allocation.key.map(|key| Signing { key, sha256 });
        let mut writer = if connected {
            entry_state(
                &mut self.connections,
                connection,
                State::Pending(now + BIND_TIMEOUT),
            );
            let mut writer = MessageWriter::new(out, Method::CONNECT, Class::Success, transaction);
            writer.attr(AttrType::CONNECTION_ID, &connection.0.to_be_bytes());
            writer
        } else {
            self.forget_connection(connection);
            tracing::info!(client = %tuple.client, %peer, "TCP connection to peer failed");
            let mut writer = MessageWriter::new(out, Method::CONNECT, Class::Error, transaction);
            writer.error_code(ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE);
            writer
        };
        finish(&mut writer, signing, fingerprint);
        Some(Transmit {
            destination: Destination::Client(tuple),
            payload: Payload::Output,
        })
    }

    /// A peer connected to allocation `id`'s relayed address. Accepted only from a peer
    /// the policy allows and a permission covers (RFC 6062 §5.3); then the client hears
    /// of it in a ConnectionAttempt indication. None: the driver closes the connection.
    pub fn handle_tcp_accepted(
        &mut self,
        now: Instant,
        id: AllocId,
        peer: SocketAddr,
        out: &mut Vec<u8>,
    ) -> Option<(ConnectionId, Transmit)> {
        out.clear();
        let allocation = self.allocation(id)?;
        let (tuple, permitted) = (allocation.tuple, allocation.permits(peer.ip(), now));
        if let Err(denial) = self.config.policy.check(peer) {
            self.stats.peers_denied += 1;
            tracing::info!(peer = %peer.ip(), ?denial, "TCP peer connection refused");
            return None;
        }
        if !permitted || self.has_connection(id, peer) {
            self.stats.unroutable += 1;
            return None;
        }
        let state = State::Pending(now + BIND_TIMEOUT);
        let Ok(connection) = self.insert_connection(id, peer, state) else {
            tracing::info!(%peer, "TCP peer connection refused: connection limit");
            return None;
        };
        let transaction = TransactionId(self.rng.random());
        let mut writer = MessageWriter::new(
            out,
            Method::CONNECTION_ATTEMPT,
            Class::Indication,
            transaction,
        );
        writer
            .attr(AttrType::CONNECTION_ID, &connection.0.to_be_bytes())
            .xor_address(AttrType::XOR_PEER_ADDRESS, self.public_relay(peer));
        if self.config.fingerprint {
            writer.fingerprint();
        }
        let transmit = Transmit {
            destination: Destination::Client(tuple),
            payload: Payload::Output,
        };
        Some((connection, transmit))
    }

    /// `len` bytes of a joined connection are about to be relayed in `direction`: they
    /// are counted, and the answer is how long to pause afterwards for `max-bps` (a TCP
    /// relay slows its sender down rather than dropping). None: the connection is gone.
    pub fn relay_tcp(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        direction: Direction,
        len: usize,
    ) -> Option<Duration> {
        let entry = self.connections.get(&connection)?;
        if !matches!(entry.state, State::Joined(_)) {
            return None;
        }
        let allocation = slot_mut(&mut self.slots, entry.allocation)?;
        let Stats {
            upstream,
            downstream,
            ..
        } = &mut self.stats;
        let (limit, traffic, total) = match direction {
            Direction::Upstream => (
                &mut allocation.upstream_limit,
                &mut allocation.upstream,
                upstream,
            ),
            Direction::Downstream => (
                &mut allocation.downstream_limit,
                &mut allocation.downstream,
                downstream,
            ),
        };
        super::count(traffic, len);
        super::count(total, len);
        Some(
            limit
                .as_mut()
                .map_or(Duration::ZERO, |limit| limit.delay(len, now)),
        )
    }

    /// Live RFC 6062 peer connections (connecting, waiting for ConnectionBind or joined).
    pub fn tcp_connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Connect (RFC 6062 §5.2): checks the peer, then asks the driver to connect; the
    /// answer comes from [`Self::handle_tcp_connected`].
    pub(super) fn connect(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Result<(), ErrorCode> {
        let (id, relay) = self.allocation_for(tuple)?;
        let allocation = self.allocation(id).ok_or(ErrorCode::SERVER_ERROR)?;
        let (tcp, key) = (allocation.tcp, allocation.key);
        if !tcp {
            // coturn: "Connect cannot be used with UDP relay".
            return Err(ErrorCode::FORBIDDEN);
        }
        let peer = self.requested_peer(message)?;
        self.check_peer(peer, id)?;
        let permitted = self
            .allocation(id)
            .is_some_and(|allocation| allocation.permits(peer.ip(), now));
        if !permitted {
            tracing::debug!(client = %tuple.client, %peer, "Connect without a permission");
            return Err(ErrorCode::FORBIDDEN);
        }
        if self.has_connection(id, peer) {
            return Err(ErrorCode::CONNECTION_ALREADY_EXISTS);
        }
        let state = State::Connecting {
            transaction: message.transaction(),
            fingerprint: self.config.fingerprint || message.has_fingerprint(),
            sha256: key.is_some() && message.has_integrity_sha256(),
        };
        let connection = self.insert_connection(id, peer, state)?;
        self.events.push_back(Event::Connect {
            connection,
            relay,
            peer,
        });
        Ok(())
    }

    /// ConnectionBind (RFC 6062 §5.4), on a new stream connection without an allocation:
    /// joins it to the waiting peer connection named by CONNECTION-ID; unknown, taken or
    /// still connecting ids get 400. Credentials were checked against the owner.
    pub(super) fn connection_bind(
        &mut self,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        if !tuple.transport.is_stream()
            || self.by_tuple.contains_key(&tuple)
            || self.by_data.contains_key(&tuple)
        {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let connection = connection_id(message).ok_or(ErrorCode::BAD_REQUEST)?;
        match self.connections.get(&connection) {
            Some(Connection {
                state: State::Pending(_),
                ..
            }) => {}
            _ => return Err(ErrorCode::BAD_REQUEST),
        }
        entry_state(&mut self.connections, connection, State::Joined(tuple));
        self.by_data.insert(tuple, connection);
        self.events.push_back(Event::Join {
            connection,
            data: tuple,
        });
        MessageWriter::new(
            out,
            Method::CONNECTION_BIND,
            Class::Success,
            message.transaction(),
        );
        Ok(())
    }

    /// Closes `connection` and forgets it.
    pub(super) fn close_connection(&mut self, connection: ConnectionId) {
        let Some(entry) = self.forget_connection(connection) else {
            return;
        };
        if let State::Joined(data) = entry.state {
            self.by_data.remove(&data);
        }
        self.events.push_back(Event::Close { connection });
    }

    /// Closes every connection of allocation `id` (it is ending).
    pub(super) fn close_connections_of(&mut self, id: AllocId) {
        let doomed: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, entry)| entry.allocation == id)
            .map(|(connection, _)| *connection)
            .collect();
        for connection in doomed {
            self.close_connection(connection);
        }
    }

    /// Closes peer connections whose ConnectionBind did not come in time, and those to
    /// peers the policy now denies (after a reload).
    pub(super) fn sweep_connections(&mut self, now: Instant) {
        let policy = &self.config.policy;
        let doomed: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, entry)| {
                matches!(entry.state, State::Pending(until) if until <= now)
                    || policy.check(entry.peer).is_err()
            })
            .map(|(connection, _)| *connection)
            .collect();
        for connection in doomed {
            tracing::debug!(
                connection = connection.0,
                "TCP peer connection closed by sweep"
            );
            self.close_connection(connection);
        }
    }

    fn has_connection(&self, id: AllocId, peer: SocketAddr) -> bool {
        self.connections
            .values()
            .any(|entry| entry.allocation == id && entry.peer == peer)
    }

    /// Records a connection under a fresh random id: unguessable, so a data connection
    /// cannot be bound to someone else's peer by counting (and never 0). Refused past
    /// `max-tcp-relay-connections` for the allocation (508) or `user-tcp-relay-quota`
    /// for its user (486), so one permission cannot open connections without end.
    fn insert_connection(
        &mut self,
        id: AllocId,
        peer: SocketAddr,
        state: State,
    ) -> Result<ConnectionId, ErrorCode> {
        let max = self.config.max_tcp_connections;
        let allocation = slot_mut(&mut self.slots, id).ok_or(ErrorCode::SERVER_ERROR)?;
        if max > 0 && allocation.tcp_connections >= max {
            self.stats.quota_refusals += 1;
            return Err(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        if !self
            .quotas
            .admit_connection(&allocation.user, &self.quota_limits)
        {
            self.stats.quota_refusals += 1;
            return Err(ErrorCode::ALLOCATION_QUOTA_REACHED);
        }
        allocation.tcp_connections += 1;
        let connection = loop {
            let candidate = ConnectionId(self.rng.random());
            if candidate.0 != 0 && !self.connections.contains_key(&candidate) {
                break candidate;
            }
        };
        self.connections.insert(
            connection,
            Connection {
                allocation: id,
                peer,
                state,
            },
        );
        Ok(connection)
    }

    /// Removes `connection` from the table and from its allocation's and user's counts
    /// (an ending allocation gives its user's back itself, see `remove`).
    fn forget_connection(&mut self, connection: ConnectionId) -> Option<Connection> {
        let entry = self.connections.remove(&connection)?;
        if let Some(allocation) = slot_mut(&mut self.slots, entry.allocation) {
            allocation.tcp_connections = allocation.tcp_connections.saturating_sub(1);
            self.quotas.release_connections(&allocation.user, 1);
        }
        Some(entry)
    }
}

/// The CONNECTION-ID of `message`, when it has a well-formed one.
pub(super) fn connection_id(message: &Message<'_>) -> Option<ConnectionId> {
    let value: [u8; 4] = message.attr(AttrType::CONNECTION_ID)?.try_into().ok()?;
    Some(ConnectionId(u32::from_be_bytes(value)))
}

fn entry_state(
    connections: &mut crate::hash::Map<ConnectionId, Connection>,
    connection: ConnectionId,
    state: State,
) {
    if let Some(entry) = connections.get_mut(&connection) {
        entry.state = state;
    }
}
