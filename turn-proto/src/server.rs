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
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtc_auth::long_term::userhash;

use super::allocation::{Allocation, Channel, Traffic};
use super::auth::{Credentials, KeyError, LongTermKey, OFFERED_ALGORITHMS, PasswordAlgorithm};
use super::bandwidth::TokenBucket;
use super::codec::address::decode_xor;
use super::codec::attribute::AttrType;
use super::codec::channel_data::CHANNEL_RANGE;
use super::codec::{ChannelData, Class, ErrorCode, Message, MessageWriter, Method, TransactionId};
use super::connection::Connection;
use super::event::{
    BindOutcome, BindRequest, ChannelRoute, Event, NoRelayPort, Relay, RelayRequest,
};
use super::hash::{Map, SeededState};
use super::names::{AllocId, ConnectionId, FiveTuple, Transport};
use super::nonce::{FEATURES_PASSWORD_ALGORITHMS, FEATURES_WITH_USERHASH, Nonces};
use super::quota::{QuotaCounts, QuotaLedger, QuotaLimits};
use super::ratelimit::{AbuseLimiters, Limited, RateLimits};
use super::server_config::ServerConfig;
use super::shards::{HandOvers, ShardContext};
use super::transmit::{Destination, Payload, Transmit};

/// How long an EVEN-PORT reservation is held (RFC 8656 §7.2: about 30 s).
const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// How long the 5-tuple an allocation moved away from (RFC 8016) is still accepted.
const MOBILITY_GRACE: Duration = Duration::from_secs(10);
/// How often lapsed allocations, permissions and channels are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// REQUESTED-TRANSPORT value for UDP (RFC 8656 §18.8).
const PROTOCOL_UDP: u8 = 17;
/// REQUESTED-TRANSPORT value for TCP (RFC 6062 §5.1).
const PROTOCOL_TCP: u8 = 6;
/// The smallest request a client starts a session with: an Allocate carrying
/// REQUESTED-TRANSPORT (20-byte header, 8-byte attribute). A shorter unauthenticated UDP
/// request gets a bare 400 (28 bytes) instead of the 401 challenge (about 100 bytes),
/// so a spoofed source never gets more than about 4 bytes per byte it sent
/// (docs/security.md measures it).
const MIN_CHALLENGED_LEN: usize = 28;
/// Largest peer payload that still fits a Data indication's 16-bit length.
const MAX_DATA_INDICATION_PAYLOAD: usize = 65_000;

/// Room the driver leaves in front of a peer datagram passed to [`Server::handle_peer`]:
/// a ChannelData header (RFC 8656 §12.4), written there in place so relaying to a UDP
/// client copies nothing.
pub const PEER_HEADROOM: usize = 4;

/// Counters for logs and metrics, cumulative since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations ended (refresh to 0, expiry, shutdown).
    pub allocations_ended: u64,
    /// Binding requests answered.
    pub binding_requests: u64,
    /// Requests refused for missing or wrong credentials (401/441).
    pub auth_failures: u64,
    /// Requests refused for a stale or invalid nonce (438).
    pub stale_nonces: u64,
    /// Permissions, channels or sends refused by peer policy.
    pub peers_denied: u64,
    /// Allocations refused by quotas (486).
    pub quota_refusals: u64,
    /// Input that was neither STUN nor ChannelData, or malformed.
    pub malformed: u64,
    /// Relayed data dropped: no allocation, permission or channel.
    pub unroutable: u64,
    /// Client to peer traffic, all allocations.
    pub upstream: Traffic,
    /// Peer to client traffic, all allocations.
    pub downstream: Traffic,
}

