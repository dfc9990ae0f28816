//! Refresh (RFC 8656 §7.3) and mobility (RFC 8016): lifetimes, deletion, tickets, and
//! requests handed to the shard that owns the allocation they name.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{Auth, Server, slot_mut};
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::names::{AllocId, FiveTuple};

/// How long the 5-tuple an allocation moved away from (RFC 8016) is still accepted.
pub(super) const MOBILITY_GRACE: Duration = Duration::from_secs(10);

impl Server {
    pub(super) fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Auth,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let ticket = message.attr(AttrType::MOBILITY_TICKET);
        if ticket.is_some() && !self.config.mobility {
            return Err(ErrorCode::MOBILITY_FORBIDDEN);
        }
        let id = match (self.by_tuple.get(&tuple), ticket) {
            (Some(&id), _) => id,
            (None, Some(ticket)) => self.move_allocation(ticket, tuple, auth, now)?,
            (None, None) => return Err(ErrorCode::ALLOCATION_MISMATCH),
        };
        let lifetime = self.lifetime(message)?;
        let allocation = self.allocation(id).ok_or(ErrorCode::SERVER_ERROR)?;
        let has = |ipv6: bool| {
            [Some(allocation.relay), allocation.additional]
                .into_iter()
                .flatten()
                .any(|relay| relay.address.is_ipv6() == ipv6)
        };
        match message.attr(AttrType::REQUESTED_ADDRESS_FAMILY) {
            None => {}
            Some([0x01, _, _, _]) if has(false) => {}
            Some([0x02, _, _, _]) if has(true) => {}
            Some([_, _, _, _]) => return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH),
            Some(_) => return Err(ErrorCode::BAD_REQUEST),
        }
        if lifetime.is_zero() {
            self.remove(id, "refreshed to 0");
        } else if let Some(allocation) = self.allocation_mut(id) {
            allocation.expires = now + lifetime;
        }
        let mut writer =
            MessageWriter::new(out, Method::REFRESH, Class::Success, message.transaction());
        writer.u32_attr(AttrType::LIFETIME, lifetime.as_secs() as u32);
        if ticket.is_some() && !lifetime.is_zero() {
            // One ticket for the allocation's life, as coturn: clients keep the first one
            // and move with it again; only its owner can use it, so a copy is worthless.
            let current = self.allocation(id).and_then(|allocation| allocation.ticket);
            let ticket = match current {
                Some(ticket) => ticket,
                None => self.issue_ticket(id),
            };
            MessageWriter::resume(out).attr(AttrType::MOBILITY_TICKET, &ticket);
        }
        Ok(())
    }

    /// RFC 8016 §3.2: a Refresh from a new 5-tuple carrying the allocation's ticket moves
    /// the allocation there, but only for the user who owns it (coturn #1969: binding the
    /// ticket to its owner stops hijacking with a leaked ticket).
    pub(super) fn move_allocation(
        &mut self,
        ticket: &[u8],
        tuple: FiveTuple,
        auth: &Auth,
        now: Instant,
    ) -> Result<AllocId, ErrorCode> {
        let Ok(ticket) = <[u8; 16]>::try_from(ticket) else {
            tracing::debug!(client = %tuple.client, len = ticket.len(), "malformed mobility ticket");
            return Err(ErrorCode::ALLOCATION_MISMATCH);
        };
        let Some(&id) = self.tickets.get(&ticket) else {
            tracing::debug!(client = %tuple.client, "unknown mobility ticket");
            return Err(ErrorCode::ALLOCATION_MISMATCH);
        };
        let allocation = slot_mut(&mut self.slots, id).ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if *allocation.username != *auth.username || allocation.tuple.transport != tuple.transport {
            self.stats.auth_failures += 1;
            return Err(ErrorCode::WRONG_CREDENTIALS);
        }
        // Routes name the client's 5-tuple: they end with the old one.
        self.end_routes(id);
        let allocation = slot_mut(&mut self.slots, id).ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        let old = std::mem::replace(&mut allocation.tuple, tuple);
        // The old 5-tuple stays an alias for a moment (coturn's graceful handoff); an
        // older alias goes now.
        if let Some((older, _)) = allocation
            .previous_tuple
            .replace((old, now + MOBILITY_GRACE))
        {
            self.by_tuple.remove(&older);
        }
        self.by_tuple.insert(tuple, id);
        self.sync_routes(id, now);
        tracing::info!(from = %old.client, to = %tuple.client, "allocation moved (mobility)");
        Ok(id)
    }

    /// The shard owning the allocation an authenticated request names by mobility ticket
    /// or reservation token, when that is another shard and this one has no allocation
    /// for `tuple`; the 5-tuple is handed over from now on.
    pub(super) fn owner_elsewhere(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Option<u8> {
        if self.shard.count < 2
            || tuple.transport.is_stream()
            || message.class() != Class::Request
            || self.by_tuple.contains_key(&tuple)
        {
            return None;
        }
        let first = match message.method() {
            Method::REFRESH => message.attr(AttrType::MOBILITY_TICKET)?.first(),
            Method::ALLOCATE => message.attr(AttrType::RESERVATION_TOKEN)?.first(),
            _ => None,
        }?;
        let owner = self.shard.other_owner(*first)?;
        self.handed_over.insert(tuple, owner, now).then_some(owner)
    }

    /// A fresh MOBILITY-TICKET for allocation `id` (RFC 8016 §3.1), replacing its last one:
    /// random, so it reveals nothing and cannot be guessed.
    pub(super) fn issue_ticket(&mut self, id: AllocId) -> [u8; 16] {
        let mut ticket: [u8; 16] = self.rng.random();
        ticket[0] = self.shard.index;
        self.tickets.retain(|_, owner| *owner != id);
        self.tickets.insert(ticket, id);
        if let Some(allocation) = slot_mut(&mut self.slots, id) {
            allocation.ticket = Some(ticket);
        }
        ticket
    }
}
