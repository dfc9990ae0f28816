//! The TURN server state machine (RFC 8489, RFC 8656), one per shard.
//!
//! Inputs: client messages with their 5-tuple, peer datagrams with their allocation,
//! and time. Outputs: at most one [`Transmit`] per input, written into the caller's
//! buffer or pointing into the input, and [`Event`]s for the driver to carry out
//! (relay sockets to bind and close, TCP connections, channel routes), drained with
//! [`Server::poll_event`] after every call. The core never calls into the driver.
//!
//! Time: every call takes `now: Instant`; never call with a time earlier than the
//! previous one. Wall-clock time (for TURN REST expiry) is derived from the reading
//! passed to [`Server::new`] and refreshed by [`Server::handle_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtc_auth::long_term::userhash;

use super::allocation::{Allocation, Traffic};
use super::auth::{Credentials, LongTermKey};
use super::codec::attribute::AttrType;
use super::codec::{ChannelData, Class, ErrorCode, Message, MessageWriter, Method, TransactionId};
use super::connection::Connection;
use super::event::{Event, Relay};
use super::hash::{Map, SeededState};
use super::names::{AllocId, ConnectionId, FiveTuple};
use super::nonce::{FEATURES_PASSWORD_ALGORITHMS, FEATURES_WITH_USERHASH, Nonces};
use super::quota::{QuotaCounts, QuotaLedger, QuotaLimits};
use super::ratelimit::{AbuseLimiters, RateLimits};
use super::server_config::ServerConfig;
use super::shards::{HandOvers, ShardContext};
use super::stats::Stats;
use super::transmit::{Destination, Payload, Transmit};

/// How often lapsed allocations, permissions and channels are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

struct Slot {
    generation: u32,
    allocation: Option<Allocation>,
}

struct Reservation {
    relay: Relay,
    expires: Instant,
}

/// An Allocate waiting for its relay sockets ([`Event::Bind`]): what its answer needs.
struct PendingAllocate {
    id: AllocId,
    tuple: FiveTuple,
    transaction: TransactionId,
    username: Box<str>,
    user: Box<str>,
    signing: Option<Signing>,
    fingerprint: bool,
    lifetime: Duration,
    tcp: bool,
    /// ADDRESS-ERROR-CODE type of a dual allocation request.
    dual: Option<AttrType>,
    /// The family a dual allocation cannot have, known before binding.
    dual_refused: Option<(u8, ErrorCode)>,
    wants_ticket: bool,
}

/// Whether a request was answered now or will be once the driver reports back.
enum Answer {
    /// The response is in the output buffer.
    Now,
    /// The driver was asked for something (an [`Event`]); its report produces the answer.
    Later,
}

/// How to sign a response: the request's key, with the integrity attribute it used.
#[derive(Clone, Copy)]
struct Signing {
    key: LongTermKey,
    sha256: bool,
}

/// Authenticated request context.
struct Auth {
    signing: Option<Signing>,
    username: String,
    user: String,
}

/// The sans-IO TURN server.
pub struct Server {
    config: ServerConfig,
    nonces: Nonces,
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_tuple: Map<FiveTuple, AllocId>,
    /// Live allocation counts, shared with the other shards through the driver.
    quotas: Box<dyn QuotaLedger>,
    quota_limits: QuotaLimits,
    reservations: Map<u64, Reservation>,
    clock_instant: Instant,
    clock_unix: u64,
    next_sweep: Instant,
    rng: SmallRng,
    stats: Stats,
    draining: bool,
    next_alternate: usize,
    tickets: Map<[u8; 16], AllocId>,
    /// USERHASH → username for static users (REST usernames cannot be reversed).
    userhashes: Map<[u8; 32], String>,
    /// Unauthenticated requests and 401/438 answers per UDP source (spoofable,
    /// turn-anchors §4.4), shared with the other shards through the driver.
    limits: Box<dyn RateLimits>,
    /// What `limits` refused here: (unauthenticated requests, 401/438 answers).
    rate_limited: (u64, u64),
    /// This shard among the process's shards.
    shard: ShardContext,
    /// UDP 5-tuples whose allocation another shard owns.
    handed_over: HandOvers,
    /// RFC 6062 peer connections of TCP allocations.
    connections: Map<ConnectionId, Connection>,
    /// Client data connections joined to a peer connection (RFC 6062 §5.4).
    by_data: Map<FiveTuple, ConnectionId>,
    /// The keys of every table above (and of tables rebuilt on reload).
    hasher: SeededState,
    /// What the driver has to do, oldest first.
    events: VecDeque<Event>,
    /// Allocates waiting for their relay sockets (one at a time with a driver that binds
    /// at once; a handful otherwise).
    binding: Vec<PendingAllocate>,
}

