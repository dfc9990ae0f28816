//! turn-server's kernel fast path: an eBPF program that relays channel-bound ChannelData
//! between a UDP client and its peers without waking userspace, and the loader the
//! driver calls to install and remove bindings and to read back what was relayed.
//!
//! # What the program does
//!
//! A TC classifier (`ebpf/relay.bpf.c`, built from source by `build.rs` with clang and
//! libbpf's headers) sits on the ingress of the interfaces the server's clients and
//! peers reach it on. For a packet it recognises it rewrites the IP and UDP headers in
//! place, fixes the checksums and sends it on:
//!
//! - **client → peer**: a UDP datagram from an installed client 5-tuple to the server's
//!   listening address whose payload is ChannelData on an installed channel, exactly as
//!   long as its length field says, becomes a datagram from the relay address to the
//!   peer carrying the ChannelData payload.
//! - **peer → client**: a UDP datagram from an installed peer to its relay address
//!   becomes ChannelData (4-byte header, no padding: over UDP none is needed, RFC 8656
//!   §12.5) from the listening address to the client.
//!
//! IPv4 and IPv6 both; the four addresses of a binding share one family. TTL/hop limit
//! is the incoming one less one; DSCP, ECN and DF stay as they came (the preferred
//! behaviour of RFC 8656's "IP Header Fields for UDP-to-UDP Translation").
//!
//! The program asks the kernel's routing table where the rewritten packet goes
//! (`bpf_fib_lookup`): a routed destination is sent out of its interface with the
//! neighbour's MAC (`bpf_redirect`, or `bpf_redirect_neigh` while the neighbour is not
//! resolved yet); a local destination arriving on `lo` goes on up the stack, which is the
//! whole story on a loopback setup. `bpf_fib_lookup` only answers for an interface with
//! forwarding on, so the program asks as `lo`, and the loader requires
//! `net.ipv4.conf.lo.forwarding=1` (and the IPv6 one): `lo` carries only the host's own
//! packets, so this does not make the host a router.
//!
//! **TC, not XDP.** TC works on every interface, `lo` and veth included, sees packets
//! after GRO with their checksum state, and can grow and shrink a packet by the 4-byte
//! ChannelData header with `bpf_skb_change_tail`. XDP would save the skb allocation on
//! NICs with native XDP but needs per-driver support, runs as slow generic XDP on `lo`
//! and veth, and cannot hand a packet to another interface without a devmap; it is not
//! worth a second program until a benchmark on real NICs says otherwise.
//!
//! **Checksums.** The payload moves by 4 bytes while the headers stay where they are
//! (moving the headers instead, with `bpf_skb_adjust_room`, leaves a locally sent
//! packet's `CHECKSUM_PARTIAL` offsets pointing at the wrong bytes). The UDP checksum is
//! updated incrementally for the new pseudo-header, ports, length and the header bytes
//! removed or added: the program sums the two deltas itself, and `bpf_l4_csum_replace`
//! applies them, only the pseudo-header one when the checksum is still to be computed
//! (`CHECKSUM_PARTIAL`, packets from the same host). The IPv4 header checksum is
//! recomputed.
//!
//! **Cost per packet.** The program reads the headers in place (direct packet access;
//! headers outside the skb's linear part are pulled into it first, which changes how the
//! packet is stored, not what it holds), builds the rewritten headers in a per-CPU
//! scratch buffer right before the first payload chunk and writes both with one
//! `bpf_skb_store_bytes`: a datagram of up to 1536 payload bytes (anything a 1500-byte
//! MTU carries) costs one `bpf_skb_load_bytes` and one store besides the routing lookup,
//! one or two `bpf_skb_change_tail` and the two checksum updates. It does not write the
//! packet directly, which would make the verifier unclone every cloned packet on the
//! interface (TCP's, or any while a packet socket listens) before the program even looks
//! at it.
//!
//! # What goes to userspace unchanged
//!
//! Everything else: STUN (Refresh, CreatePermission, ChannelBind, Send and Data
//! indications), unknown channels and peers, removed bindings, IPv4 options and
//! fragments, IPv6 extension headers, VLAN-tagged and GSO/GRO-merged packets, short or
//! inconsistent lengths, ChannelData whose length field disagrees with the datagram
//! (padded ChannelData included), IPv6 UDP with a zero checksum, a TTL of 0 or 1,
//! payloads over 4096 bytes, destinations the routing table cannot hand over
//! (unreachable, needs fragmenting, local but not arriving on `lo`). TCP and TLS clients
//! never reach the program's maps: the driver installs UDP bindings only.
//!
//! # Maps
//!
//! | map | type | key | value |
//! |---|---|---|---|
//! | `from_clients` | hash | client IP, server IP, client port, server port, channel (40 B) | relay IP, peer IP, slot, relay port, peer port (40 B) |
//! | `from_peers` | hash | peer IP, relay IP, peer port, relay port (36 B) | client IP, server IP, slot, client port, server port, channel (44 B) |
//! | `traffic` | per-CPU array | slot | packets and bytes to the peer, packets and bytes to the client (4 × u64) |
//!
//! IPs are 16 bytes (IPv4 mapped into IPv6), ports and channel in network byte order;
//! `layout.rs` encodes them. All three maps have [`Config::max_bindings`] entries.
//!
//! # Counters
//!
//! Each installed [`Binding`] owns one slot of `traffic`; the program adds each relayed
//! packet and its application data bytes (what userspace would count) to its CPU's copy,
//! without atomics. [`FastPath::take_counters`] sums the CPUs and returns what was
//! relayed since the last call for each binding; [`FastPath::remove`] deletes the map
//! entries first and then returns the rest, so the driver's allocation counters,
//! quotas, logs and Prometheus metrics see every byte exactly once.
//!
//! # Threads
//!
//! A driver with several threads that each own their clients (turn-server's shards)
//! loads one program and [`FastPath::split`]s it: each thread gets a [`Share`], handles
//! of its own on the maps (duplicated file descriptors) with its own range of counter
//! slots, and installs, removes and reads its bindings without a lock or waiting on
//! another thread. The [`Attachment`] stays with whoever started the threads; dropping
//! it detaches the program.
//!
//! # Other programs on the same interface
//!
//! What the program does not relay it returns with `TC_ACT_UNSPEC`, "no verdict": the
//! kernel runs the next TC program on the interface (another server's, a CNI's), and
//! after the last one hands the packet up the stack as if none had run.
//!
//! # `max-bps` and `bps-capacity`
//!
//! An allocation with a `max-bps` limit stays on the userspace path: the driver does not
//! install its bindings. An exact in-kernel token bucket would need a spin-locked
//! per-allocation state shared by all CPUs (per-CPU buckets would let a flow exceed the
//! limit by the number of CPUs), and dropped packets would have to be counted for
//! `turn_drops_total{reason="bandwidth"}`; the userspace bucket already does both, and a
//! limited allocation is by definition not the traffic that needs the fast path.
//! `bps-capacity` is an admission rule applied at Allocate in userspace and is not
//! touched by the fast path.
//!
//! # Privileges and fallback
//!
//! Loading needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN on kernels before 5.8), and
//! Linux 5.10 or later (`bpf_redirect_neigh`). [`FastPath::load`] returns
//! [`Unavailable`] with a reason an operator can act on when the build has no program,
//! a privilege or an interface is missing, `lo` forwarding is off or the kernel refuses
//! the program; the driver then relays in userspace. [`FastPath::check`] answers the
//! same question without attaching anything (for `--check-config`).
//!
//! ```no_run
//! use turn_offload::{Binding, Config, FastPath};
//!
//! let mut fast = match FastPath::load(&Config::new(["eth0"])) {
//!     Ok(fast) => fast,
//!     Err(unavailable) => return eprintln!("{unavailable}; relaying in userspace"),
//! };
//! let binding = Binding {
//!     client: "203.0.113.7:40000".parse().unwrap(),
//!     server: "198.51.100.1:3478".parse().unwrap(),
//!     relay: "198.51.100.1:49152".parse().unwrap(),
//!     peer: "192.0.2.9:50000".parse().unwrap(),
//!     channel: 0x4000,
//! };
//! fast.install(binding).expect("installed");
//! for (binding, delta) in fast.take_counters().expect("counters") {
//!     println!("{binding:?}: {} packets to the peer", delta.to_peer.packets);
//! }
//! let rest = fast.remove(&binding).expect("removed");
//! ```

mod binding;
mod fastpath;
mod interfaces;
mod layout;
mod program;
mod share;
mod slots;
mod unavailable;

pub use binding::{Binding, BindingError, Counters, Traffic};
pub use fastpath::{Attachment, Config, DEFAULT_MAX_BINDINGS, FastPath, RunStats};
pub use interfaces::interfaces_for;
pub use share::{InstallError, Share};
pub use unavailable::Unavailable;
