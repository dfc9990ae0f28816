//! ChannelBind (RFC 8656 §12) and the channel routes a driver may relay alone
//! ([`crate::Event::ChannelBound`], [`crate::Event::ChannelUnbound`]).

use std::time::Instant;

use super::{Server, slot_mut};
use crate::allocation::Channel;
use crate::codec::attribute::AttrType;
use crate::codec::channel_data::CHANNEL_RANGE;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::event::{ChannelRoute, Event};
use crate::names::{AllocId, FiveTuple};

impl Server {
    pub(super) fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let (id, _) = self.allocation_for(tuple)?;
        if self.allocation(id).is_some_and(|allocation| allocation.tcp) {
            // Channels carry datagrams; a TCP allocation has none (coturn: 400).
            return Err(ErrorCode::BAD_REQUEST);
        }
        let number = match message.attr(AttrType::CHANNEL_NUMBER) {
            Some([high, low, _, _]) => u16::from_be_bytes([*high, *low]),
            _ => return Err(ErrorCode::BAD_REQUEST),
        };
        if !CHANNEL_RANGE.contains(&number) {
            tracing::debug!(client = %tuple.client, number, "channel number out of range");
            return Err(ErrorCode::BAD_REQUEST);
        }
        let peer = self.requested_peer(message)?;
        self.check_peer(peer, id)?;
        let channel_expires = now + self.config.channel_lifetime;
        let permission_expires = now + self.config.permission_lifetime;
        let (max_channels, max_permissions) =
            (self.config.max_channels, self.config.max_permissions);
        let allocation = self.allocation_mut(id).ok_or(ErrorCode::SERVER_ERROR)?;
        // A number stays with its peer and a peer with its number (RFC 8656 §12.2).
        if allocation
            .channels
            .iter()
            .any(|c| (c.number == number) != (c.peer == peer))
        {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let count = allocation.channels.len();
        match allocation.channels.iter_mut().find(|c| c.number == number) {
            Some(channel) => channel.expires = channel_expires,
            None if count >= max_channels => return Err(ErrorCode::INSUFFICIENT_CAPACITY),
            None => allocation.channels.push(Channel {
                number,
                peer,
                expires: channel_expires,
                routed: None,
            }),
        }
        if !allocation.permit(peer.ip(), permission_expires, max_permissions) {
            return Err(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        self.sync_routes(id, now);
        MessageWriter::new(
            out,
            Method::CHANNEL_BIND,
            Class::Success,
            message.transaction(),
        );
        Ok(())
    }

    /// Tells the driver which of allocation `id`'s channels it may relay alone from now
    /// on, with their expiry, and which no longer ([`ChannelRoute`]).
    pub(super) fn sync_routes(&mut self, id: AllocId, now: Instant) {
        self.report_routes(id, Some(now));
    }

    /// Ends every route of allocation `id` (it ends or moves).
    pub(super) fn end_routes(&mut self, id: AllocId) {
        self.report_routes(id, None);
    }

    /// A route for each channel usable at `now` whose last report differs, an end for
    /// each reported one no longer usable; with no `now`, an end for every reported one.
    pub(super) fn report_routes(&mut self, id: AllocId, now: Option<Instant>) {
        let Some(allocation) = slot_mut(&mut self.slots, id) else {
            return;
        };
        for index in 0..allocation.channels.len() {
            let channel = allocation.channels[index];
            let expiry = now.and_then(|now| allocation.route_expiry(&channel, now));
            // A channel's peer always has a relay of its family (checked at ChannelBind).
            let (true, Some(relay)) =
                (expiry != channel.routed, allocation.relay_for(channel.peer))
            else {
                continue;
            };
            let route = |expires| ChannelRoute {
                allocation: id,
                client: allocation.tuple,
                number: channel.number,
                relay,
                peer: channel.peer,
                expires,
            };
            self.events.push_back(match (expiry, channel.routed) {
                (Some(expires), _) => Event::ChannelBound(route(expires)),
                (None, Some(reported)) => Event::ChannelUnbound(route(reported)),
                (None, None) => continue,
            });
            allocation.channels[index].routed = expiry;
        }
    }
}
