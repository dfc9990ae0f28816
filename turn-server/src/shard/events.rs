//! Feeding the core and carrying out what it asks (see [`turn_proto::event`]): relay
//! sockets bound and released, RFC 6062 connections opened, joined and closed, channel
//! routes installed in and removed from the kernel fast path.

use std::rc::Rc;
use std::time::Instant;

use super::Shard;
use super::offload::Report;
use super::relay_udp::relay_loop;
use super::tcp_relay;
use crate::io::relay::Started;
use turn_proto::{BindRequest, ChannelRoute, Event, FiveTuple};

impl Shard {
    /// Feeds one client message to the core and performs what it asks.
    pub(super) fn handle_client(self: &Rc<Self>, tuple: FiveTuple, data: &[u8], out: &mut Vec<u8>) {
        // A request may end the allocation (Refresh 0), which logs its totals: the
        // kernel's share goes in first. ChannelData (first bits 01) never ends one.
        if data.first().is_some_and(|b| b & 0xC0 == 0) {
            self.fold_offloaded_of(&tuple);
        }
        let transmit = self
            .server
            .borrow_mut()
            .handle_client(Instant::now(), tuple, data, out);
        if let Some(transmit) = transmit {
            self.send(&transmit, data, out);
        }
        self.carry_out(out);
    }

    /// Carries out what the core asked for in its last calls (see [`turn_proto::event`]);
    /// `out` is free for the answers this produces.
    pub(super) fn carry_out(self: &Rc<Self>, out: &mut Vec<u8>) {
        loop {
            let Some(event) = self.server.borrow_mut().poll_event() else {
                return;
            };
            match event {
                Event::Bind(request) => self.bind(&request, out),
                Event::Release(relay) => self
                    .relays
                    .borrow_mut()
                    .release(relay.socket, Instant::now()),
                Event::Connect {
                    connection,
                    relay,
                    peer,
                } => tcp_relay::connect(self, connection, relay.address, peer),
                Event::Join { connection, data } => {
                    self.peers.borrow_mut().join(connection, data);
                }
                Event::Close { connection } => self.peers.borrow_mut().close(connection),
                Event::ChannelBound(route) => self.route(&route, true),
                Event::ChannelUnbound(route) => self.route(&route, false),
            }
        }
    }

    /// Binds an allocation's relay sockets, starts their tasks and answers its Allocate.
    fn bind(self: &Rc<Self>, request: &BindRequest, out: &mut Vec<u8>) {
        let mut started = Vec::new();
        let outcome = self
            .relays
            .borrow_mut()
            .bind(request, &mut started, Instant::now());
        let id = request.allocation;
        for start in started {
            let (socket, task) = match start {
                Started::Udp(socket, udp) => (
                    socket,
                    Some(
                        tokio::task::spawn_local(relay_loop(self.clone(), id, udp)).abort_handle(),
                    ),
                ),
                Started::Tcp(socket, listener) => (socket, tcp_relay::accept(self, id, listener)),
            };
            if let Some(task) = task {
                self.relays.borrow_mut().set_task(socket, task);
            }
        }
        let transmit = self
            .server
            .borrow_mut()
            .relay_bound(Instant::now(), id, outcome, out);
        if let Some(transmit) = transmit {
            self.send(&transmit, &[], out);
        }
    }

    /// Installs or removes a channel route in the kernel fast path; without one, every
    /// channel is relayed here in userspace and routes need nothing.
    fn route(&self, route: &ChannelRoute, bound: bool) {
        let report = match self.offload.borrow_mut().as_mut() {
            Some(offload) if bound => offload.bound(route),
            Some(offload) => offload.unbound(route),
            None => return,
        };
        self.record_offloaded(report);
    }

    /// Adds what the kernel relayed for every route to the core (each sweep, and before
    /// shutdown).
    pub(super) fn fold_offloaded(&self) {
        let mut reports = Vec::new();
        match self.offload.borrow_mut().as_mut() {
            Some(offload) => offload.take_all(&mut reports),
            None => return,
        }
        self.record_offloaded(reports);
    }

    /// Adds what the kernel relayed for `client`'s routes to the core.
    fn fold_offloaded_of(&self, client: &FiveTuple) {
        let mut reports = Vec::new();
        match self.offload.borrow_mut().as_mut() {
            Some(offload) if offload.has_routes(client) => {
                offload.take_client(client, &mut reports);
            }
            _ => return,
        }
        self.record_offloaded(reports);
    }

    fn record_offloaded(&self, reports: impl IntoIterator<Item = Report>) {
        let mut server = self.server.borrow_mut();
        for (allocation, to_peer, to_client) in reports {
            server.record_offloaded(allocation, to_peer, to_client);
        }
    }
}
