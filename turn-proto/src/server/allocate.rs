//! Allocate (RFC 8656 §7.2): the request checked and the relay sockets asked for
//! ([`crate::Event::Bind`]); the allocation created when the driver reports them bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::dual;
use super::{Answer, Auth, PendingAllocate, Reservation, Server, Slot, finish};
use crate::allocation::{Allocation, Traffic};
use crate::bandwidth::TokenBucket;
use crate::codec::attribute::AttrType;
use crate::codec::{Class, ErrorCode, Message, MessageWriter, Method};
use crate::event::{BindOutcome, BindRequest, Event, NoRelayPort, RelayRequest};
use crate::names::{AllocId, FiveTuple, Transport};
use crate::server_config::DefaultFamily;
use crate::transmit::{Destination, Payload, Transmit};

/// How long an EVEN-PORT reservation is held (RFC 8656 §7.2: about 30 s).
pub(super) const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// REQUESTED-TRANSPORT value for UDP (RFC 8656 §18.8).
pub(super) const PROTOCOL_UDP: u8 = 17;
/// REQUESTED-TRANSPORT value for TCP (RFC 6062 §5.1).
pub(super) const PROTOCOL_TCP: u8 = 6;

impl Server {
    /// Allocate (RFC 8656 §7.2): answered now when it fails or retransmits; otherwise
    /// the driver is asked for relay sockets ([`Event::Bind`]) and
    /// [`Self::relay_bound`] answers.
    pub(super) fn allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        auth: Auth,
        fingerprint: bool,
        out: &mut Vec<u8>,
    ) -> Result<Answer, ErrorCode> {
        if let Some(&id) = self.by_tuple.get(&tuple) {
            let allocation = self.allocation(id).ok_or(ErrorCode::SERVER_ERROR)?;
            if allocation.transaction != message.transaction() {
                return Err(ErrorCode::ALLOCATION_MISMATCH);
            }
            // A retransmitted Allocate: answer as the first time (RFC 8656 §7.2), tokens
            // and ticket included (a client whose first answer was lost needs them).
            let remaining = allocation.expires.saturating_duration_since(now);
            let relay = self.public_relay(allocation.relay.address);
            let additional = allocation
                .additional
                .map(|relay| self.public_relay(relay.address));
            let (reservation, ticket) = (allocation.reservation, allocation.ticket);
            let mut writer =
                MessageWriter::new(out, Method::ALLOCATE, Class::Success, message.transaction());
            writer.xor_address(AttrType::XOR_RELAYED_ADDRESS, relay);
            if let Some(additional) = additional {
                writer.xor_address(AttrType::XOR_RELAYED_ADDRESS, additional);
            }
            writer.u32_attr(AttrType::LIFETIME, remaining.as_secs() as u32);
            if let Some(token) = reservation.filter(|token| self.reservations.contains_key(token)) {
                writer.attr(AttrType::RESERVATION_TOKEN, &token.to_be_bytes());
            }
            writer.xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
            if let Some(ticket) = ticket {
                writer.attr(AttrType::MOBILITY_TICKET, &ticket);
            }
            return Ok(Answer::Now);
        }
        if let Some(pending) = self.binding.iter().find(|pending| pending.tuple == tuple) {
            // Its sockets are being bound: a retransmission is answered with the first.
            return if pending.transaction == message.transaction() {
                Ok(Answer::Later)
            } else {
                Err(ErrorCode::ALLOCATION_MISMATCH)
            };
        }
        if let Some(alternate) = self.alternate_for(tuple) {
            // Redirection (coturn's alternate-server): 300 with the next server, round-robin.
            MessageWriter::new(out, Method::ALLOCATE, Class::Error, message.transaction())
                .error_code(ErrorCode::TRY_ALTERNATE)
                .plain_address(AttrType::ALTERNATE_SERVER, alternate);
            return Ok(Answer::Now);
        }
        if self.draining {
            return Err(ErrorCode::ALLOCATION_QUOTA_REACHED);
        }
        let wants_ticket = message.attr(AttrType::MOBILITY_TICKET).is_some();
        if wants_ticket && !self.config.mobility {
            return Err(ErrorCode::MOBILITY_FORBIDDEN);
        }
        let tcp = match message.attr(AttrType::REQUESTED_TRANSPORT) {
            Some([PROTOCOL_UDP, _, _, _]) if self.config.udp_relay => false,
            Some([PROTOCOL_TCP, _, _, _]) if self.config.tcp_relay => {
                // RFC 6062 §5.1 (and coturn): TCP relays only for stream clients, and
                // without the UDP-only attributes.
                let udp_only = [
                    AttrType::EVEN_PORT,
                    AttrType::RESERVATION_TOKEN,
                    AttrType::DONT_FRAGMENT,
                ];
                if !tuple.transport.is_stream()
                    || udp_only.iter().any(|kind| message.attr(*kind).is_some())
                {
                    return Err(ErrorCode::BAD_REQUEST);
                }
                true
            }
            Some([_, _, _, _]) => return Err(ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL),
            _ => return Err(ErrorCode::BAD_REQUEST),
        };
        let even_port = match message.attr(AttrType::EVEN_PORT) {
            None => None,
            Some([flags, ..]) => Some(flags & 0x80 != 0),
            Some(_) => return Err(ErrorCode::BAD_REQUEST),
        };
        let token = match message.attr(AttrType::RESERVATION_TOKEN) {
            None => None,
            Some(value) => Some(u64::from_be_bytes(
                value.try_into().map_err(|_| ErrorCode::BAD_REQUEST)?,
            )),
        };
        let family = message.attr(AttrType::REQUESTED_ADDRESS_FAMILY);
        if token.is_some() && (even_port.is_some() || family.is_some()) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let dual = dual::requested(message)?;
        if dual.is_some() && (family.is_some() || token.is_some() || even_port == Some(true)) {
            // RFC 8656 §7.2 with a requested family; coturn also with a token or a
            // reservation (EVEN-PORT with R), but not with a plain EVEN-PORT, which
            // coturn's uclient sends at random.
            return Err(ErrorCode::BAD_REQUEST);
        }
        let ipv6 = match family {
            // Without IPv4 relays, a dual allocation's IPv6 half leads.
            None if dual.is_some() => !self.config.relay_ipv4,
            // A reserved socket keeps the family it was bound with.
            None if token.is_some() => false,
            None => match self.config.default_family {
                DefaultFamily::Ipv4 => false,
                DefaultFamily::Ipv6 => true,
                DefaultFamily::Keep => tuple.client.is_ipv6(),
            },
            Some([0x01, _, _, _]) => false,
            Some([0x02, _, _, _]) => true,
            Some([_, _, _, _]) => return Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
            Some(_) => return Err(ErrorCode::BAD_REQUEST),
        };
        if (ipv6 && !self.config.relay_ipv6)
            || (!ipv6 && !self.config.relay_ipv4 && token.is_none())
        {
            return Err(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
        }
        let lifetime = self.lifetime(message)?;
        if lifetime.is_zero() {
            return Err(ErrorCode::BAD_REQUEST);
        }
        if let Err(exceeded) = self.quotas.admit(&auth.user, &self.quota_limits) {
            self.stats.quota_refusals += 1;
            tracing::info!(client = %tuple.client, user = auth.user.as_str(), ?exceeded, "allocation refused: quota");
            return Err(ErrorCode::ALLOCATION_QUOTA_REACHED);
        }
        // Counted from here: every failure gives the place back.
        let reserved = match token {
            None => None,
            Some(token) => match self.reservations.remove(&token) {
                Some(reservation) if reservation.expires > now => Some(reservation.relay),
                Some(reservation) => {
                    self.events.push_back(Event::Release(reservation.relay));
                    self.quotas.release(&auth.user);
                    return Err(ErrorCode::INSUFFICIENT_CAPACITY);
                }
                None => {
                    self.quotas.release(&auth.user);
                    return Err(ErrorCode::INSUFFICIENT_CAPACITY);
                }
            },
        };
        let id = self.next_id();
        let relay = RelayRequest {
            ipv6,
            server: tuple.server,
            client: tuple.client,
            even_port: even_port.is_some(),
            reserve_next: even_port == Some(true),
            reserved,
        };
        let (additional, dual_refused) = match dual {
            Some(_) => self.dual_half(tcp, ipv6, relay),
            None => (None, None),
        };
        self.events.push_back(Event::Bind(BindRequest {
            allocation: id,
            tcp,
            relay,
            additional,
        }));
        self.binding.push(PendingAllocate {
            id,
            tuple,
            transaction: message.transaction(),
            username: auth.username.into(),
            user: auth.user.into(),
            signing: auth.signing,
            fingerprint,
            lifetime,
            tcp,
            dual,
            dual_refused,
            wants_ticket,
        });
        Ok(Answer::Later)
    }

    /// The driver's answer to [`Event::Bind`] for allocation `id`: creates the allocation
    /// and answers its Allocate (or answers 508 when no relay port could be bound). None
    /// when no Allocate waits for `id`; sockets bound for it are then released.
    pub fn relay_bound(
        &mut self,
        now: Instant,
        id: AllocId,
        outcome: BindOutcome,
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        out.clear();
        let Some(index) = self.binding.iter().position(|pending| pending.id == id) else {
            self.release_outcome(outcome);
            return None;
        };
        let pending = self.binding.swap_remove(index);
        let reply = Some(Transmit {
            destination: Destination::Client(pending.tuple),
            payload: Payload::Output,
        });
        let binding = match outcome.relay {
            Ok(binding) => binding,
            Err(NoRelayPort) => {
                self.release_outcome(outcome);
                self.free.push(id.index);
                self.quotas.release(&pending.user);
                let mut writer =
                    MessageWriter::new(out, Method::ALLOCATE, Class::Error, pending.transaction);
                writer.error_code(ErrorCode::INSUFFICIENT_CAPACITY);
                finish(&mut writer, pending.signing, pending.fingerprint);
                return reply;
            }
        };
        let (additional, address_error) = match outcome.additional {
            Some(Ok(relay)) => (Some(relay), None),
            Some(Err(NoRelayPort)) => (
                None,
                Some((dual::FAMILY_IPV6, ErrorCode::INSUFFICIENT_CAPACITY)),
            ),
            None => (None, pending.dual_refused),
        };
        let reservation = binding.reserved.map(|relay| {
            // The first byte names this shard (see `super::shards`).
            let token = self.rng.random::<u64>() >> 8 | u64::from(self.shard.index) << 56;
            self.reservations.insert(
                token,
                Reservation {
                    relay,
                    expires: now + RESERVATION_LIFETIME,
                },
            );
            token
        });
        let max_bps = self.config.max_bps;
        let limit = (max_bps > 0).then(|| TokenBucket::new(max_bps, now));
        let tuple = pending.tuple;
        let allocation = Allocation {
            tuple,
            relay: binding.relay,
            additional,
            tcp: pending.tcp,
            tcp_connections: 0,
            username: pending.username,
            user: pending.user,
            key: pending.signing.map(|signing| signing.key),
            transaction: pending.transaction,
            expires: now + pending.lifetime,
            permissions: Vec::new(),
            channels: Vec::new(),
            upstream_limit: limit.clone(),
            downstream_limit: limit,
            upstream: Traffic::default(),
            downstream: Traffic::default(),
            reservation,
            ticket: None,
            previous_tuple: None,
        };
        tracing::info!(
            client = %tuple.client,
            relay = %binding.relay.address,
            additional = ?additional.map(|relay| relay.address),
            tcp = pending.tcp,
            user = &*allocation.user,
            lifetime = pending.lifetime.as_secs(),
            "allocation created"
        );
        self.slots[id.index as usize].allocation = Some(allocation);
        self.by_tuple.insert(tuple, id);
        self.stats.allocations_created += 1;
        let mut writer =
            MessageWriter::new(out, Method::ALLOCATE, Class::Success, pending.transaction);
        writer.xor_address(
            AttrType::XOR_RELAYED_ADDRESS,
            self.public_relay(binding.relay.address),
        );
        if let Some(additional) = additional {
            writer.xor_address(
                AttrType::XOR_RELAYED_ADDRESS,
                self.public_relay(additional.address),
            );
        }
        if let (Some(kind), Some((family, code))) = (pending.dual, address_error) {
            writer.address_error_code(kind, family, code);
        }
        writer.u32_attr(AttrType::LIFETIME, pending.lifetime.as_secs() as u32);
        if let Some(token) = reservation {
            writer.attr(AttrType::RESERVATION_TOKEN, &token.to_be_bytes());
        }
        writer.xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
        if pending.wants_ticket {
            let ticket = self.issue_ticket(id);
            MessageWriter::resume(out).attr(AttrType::MOBILITY_TICKET, &ticket);
        }
        let mut writer = MessageWriter::resume(out);
        finish(&mut writer, pending.signing, pending.fingerprint);
        reply
    }

    /// Releases whatever the driver bound for an Allocate that no longer waits for it.
    pub(super) fn release_outcome(&mut self, outcome: BindOutcome) {
        let bound = outcome
            .relay
            .ok()
            .into_iter()
            .flat_map(|binding| std::iter::once(binding.relay).chain(binding.reserved));
        let additional = outcome.additional.and_then(Result::ok);
        for relay in bound.chain(additional) {
            self.events.push_back(Event::Release(relay));
        }
    }

    /// The server to redirect a new allocation to, when `alternate-server` lists one of
    /// the client's family: `tls-alternate-server` for TLS clients, and
    /// `udp-alternate-server` / `tcp-alternate-server`, when set, for UDP / TCP clients.
    pub(super) fn alternate_for(&mut self, tuple: FiveTuple) -> Option<SocketAddr> {
        let config = &self.config;
        let list = match tuple.transport {
            Transport::Tls => &config.tls_alternate_servers,
            Transport::Udp if !config.udp_alternate_servers.is_empty() => {
                &config.udp_alternate_servers
            }
            Transport::Tcp if !config.tcp_alternate_servers.is_empty() => {
                &config.tcp_alternate_servers
            }
            Transport::Udp | Transport::Tcp => &config.alternate_servers,
        };
        let candidates = list
            .iter()
            .filter(|a| a.is_ipv4() == tuple.client.is_ipv4())
            .count();
        if candidates == 0 {
            return None;
        }
        let pick = self.next_alternate % candidates;
        self.next_alternate = self.next_alternate.wrapping_add(1);
        list.iter()
            .filter(|a| a.is_ipv4() == tuple.client.is_ipv4())
            .nth(pick)
            .copied()
    }

    pub(super) fn next_id(&mut self) -> AllocId {
        if let Some(index) = self.free.pop() {
            return AllocId {
                index,
                generation: self.slots[index as usize].generation,
            };
        }
        self.slots.push(Slot {
            generation: 0,
            allocation: None,
        });
        AllocId {
            index: (self.slots.len() - 1) as u32,
            generation: 0,
        }
    }
}