impl Server {
    /// A server with `config`; `unix_now` is the wall clock at `now`, `seed` keys nonces,
    /// hash tables and reservation tokens (from the OS RNG in production, fixed in tests).
    /// It counts its own allocations for quotas.
    pub fn new(config: ServerConfig, now: Instant, unix_now: u64, seed: [u8; 32]) -> Self {
        let mut rng = SmallRng::from_seed(seed);
        let nonce_key: [u8; 32] = rng.random();
        let shard = ShardContext::group(1, nonce_key, now).remove(0);
        let counts = Box::new(QuotaCounts::default());
        let limits = AbuseLimiters::new(config.challenge_rate, now, SeededState::new(&mut rng));
        let seed = rng.random();
        Self::new_shard(config, now, unix_now, seed, shard, counts, Box::new(limits))
    }

    /// One of several shards of a process (see [`super::shards`]); `seed` must differ
    /// between shards, the context comes from one [`ShardContext::group`], and `quotas`
    /// and `limits` count for every shard.
    pub fn new_shard(
        config: ServerConfig,
        now: Instant,
        unix_now: u64,
        seed: [u8; 32],
        shard: ShardContext,
        quotas: Box<dyn QuotaLedger>,
        limits: Box<dyn RateLimits>,
    ) -> Self {
        let mut rng = SmallRng::from_seed(seed);
        let hasher = SeededState::new(&mut rng);
        let userhashes = userhashes(&config, hasher);
        Self {
            nonces: nonces(&config, &shard, &userhashes),
            userhashes,
            limits,
            rate_limited: (0, 0),
            quota_limits: QuotaLimits::of(&config),
            config,
            slots: Vec::new(),
            free: Vec::new(),
            by_tuple: Map::with_hasher(hasher),
            quotas,
            reservations: Map::with_hasher(hasher),
            clock_instant: now,
            clock_unix: unix_now,
            next_sweep: now + SWEEP_INTERVAL,
            rng,
            stats: Stats::default(),
            draining: false,
            next_alternate: 0,
            tickets: Map::with_hasher(hasher),
            shard,
            handed_over: HandOvers::new(hasher),
            connections: Map::with_hasher(hasher),
            by_data: Map::with_hasher(hasher),
            hasher,
            events: VecDeque::new(),
            binding: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// True while `tuple` (the client side of a connection, say) has an allocation.
    pub fn has_allocation(&self, tuple: &FiveTuple) -> bool {
        self.by_tuple.contains_key(tuple)
    }

    /// Live allocations.
    pub fn allocation_count(&self) -> usize {
        self.by_tuple.len()
    }

    /// The allocation `id`, if it still exists.
    pub fn allocation(&self, id: AllocId) -> Option<&Allocation> {
        self.slots
            .get(id.index as usize)
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.allocation.as_ref())
    }

    /// Drain mode (SIGUSR1): new allocations are refused (300 to an alternate server when
    /// configured, else 486); existing ones run on until they end.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// True in drain mode.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sweep
    }

