//! Feeding the core and carrying out what it asks (see [`turn_proto::event`]): relay
//! sockets bound and released, RFC 6062 connections opened, joined and closed.

use std::rc::Rc;
use std::time::Instant;

use super::Shard;
use super::relay_udp::relay_loop;
use super::tcp_relay;
use crate::io::relay::Started;
use turn_proto::{BindRequest, Event, FiveTuple};

impl Shard {
    /// Feeds one client message to the core and performs what it asks.
    pub(super) fn handle_client(self: &Rc<Self>, tuple: FiveTuple, data: &[u8], out: &mut Vec<u8>) {
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
                Event::Release(relay) => self.relays.borrow_mut().release(relay.socket),
                Event::Connect {
                    connection,
                    relay,
                    peer,
                } => tcp_relay::connect(self, connection, relay.address, peer),
                Event::Join { connection, data } => {
                    self.peers.borrow_mut().join(connection, data);
                }
                Event::Close { connection } => self.peers.borrow_mut().close(connection),
                // Every channel is relayed here, in userspace, until a fast path takes
                // routes over.
                Event::ChannelBound(_) | Event::ChannelUnbound(_) => {}
            }
        }
    }

    /// Binds an allocation's relay sockets, starts their tasks and answers its Allocate.
    fn bind(self: &Rc<Self>, request: &BindRequest, out: &mut Vec<u8>) {
        let mut started = Vec::new();
        let outcome = self.relays.borrow_mut().bind(request, &mut started);
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
}
