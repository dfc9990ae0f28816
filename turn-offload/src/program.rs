//! The compiled eBPF object, when the build had the toolchain (see build.rs).

/// The ELF object of `ebpf/relay.bpf.c`, aligned as aya's parser needs.
#[cfg(turn_offload_program)]
pub(crate) const OBJECT: Option<&[u8]> = Some(aya::include_bytes_aligned!(concat!(
    env!("OUT_DIR"),
    "/relay.bpf.o"
)));

/// This build has no program: clang or libbpf's headers were missing.
#[cfg(not(turn_offload_program))]
pub(crate) const OBJECT: Option<&[u8]> = None;

/// The classifier's function name in the object.
pub(crate) const PROGRAM: &str = "turn_relay";
/// Client -> peer entries, keyed by the client's 5-tuple and channel.
pub(crate) const FROM_CLIENTS: &str = "from_clients";
/// Peer -> client entries, keyed by the peer and relay addresses.
pub(crate) const FROM_PEERS: &str = "from_peers";
/// Per-CPU counters, one slot per binding.
pub(crate) const TRAFFIC: &str = "traffic";