impl Stats {
    /// Adds another shard's counters.
    pub fn merge(&mut self, other: &Stats) {
        self.allocations_created += other.allocations_created;
        self.allocations_ended += other.allocations_ended;
        self.binding_requests += other.binding_requests;
        self.auth_failures += other.auth_failures;
        self.stale_nonces += other.stale_nonces;
        self.peers_denied += other.peers_denied;
        self.quota_refusals += other.quota_refusals;
        self.malformed += other.malformed;
        self.unroutable += other.unroutable;
        self.upstream.merge(&other.upstream);
        self.downstream.merge(&other.downstream);
    }
}

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

    /// Handles a datagram from `peer` on allocation `id`'s relay socket. `datagram` is
    /// [`PEER_HEADROOM`] bytes of room followed by the payload: for a UDP client with a
    /// channel to `peer`, the core writes the ChannelData header there and the transmit
    /// points into `datagram`; otherwise it writes into `out`.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        id: AllocId,
        peer: SocketAddr,
        datagram: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        out.clear();
        let data = datagram.get(PEER_HEADROOM..)?;
        let fingerprint = self.config.fingerprint;
        let allocation = slot_mut(&mut self.slots, id)?;
        if !allocation.permits(peer.ip(), now) {
            self.stats.unroutable += 1;
            return None;
        }
        if let Some(limit) = allocation.downstream_limit.as_mut()
            && !limit.take(data.len(), now)
        {
            allocation.downstream.dropped += 1;
            self.stats.downstream.dropped += 1;
            return None;
        }
        let tuple = allocation.tuple;
        let len = data.len();
        let payload = if let Some(channel) = allocation.channel_to(peer, now) {
            if tuple.transport.is_stream() {
                // Padded to 4 bytes (RFC 8656 §12.5): written out whole.
                if !ChannelData::write(channel.number, data, true, out) {
                    self.stats.unroutable += 1;
                    return None;
                }
                Payload::Output
            } else {
                let header = ChannelData::header(channel.number, len)?;
                datagram[..PEER_HEADROOM].copy_from_slice(&header);
                Payload::Input(0..PEER_HEADROOM + len)
            }
        } else {
            if data.len() > MAX_DATA_INDICATION_PAYLOAD {
                self.stats.unroutable += 1;
                return None;
            }
            // Only the Data indication path needs a transaction id: ChannelData stays free of it.
            let transaction = TransactionId(self.rng.random());
            let mut writer = MessageWriter::new(out, Method::DATA, Class::Indication, transaction);
            writer
                .xor_address(AttrType::XOR_PEER_ADDRESS, peer)
                .attr(AttrType::DATA, data);
            if fingerprint {
                writer.fingerprint();
            }
            Payload::Output
        };
        count(&mut allocation.downstream, len);
        count(&mut self.stats.downstream, len);
        Some(Transmit {
            destination: Destination::Client(tuple),
            payload,
        })
    }

    fn relay_channel_data(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
    ) -> Option<Transmit> {
        let Some(message) = ChannelData::parse(data) else {
            self.stats.malformed += 1;
            return None;
        };
        let Some(&id) = self.by_tuple.get(&tuple) else {
            self.stats.unroutable += 1;
            return None;
        };
        // One lookup: the allocation found here is the one that sends.
        let Some(allocation) = slot_mut(&mut self.slots, id) else {
            self.stats.unroutable += 1;
            return None;
        };
        let Some(peer) = allocation
            .channel(message.channel, now)
            .map(|channel| channel.peer)
            .filter(|peer| allocation.permits(peer.ip(), now))
        else {
            self.stats.unroutable += 1;
            return None;
        };
        send_to_peer(
            &mut self.stats,
            allocation,
            now,
            peer,
            4..4 + message.data.len(),
        )
    }

    fn relay_send(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Option<Transmit> {
        let id = *self.by_tuple.get(&tuple)?;
        let (Some(peer), Some(range)) = (
            message.attr(AttrType::XOR_PEER_ADDRESS),
            message.attr_range(AttrType::DATA),
        ) else {
            self.stats.malformed += 1;
            return None;
        };
        let Ok(peer) = decode_xor(peer, &message.transaction()) else {
            self.stats.malformed += 1;
            return None;
        };
        let peer = self.internal_peer(peer);
        if self.config.policy.check(peer).is_err() {
            self.stats.peers_denied += 1;
            return None;
        }
        let allocation = slot_mut(&mut self.slots, id)?;
        if allocation.tcp || !allocation.permits(peer.ip(), now) {
            self.stats.unroutable += 1;
            return None;
        }
        send_to_peer(&mut self.stats, allocation, now, peer, range)
    }

    fn handle_request(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Transmit> {
        let fingerprint = self.config.fingerprint || message.has_fingerprint();
        let reply = Some(Transmit {
            destination: Destination::Client(tuple),
            payload: Payload::Output,
        });
        let method = message.method();
        let client = tuple.client.ip();
        // A UDP source may be spoofed: bound what it gets. A request counts as
        // unauthenticated until its MESSAGE-INTEGRITY verifies, so what cannot be verified
        // (no integrity, a Binding or other method that is never authenticated, a server
        // without credentials) counts before any work, and a signed TURN request counts
        // only when its integrity fails (a fake one included).
        let spoofable = !tuple.transport.is_stream() && self.config.challenge_rate > 0;
        let verifiable = message.has_integrity()
            && self.config.credentials.required()
            && is_authenticated_method(method);
        // The health check's Binding from loopback cannot come from a remote flood: a
        // spoofed flood that empties the all-sources bucket must not fail it.
        let probe = method == Method::BINDING && client.is_loopback();
        if spoofable && !verifiable && !self.admit(Limited::Unauthenticated, client, now, probe) {
            return None;
        }
        if method == Method::BINDING {
            self.stats.binding_requests += 1;
            let mut writer =
                MessageWriter::new(out, Method::BINDING, Class::Success, message.transaction());
            writer.xor_address(AttrType::XOR_MAPPED_ADDRESS, tuple.client);
            if fingerprint {
                writer.fingerprint();
            }
            return reply;
        }
        if !is_authenticated_method(method) {
            self.error(out, message, ErrorCode::BAD_REQUEST, None, fingerprint);
            return reply;
        }
        let auth = match self.authenticate(now, tuple, message) {
            // A mobility Refresh or a reservation Allocate naming another shard's
            // allocation goes there, and its 5-tuple after it; only once it has
            // authenticated, so spoofed ones cannot fill the handover table.
            Ok(_) if let Some(shard) = self.owner_elsewhere(now, tuple, message) => {
                return Some(Transmit {
                    destination: Destination::Shard { shard, tuple },
                    payload: Payload::Input(0..message.bytes().len()),
                });
            }
            Ok(auth) => auth,
            Err(code) => {
                if spoofable
                    && verifiable
                    && !self.admit(Limited::Unauthenticated, client, now, false)
                {
                    return None;
                }
                if matches!(code, ErrorCode::UNAUTHORIZED | ErrorCode::STALE_NONCE) {
                    if spoofable && !self.admit(Limited::Challenges, client, now, false) {
                        return None;
                    }
                    if spoofable && message.bytes().len() < MIN_CHALLENGED_LEN {
                        // No client starts with less; ~100 bytes to 20 would amplify.
                        MessageWriter::new(out, method, Class::Error, message.transaction())
                            .bare_error_code(ErrorCode::BAD_REQUEST);
                        return reply;
                    }
                    self.challenge(out, message, code, now, client, fingerprint);
                } else {
                    self.error(out, message, code, None, fingerprint);
                }
                return reply;
            }
        };
        let signing = auth.signing;
        let mut unknown = [AttrType(0); 16];
        let mut unknown_count = 0;
        for kind in message.attr_types() {
            if kind.is_comprehension_required()
                && !kind.is_understood()
                && unknown_count < unknown.len()
            {
                unknown[unknown_count] = kind;
                unknown_count += 1;
            }
        }
        if unknown_count > 0 {
            let mut writer = MessageWriter::new(out, method, Class::Error, message.transaction());
            writer
                .error_code(ErrorCode::UNKNOWN_ATTRIBUTE)
                .unknown_attributes(&unknown[..unknown_count]);
            finish(&mut writer, signing, fingerprint);
            return reply;
        }
        let result = match method {
            Method::ALLOCATE => self.allocate(now, tuple, message, auth, fingerprint, out),
            Method::REFRESH => self
                .refresh(now, tuple, message, &auth, out)
                .map(|()| Answer::Now),
            Method::CREATE_PERMISSION => self
                .create_permission(now, tuple, message, out)
                .map(|()| Answer::Now),
            Method::CONNECT => self.connect(now, tuple, message).map(|()| Answer::Later),
            Method::CONNECTION_BIND => self
                .connection_bind(tuple, message, out)
                .map(|()| Answer::Now),
            _ => self
                .channel_bind(now, tuple, message, out)
                .map(|()| Answer::Now),
        };
        match result {
            // Answered once the driver reports back (relay sockets bound, peer connected).
            Ok(Answer::Later) => return None,
            Ok(Answer::Now) => {
                let mut writer = MessageWriter::resume(out);
                finish(&mut writer, signing, fingerprint);
            }
            Err(code) => {
                tracing::debug!(
                    client = %tuple.client,
                    method = method.0,
                    code = code.0,
                    "request refused"
                );
                out.clear();
                self.error(out, message, code, signing, fingerprint);
            }
        }
        reply
    }

    /// Asks the shared limits about spoofable input, counting what they refuse.
    fn admit(&mut self, what: Limited, source: IpAddr, now: Instant, probe: bool) -> bool {
        let admitted = self.limits.admit(what, source, now, probe);
        if !admitted {
            match what {
                Limited::Unauthenticated => self.rate_limited.0 += 1,
                Limited::Challenges => self.rate_limited.1 += 1,
            }
        }
        admitted
    }

    /// The long-term credential mechanism (RFC 8489 §9.2.4) with coturn's session-key
    /// caching: once a 5-tuple has an allocation, its requests are checked against the
    /// key that created it, so a REST credential expiring mid-call does not end the call.
    /// A ConnectionBind is checked the same way against the allocation that owns its
    /// CONNECTION-ID (RFC 6062 §5.4: same credentials as the control connection).
    /// RFC 8489 additions: PASSWORD-ALGORITHM (MD5 or SHA-256 keys), USERHASH for static
    /// users, and MESSAGE-INTEGRITY-SHA256, answered in kind.
    fn authenticate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
    ) -> Result<Auth, ErrorCode> {
        if !self.config.credentials.required() {
            return Ok(Auth {
                signing: None,
                username: String::new(),
                user: String::new(),
            });
        }
        if !message.has_integrity() {
            return Err(ErrorCode::UNAUTHORIZED);
        }
        let text = |kind| message.text_attr(kind).and_then(Result::ok);
        let (Some(realm), Some(nonce)) = (text(AttrType::REALM), message.attr(AttrType::NONCE))
        else {
            return Err(ErrorCode::BAD_REQUEST);
        };
        if self.nonces.check(nonce, now, tuple.client.ip()).is_err() {
            self.stats.stale_nonces += 1;
            return Err(ErrorCode::STALE_NONCE);
        }
        if realm != self.config.realm {
            self.stats.auth_failures += 1;
            return Err(ErrorCode::UNAUTHORIZED);
        }
        // RFC 8489 §9.2.4: the client's choice, and our offer echoed back unchanged.
        let offered = message.attr(AttrType::PASSWORD_ALGORITHMS);
        if offered.is_some_and(|offered| offered != OFFERED_ALGORITHMS) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let algorithm = match message.attr(AttrType::PASSWORD_ALGORITHM) {
            None => PasswordAlgorithm::Md5,
            Some(_) if offered.is_none() => return Err(ErrorCode::BAD_REQUEST),
            Some(value) => PasswordAlgorithm::parse(value).ok_or(ErrorCode::BAD_REQUEST)?,
        };
        let username: String = match (text(AttrType::USERNAME), message.attr(AttrType::USERHASH)) {
            (Some(username), _) => username.to_owned(),
            (None, Some(hash)) => match <[u8; 32]>::try_from(hash)
                .ok()
                .and_then(|hash| self.userhashes.get(&hash))
            {
                Some(username) => username.clone(),
                None => {
                    self.stats.auth_failures += 1;
                    return Err(ErrorCode::UNAUTHORIZED);
                }
            },
            (None, None) => return Err(ErrorCode::BAD_REQUEST),
        };
        let sha256 = message.has_integrity_sha256();
        let verify = |key: &LongTermKey| {
            if sha256 {
                message.verify_integrity_sha256(key.as_bytes())
            } else {
                message.verify_integrity(key.as_bytes())
            }
        };
        let session = if message.method() == Method::CONNECTION_BIND {
            tcp::connection_id(message)
                .and_then(|connection| self.connections.get(&connection))
                .map(|connection| connection.allocation)
        } else {
            self.by_tuple.get(&tuple).copied()
        };
        if let Some(allocation) = session.and_then(|id| self.allocation(id)) {
            if *allocation.username != *username {
                self.stats.auth_failures += 1;
                return Err(if message.method() == Method::ALLOCATE {
                    ErrorCode::ALLOCATION_MISMATCH
                } else {
                    ErrorCode::WRONG_CREDENTIALS
                });
            }
            if let Some(key) = allocation.key.filter(|key| verify(key)) {
                let user = allocation.user.to_string();
                return Ok(Auth {
                    signing: Some(Signing { key, sha256 }),
                    username,
                    user,
                });
            }
            self.stats.auth_failures += 1;
            return Err(ErrorCode::UNAUTHORIZED);
        }
        let unix_now = self.unix_now(now);
        let found =
            match self
                .config
                .credentials
                .keys(&username, &self.config.realm, unix_now, algorithm)
            {
                Ok((mut keys, user)) => keys
                    .find(|key| verify(key))
                    .map(|key| (key, user.to_owned())),
                Err(KeyError::Malformed) => return Err(ErrorCode::BAD_REQUEST),
                Err(KeyError::Unknown | KeyError::Expired) => None,
            };
        match found {
            Some((key, user)) => Ok(Auth {
                signing: Some(Signing { key, sha256 }),
                username,
                user,
            }),
            None => {
                self.stats.auth_failures += 1;
                Err(ErrorCode::UNAUTHORIZED)
            }
        }
    }

    /// Allocate (RFC 8656 §7.2): answered now when it fails or retransmits; otherwise
    /// the driver is asked for relay sockets ([`Event::Bind`]) and
    /// [`Self::relay_bound`] answers.
    fn allocate(
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
            None => dual.is_some() && !self.config.relay_ipv4,
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
    fn release_outcome(&mut self, outcome: BindOutcome) {
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

    fn refresh(
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
    fn move_allocation(
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

    fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), ErrorCode> {
        let (id, _) = self.allocation_for(tuple)?;
        let transaction = message.transaction();
        // Validate every peer before installing any: the request succeeds or fails whole.
        let mut peers: Vec<IpAddr> = Vec::new();
        for value in message.attrs(AttrType::XOR_PEER_ADDRESS) {
            let peer = decode_xor(value, &transaction).map_err(|_| ErrorCode::BAD_REQUEST)?;
            let peer = self.internal_peer(peer);
            self.check_peer(peer, id)?;
            peers.push(peer.ip());
        }
        if peers.is_empty() {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let expires = now + self.config.permission_lifetime;
        let max = self.config.max_permissions;
        let allocation = self.allocation_mut(id).ok_or(ErrorCode::SERVER_ERROR)?;
        for ip in peers {
            if !allocation.permit(ip, expires, max) {
                return Err(ErrorCode::INSUFFICIENT_CAPACITY);
            }
        }
        self.sync_routes(id, now);
        MessageWriter::new(out, Method::CREATE_PERMISSION, Class::Success, transaction);
        Ok(())
    }

    fn channel_bind(
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

    /// The request's XOR-PEER-ADDRESS as the relay reaches it (see `internal_peer`);
    /// 400 when missing or malformed.
    fn requested_peer(&self, message: &Message<'_>) -> Result<SocketAddr, ErrorCode> {
        let value = message
            .attr(AttrType::XOR_PEER_ADDRESS)
            .ok_or(ErrorCode::BAD_REQUEST)?;
        let peer = decode_xor(value, &message.transaction()).map_err(|_| ErrorCode::BAD_REQUEST)?;
        Ok(self.internal_peer(peer))
    }

    /// The server to redirect a new allocation to, when `alternate-server` lists one of
    /// the client's family: `tls-alternate-server` for TLS clients, and
    /// `udp-alternate-server` / `tcp-alternate-server`, when set, for UDP / TCP clients.
    fn alternate_for(&mut self, tuple: FiveTuple) -> Option<SocketAddr> {
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

    /// The shard owning the allocation an authenticated request names by mobility ticket
    /// or reservation token, when that is another shard and this one has no allocation
    /// for `tuple`; the 5-tuple is handed over from now on.
    fn owner_elsewhere(
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
    fn issue_ticket(&mut self, id: AllocId) -> [u8; 16] {
        let mut ticket: [u8; 16] = self.rng.random();
        ticket[0] = self.shard.index;
        self.tickets.retain(|_, owner| *owner != id);
        self.tickets.insert(ticket, id);
        if let Some(allocation) = slot_mut(&mut self.slots, id) {
            allocation.ticket = Some(ticket);
        }
        ticket
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

    /// Tells the driver which of allocation `id`'s channels it may relay alone from now
    /// on, with their expiry, and which no longer ([`ChannelRoute`]).
    fn sync_routes(&mut self, id: AllocId, now: Instant) {
        self.report_routes(id, Some(now));
    }

    /// Ends every route of allocation `id` (it ends or moves).
    fn end_routes(&mut self, id: AllocId) {
        self.report_routes(id, None);
    }

    /// A route for each channel usable at `now` whose last report differs, an end for
    /// each reported one no longer usable; with no `now`, an end for every reported one.
    fn report_routes(&mut self, id: AllocId, now: Option<Instant>) {
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

    /// Family match (443: allocation `id` has no relay address of the peer's family) and
    /// peer policy (403) for a peer named in a request.
    fn check_peer(&mut self, peer: SocketAddr, id: AllocId) -> Result<(), ErrorCode> {
        let reachable = self
            .allocation(id)
            .is_some_and(|allocation| allocation.relay_for(peer).is_some());
        if !reachable {
            return Err(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        match self.config.policy.check(peer) {
            Ok(()) => Ok(()),
            Err(denial) => {
                self.stats.peers_denied += 1;
                tracing::info!(%peer, ?denial, "peer denied");
                Err(ErrorCode::FORBIDDEN)
            }
        }
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

    /// 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS (RFC 8489 §9.2.4), and
    /// nothing else a spoofed source could use for amplification: no reason phrase.
    fn challenge(
        &self,
        out: &mut Vec<u8>,
        message: &Message<'_>,
        code: ErrorCode,
        now: Instant,
        client: IpAddr,
        fingerprint: bool,
    ) {
        let nonce = self.nonces.issue(now, client);
        let mut writer =
            MessageWriter::new(out, message.method(), Class::Error, message.transaction());
        writer
            .bare_error_code(code)
            .attr(AttrType::REALM, self.config.realm.as_bytes())
            .attr(AttrType::NONCE, &nonce)
            .attr(AttrType::PASSWORD_ALGORITHMS, &OFFERED_ALGORITHMS);
        if fingerprint {
            writer.fingerprint();
        }
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

    fn next_id(&mut self) -> AllocId {
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

/// The methods that carry credentials (RFC 8656, RFC 6062); anything else is 400.
fn is_authenticated_method(method: Method) -> bool {
    matches!(
        method,
        Method::ALLOCATE
            | Method::REFRESH
            | Method::CREATE_PERMISSION
            | Method::CHANNEL_BIND
            | Method::CONNECT
            | Method::CONNECTION_BIND
    )
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

/// Relays `range` of the client's input to `peer` from `allocation`'s relay of the peer's
/// family, after `max-bps`; counts it.
fn send_to_peer(
    stats: &mut Stats,
    allocation: &mut Allocation,
    now: Instant,
    peer: SocketAddr,
    range: std::ops::Range<usize>,
) -> Option<Transmit> {
    let Some(relay) = allocation.relay_for(peer) else {
        stats.unroutable += 1;
        return None;
    };
    let len = range.len();
    if let Some(limit) = allocation.upstream_limit.as_mut()
        && !limit.take(len, now)
    {
        allocation.upstream.dropped += 1;
        stats.upstream.dropped += 1;
        return None;
    }
    count(&mut allocation.upstream, len);
    count(&mut stats.upstream, len);
    Some(Transmit {
        destination: Destination::Peer {
            socket: relay.socket,
            peer,
        },
        payload: Payload::Input(range),
    })
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

mod dual;
mod ops;
pub use ops::Reconfigured;
mod tcp;

#[cfg(test)]
mod tests;