    /// The next thing for the driver to do; drain after every call into the server.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Expires allocations, permissions, channels and reservations; `unix_now` refreshes
    /// the wall clock. Calling early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant, unix_now: u64) {
        self.clock_instant = now;
        self.clock_unix = unix_now;
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            let Some(allocation) = slot.allocation.as_mut() else {
                continue;
            };
            let id = AllocId {
                index: index as u32,
                generation: slot.generation,
            };
            if allocation.expires <= now {
                self.remove(id, "expired");
            } else {
                if let Some((old, until)) = allocation.previous_tuple
                    && until <= now
                {
                    allocation.previous_tuple = None;
                    self.by_tuple.remove(&old);
                }
                // Routes of lapsing channels and permissions end before they go.
                self.sync_routes(id, now);
                if let Some(allocation) = self.allocation_mut(id) {
                    allocation.sweep(now);
                }
            }
        }
        // A moved client refreshes within the longest lifetime, so an entry idle for
        // longer has no allocation left behind it.
        self.handed_over.sweep(now, self.config.max_lifetime);
        let events = &mut self.events;
        self.reservations.retain(|_, reservation| {
            let keep = reservation.expires > now;
            if !keep {
                events.push_back(Event::Release(reservation.relay));
            }
            keep
        });
        self.sweep_connections(now);
    }

    /// Ends every allocation (shutdown).
    pub fn close_all(&mut self) {
        let ids: Vec<AllocId> = self.by_tuple.values().copied().collect();
        for id in ids {
            self.remove(id, "server shutting down");
        }
        for (_, reservation) in self.reservations.drain() {
            self.events.push_back(Event::Release(reservation.relay));
        }
    }

    /// A stream client's connection closed: its allocation goes with it (RFC 8656 §3.1);
    /// a closed data connection takes its peer connection along (RFC 6062 §5.5).
    pub fn handle_disconnect(&mut self, tuple: FiveTuple) {
        if let Some(connection) = self.by_data.get(&tuple).copied() {
            self.close_connection(connection);
            return;
        }
        let Some(&id) = self.by_tuple.get(&tuple) else {
            return;
        };
        // A connection the allocation moved away from only drops its alias.
        if self
            .allocation(id)
            .is_some_and(|allocation| allocation.tuple != tuple)
        {
            self.by_tuple.remove(&tuple);
            return;
        }
        self.remove(id, "connection closed");
    }

    /// Handles one message from a client: a STUN message or a ChannelData message
    /// (for stream transports the driver frames them; `data` is exactly one).
    pub fn handle_client(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        out.clear();
        if let Some(shard) = self.handed_over.lookup(&tuple, now) {
            return Some(Transmit {
                destination: Destination::Shard { shard, tuple },
                payload: Payload::Input(0..data.len()),
            });
        }
        if ChannelData::is_channel_data(data) {
            return self.relay_channel_data(now, tuple, data);
        }
        let Ok(message) = Message::parse(data) else {
            self.stats.malformed += 1;
            return None;
        };
        match (message.class(), message.method()) {
            (Class::Request, _) => self.handle_request(now, tuple, &message, out),
            (Class::Indication, Method::SEND) => self.relay_send(now, tuple, &message),
            _ => None,
        }
    }

    /// The allocation of `tuple` and its relay; 437 when there is none.
    fn allocation_for(&self, tuple: FiveTuple) -> Result<(AllocId, Relay), ErrorCode> {
        let id = *self
            .by_tuple
            .get(&tuple)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        let relay = self.allocation(id).ok_or(ErrorCode::SERVER_ERROR)?.relay;
        Ok((id, relay))
    }

    /// The lifetime to grant (RFC 8656 §7.2 / §7.3): 0 when asked for 0, otherwise the
    /// request clamped to the maximum and raised to the default.
    fn lifetime(&self, message: &Message<'_>) -> Result<Duration, ErrorCode> {
        let requested = match message.attr(AttrType::LIFETIME) {
            None => return Ok(self.config.default_lifetime),
            Some([a, b, c, d]) => {
                Duration::from_secs(u64::from(u32::from_be_bytes([*a, *b, *c, *d])))
            }
            Some(_) => return Err(ErrorCode::BAD_REQUEST),
        };
        if requested.is_zero() {
            return Ok(Duration::ZERO);
        }
        Ok(requested
            .min(self.config.max_lifetime)
            .max(self.config.default_lifetime))
    }

    fn error(
        &self,
        out: &mut Vec<u8>,
        message: &Message<'_>,
        code: ErrorCode,
        signing: Option<Signing>,
        fingerprint: bool,
    ) {
        let mut writer =
            MessageWriter::new(out, message.method(), Class::Error, message.transaction());
        writer.error_code(code);
        finish(&mut writer, signing, fingerprint);
    }

    fn remove(&mut self, id: AllocId, reason: &str) {
        self.end_routes(id);
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(allocation) = slot.allocation.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.by_tuple.remove(&allocation.tuple);
        if let Some((old, _)) = allocation.previous_tuple {
            self.by_tuple.remove(&old);
        }
        self.tickets.retain(|_, owner| *owner != id);
        self.quotas.release(&allocation.user);
        // Its connections close below without it to count against: give them back here.
        self.quotas
            .release_connections(&allocation.user, allocation.tcp_connections);
        self.close_connections_of(id);
        self.events.push_back(Event::Release(allocation.relay));
        if let Some(additional) = allocation.additional {
            self.events.push_back(Event::Release(additional));
        }
        self.stats.allocations_ended += 1;
        tracing::info!(
            client = %allocation.tuple.client,
            relay = %allocation.relay.address,
            user = &*allocation.user,
            reason,
            sent_packets = allocation.upstream.packets,
            sent_bytes = allocation.upstream.bytes,
            received_packets = allocation.downstream.packets,
            received_bytes = allocation.downstream.bytes,
            "allocation ended"
        );
    }

    fn allocation_mut(&mut self, id: AllocId) -> Option<&mut Allocation> {
        slot_mut(&mut self.slots, id)
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.clock_unix + now.saturating_duration_since(self.clock_instant).as_secs()
    }

    /// The address a client sees for a relay: its `external-ip` when one maps it.
    fn public_relay(&self, relay: SocketAddr) -> SocketAddr {
        let pair = self
            .config
            .external_ips
            .iter()
            .find(|(private, _)| *private == relay.ip())
            .map(|(_, public)| *public);
        let fallback = self
            .config
            .external_ip
            .iter()
            .find(|public| public.is_ipv4() == relay.is_ipv4() && !relay.ip().is_loopback())
            .copied();
        pair.or(fallback)
            .map_or(relay, |public| SocketAddr::new(public, relay.port()))
    }

    /// A peer named by its public `external-ip` is the private relay address behind it
    /// (hairpin, as coturn maps XOR-PEER-ADDRESS on decode).
    fn internal_peer(&self, peer: SocketAddr) -> SocketAddr {
        self.config
            .external_ips
            .iter()
            .find(|(_, public)| *public == peer.ip())
            .map_or(peer, |(private, _)| SocketAddr::new(*private, peer.port()))
    }
}

/// USERHASH → username for static users (RFC 8489 §14.4).
fn userhashes(config: &ServerConfig, hasher: SeededState) -> Map<[u8; 32], String> {
    let mut map = Map::with_hasher(hasher);
    if let Credentials::Users(users) = &config.credentials {
        map.extend(
            users
                .keys()
                .map(|name| (userhash(name, &config.realm), name.clone())),
        );
    }
    map
}

/// Nonces keyed for the whole process, offering USERHASH when some user can use it.
fn nonces(
    config: &ServerConfig,
    shard: &ShardContext,
    userhashes: &Map<[u8; 32], String>,
) -> Nonces {
    let features = if userhashes.is_empty() {
        FEATURES_PASSWORD_ALGORITHMS
    } else {
        FEATURES_WITH_USERHASH
    };
    Nonces::new(
        shard.nonce_key,
        shard.nonce_epoch,
        config.stale_nonce,
        features,
    )
}

/// Borrows only the table, so counters in `self.stats` stay writable alongside.
fn slot_mut(slots: &mut [Slot], id: AllocId) -> Option<&mut Allocation> {
    slots
        .get_mut(id.index as usize)
        .filter(|slot| slot.generation == id.generation)
        .and_then(|slot| slot.allocation.as_mut())
}

fn count(traffic: &mut Traffic, bytes: usize) {
    traffic.packets += 1;
    traffic.bytes += bytes as u64;
}

/// Signs a response in kind (MESSAGE-INTEGRITY-SHA256 for a request that used it) and
/// adds FINGERPRINT when due.
fn finish(writer: &mut MessageWriter<'_>, signing: Option<Signing>, fingerprint: bool) {
    match signing {
        Some(Signing { key, sha256: true }) => {
            writer.integrity_sha256(key.as_bytes());
        }
        Some(Signing { key, sha256: false }) => {
            writer.integrity(key.as_bytes());
        }
        None => {}
    }
    if fingerprint {
        writer.fingerprint();
    }
}

mod allocate;
mod authenticate;
mod channel;
mod dual;
mod offloaded;
mod ops;
pub use ops::Reconfigured;
mod permission;
mod refresh;
mod relay;
mod request;
mod tcp;

#[cfg(test)]
mod tests;
