//! Loading and attaching the program, and keeping its maps in step with the bindings
//! the driver installs and removes.

use std::collections::HashMap;
use std::error::Error;
use std::fs;

use aya::maps::{self, MapData, MapError, PerCpuArray, PerCpuValues};
use aya::programs::{SchedClassifier, TcAttachType, tc};
use aya::util::{KernelVersion, nr_cpus};
use aya::{Ebpf, EbpfLoader};
use nix::errno::Errno;
use thiserror::Error;

use crate::binding::{Binding, BindingError, Counters};
use crate::layout::{self, ClientKey, ClientValue, PeerKey, PeerValue, TrafficValue};
use crate::program;
use crate::slots::Slots;

/// Bindings one loaded program holds unless configured otherwise (each costs two hash
/// entries of ~100 bytes and 32 bytes of counters per CPU).
pub const DEFAULT_MAX_BINDINGS: u32 = 65_536;

/// Where to attach and how many bindings to make room for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Interfaces whose ingress the program watches: those the server's clients and
    /// peers reach it on (`lo` for a loopback setup).
    pub interfaces: Vec<String>,
    /// The size of the maps; installs beyond it fail with [`InstallError::Full`].
    pub max_bindings: u32,
}

impl Config {
    /// The program on `interfaces`, room for [`DEFAULT_MAX_BINDINGS`].
    pub fn new<S: Into<String>>(interfaces: impl IntoIterator<Item = S>) -> Self {
        Self {
            interfaces: interfaces.into_iter().map(Into::into).collect(),
            max_bindings: DEFAULT_MAX_BINDINGS,
        }
    }
}

/// The fast path cannot run here; the driver relays in userspace and logs `reason`
/// once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("kernel fast path unavailable: {reason}")]
pub struct Unavailable {
    /// What is missing, in words an operator can act on.
    pub reason: String,
}

/// Why a binding was not installed; it stays on the userspace path.
#[derive(Debug, Error)]
pub enum InstallError {
    /// The binding is not one the program can relay.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// All `max_bindings` slots are in use.
    #[error("the fast path already holds its maximum of {0} bindings")]
    Full(u32),
    /// Another installed binding has the same client 5-tuple and channel, or the same
    /// peer on the same relay address.
    #[error("the binding conflicts with the installed binding {0:?}")]
    Conflict(Box<Binding>),
    /// The kernel refused a map update.
    #[error("updating the fast path's maps failed: {0}")]
    Map(#[from] MapError),
    /// The per-CPU counters could not be laid out (the CPU count was unreadable).
    #[error("zeroing the binding's counters failed: {0}")]
    Counters(#[from] std::io::Error),
}

/// An installed binding: its counter slot and what was already handed out.
#[derive(Debug)]
struct Installed {
    slot: u32,
    taken: Counters,
}

/// The loaded and attached program. Dropping it detaches the program and frees its maps
/// (on kernels before 6.6, whose TC attachments are netlink filters, drop it in the
/// network namespace it was loaded in).
pub struct FastPath {
    from_clients: maps::HashMap<MapData, ClientKey, ClientValue>,
    from_peers: maps::HashMap<MapData, PeerKey, PeerValue>,
    traffic: PerCpuArray<MapData, TrafficValue>,
    cpus: usize,
    installed: HashMap<Binding, Installed>,
    by_client_key: HashMap<ClientKey, Binding>,
    by_peer_key: HashMap<PeerKey, Binding>,
    slots: Slots,
    max_bindings: u32,
    /// Holds the program and its attachments; last, so the maps above go first.
    _ebpf: Ebpf,
}

impl FastPath {
    /// Loads the program and attaches it to the ingress of every configured interface,
    /// in the calling thread's network namespace.
    pub fn load(config: &Config) -> Result<Self, Unavailable> {
        let object = program::OBJECT.ok_or_else(|| {
            unavailable("this build has no eBPF program (clang or libbpf's headers were missing)")
        })?;
        if config.interfaces.is_empty() {
            return Err(unavailable("no interface to attach to"));
        }
        if config.max_bindings == 0 {
            return Err(unavailable("max_bindings is 0"));
        }
        check_interfaces(&config.interfaces)?;
        check_forwarding_on_lo()?;
        let cpus = nr_cpus().map_err(|(what, e)| unavailable(format!("{what}: {e}")))?;

        let mut ebpf = EbpfLoader::new()
            .map_max_entries(program::FROM_CLIENTS, config.max_bindings)
            .map_max_entries(program::FROM_PEERS, config.max_bindings)
            .map_max_entries(program::TRAFFIC, config.max_bindings)
            .load(object)
            .map_err(|e| failure("creating the program's maps", &e))?;
        let classifier: &mut SchedClassifier = ebpf
            .program_mut(program::PROGRAM)
            .ok_or_else(|| unavailable("the eBPF object has no turn_relay program"))?
            .try_into()
            .map_err(|e| failure("the eBPF object", &e))?;
        classifier
            .load()
            .map_err(|e| failure("the kernel refused the program", &e))?;
        // Kernels since 6.6 attach through TCX links; older ones through a netlink
        // filter, which needs the clsact qdisc.
        let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
        for interface in &config.interfaces {
            if !tcx {
                match tc::qdisc_add_clsact(interface) {
                    Ok(()) => {}
                    Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(EEXIST) => {}
                    Err(e) => {
                        return Err(failure(&format!("adding clsact to {interface}"), &e));
                    }
                }
            }
            classifier
                .attach(interface, TcAttachType::Ingress)
                .map_err(|e| failure(&format!("attaching to {interface}"), &e))?;
        }

        let from_clients = take_map(&mut ebpf, program::FROM_CLIENTS)?;
        let from_peers = take_map(&mut ebpf, program::FROM_PEERS)?;
        let traffic = ebpf
            .take_map(program::TRAFFIC)
            .ok_or_else(|| unavailable("the eBPF object has no traffic map"))?;
        Ok(Self {
            from_clients: maps::HashMap::try_from(from_clients)
                .map_err(|e| failure("the from_clients map", &e))?,
            from_peers: maps::HashMap::try_from(from_peers)
                .map_err(|e| failure("the from_peers map", &e))?,
            traffic: PerCpuArray::try_from(traffic).map_err(|e| failure("the traffic map", &e))?,
            cpus,
            installed: HashMap::new(),
            by_client_key: HashMap::new(),
            by_peer_key: HashMap::new(),
            slots: Slots::new(config.max_bindings),
            max_bindings: config.max_bindings,
            _ebpf: ebpf,
        })
    }

    /// Relays `binding`'s ChannelData and peer datagrams in the kernel from now on.
    /// Installing an installed binding again changes nothing (its counters go on).
    pub fn install(&mut self, binding: Binding) -> Result<(), InstallError> {
        binding.validate()?;
        if self.installed.contains_key(&binding) {
            return Ok(());
        }
        let client_key = layout::client_key(&binding);
        let peer_key = layout::peer_key(&binding);
        if let Some(other) = self
            .by_client_key
            .get(&client_key)
            .or_else(|| self.by_peer_key.get(&peer_key))
        {
            return Err(InstallError::Conflict(Box::new(*other)));
        }
        let slot = self
            .slots
            .take()
            .ok_or(InstallError::Full(self.max_bindings))?;
        if let Err(e) = self.write_entries(&binding, slot, &client_key, &peer_key) {
            let _ = self.from_clients.remove(&client_key);
            let _ = self.from_peers.remove(&peer_key);
            self.slots.give_back(slot);
            return Err(e);
        }
        self.installed.insert(
            binding,
            Installed {
                slot,
                taken: Counters::default(),
            },
        );
        self.by_client_key.insert(client_key, binding);
        self.by_peer_key.insert(peer_key, binding);
        Ok(())
    }

    fn write_entries(
        &mut self,
        binding: &Binding,
        slot: u32,
        client_key: &ClientKey,
        peer_key: &PeerKey,
    ) -> Result<(), InstallError> {
        let zero = PerCpuValues::try_from(vec![[0u64; 4]; self.cpus])?;
        self.traffic.set(slot, zero, 0)?;
        self.from_clients
            .insert(client_key, layout::client_value(binding, slot), 0)?;
        self.from_peers
            .insert(peer_key, layout::peer_value(binding, slot), 0)?;
        Ok(())
    }

    /// Stops relaying `binding` in the kernel (its packets go to userspace again) and
    /// returns what was relayed since the last [`take_counters`](Self::take_counters).
    /// `None` when it was not installed.
    pub fn remove(&mut self, binding: &Binding) -> Result<Option<Counters>, MapError> {
        let Some(installed) = self.installed.remove(binding) else {
            return Ok(None);
        };
        let client_key = layout::client_key(binding);
        let peer_key = layout::peer_key(binding);
        self.by_client_key.remove(&client_key);
        self.by_peer_key.remove(&peer_key);
        // Entries first, then the counters: no packet is counted after the read.
        let removed = self
            .from_clients
            .remove(&client_key)
            .and(self.from_peers.remove(&peer_key));
        let last = self
            .read(installed.slot)
            .map(|total| total - installed.taken);
        self.slots.give_back(installed.slot);
        removed?;
        last.map(Some)
    }

    /// Everything relayed for `binding` since it was installed.
    pub fn counters(&self, binding: &Binding) -> Result<Option<Counters>, MapError> {
        self.installed
            .get(binding)
            .map(|i| self.read(i.slot))
            .transpose()
    }

    /// What was relayed since the last call, for every binding that relayed anything:
    /// the driver adds these to its allocation counters, quotas and metrics.
    pub fn take_counters(&mut self) -> Result<Vec<(Binding, Counters)>, MapError> {
        let mut deltas = Vec::new();
        for (binding, installed) in &mut self.installed {
            let total = read(&self.traffic, installed.slot)?;
            let delta = total - installed.taken;
            if !delta.is_zero() {
                installed.taken = total;
                deltas.push((*binding, delta));
            }
        }
        Ok(deltas)
    }

    /// The number of installed bindings.
    pub fn len(&self) -> usize {
        self.installed.len()
    }

    /// True when no binding is installed.
    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    fn read(&self, slot: u32) -> Result<Counters, MapError> {
        read(&self.traffic, slot)
    }
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("bindings", &self.installed.len())
            .field("max_bindings", &self.max_bindings)
            .finish_non_exhaustive()
    }
}

fn read(traffic: &PerCpuArray<MapData, TrafficValue>, slot: u32) -> Result<Counters, MapError> {
    Ok(layout::counters(traffic.get(&slot, 0)?.iter()))
}

fn take_map(ebpf: &mut Ebpf, name: &str) -> Result<maps::Map, Unavailable> {
    ebpf.take_map(name)
        .ok_or_else(|| unavailable(format!("the eBPF object has no {name} map")))
}

const EEXIST: i32 = Errno::EEXIST as i32;
/// Linux link types the program understands: it expects a 14-byte Ethernet header.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;

fn unavailable(reason: impl Into<String>) -> Unavailable {
    Unavailable {
        reason: reason.into(),
    }
}

/// Names a missing privilege (EPERM) plainly; anything else with its error chain (the
/// verifier refuses a program with EACCES, and its log says why).
fn failure(what: &str, error: &(dyn Error + 'static)) -> Unavailable {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(Errno::EPERM as i32)
        {
            return unavailable(format!(
                "{what}: permission denied (the fast path needs CAP_BPF and CAP_NET_ADMIN, \
                 or CAP_SYS_ADMIN on kernels before 5.8)"
            ));
        }
        cause = e.source();
    }
    let mut text = format!("{what}: {error}");
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    unavailable(shorten(text))
}

/// A verifier log can run to megabytes; one log line keeps its start and end.
fn shorten(text: String) -> String {
    const KEEP: usize = 600;
    if text.len() <= 2 * KEEP {
        return text;
    }
    let head = text.char_indices().nth(KEEP).map_or(text.len(), |(i, _)| i);
    let tail = text.char_indices().rev().nth(KEEP).map_or(0, |(i, _)| i);
    format!("{} … {}", &text[..head], &text[tail..])
}

fn check_interfaces(names: &[String]) -> Result<(), Unavailable> {
    let links: Vec<(String, u16)> = nix::ifaddrs::getifaddrs()
        .map_err(|e| unavailable(format!("listing interfaces: {e}")))?
        .filter_map(|a| {
            let link = a.address.as_ref()?.as_link_addr()?;
            Some((a.interface_name, link.hatype()))
        })
        .collect();
    for name in names {
        match links.iter().find(|(n, _)| n == name) {
            None => return Err(unavailable(format!("interface {name} does not exist"))),
            Some((_, ARPHRD_ETHER | ARPHRD_LOOPBACK)) => {}
            Some((_, other)) => {
                return Err(unavailable(format!(
                    "interface {name} has link type {other}; the program handles Ethernet \
                     and loopback interfaces only"
                )));
            }
        }
    }
    Ok(())
}

/// The program routes with `bpf_fib_lookup`, which answers only for an interface with
/// forwarding on; it asks for `lo`, which carries only the host's own packets, so
/// forwarding there does not make the host a router.
fn check_forwarding_on_lo() -> Result<(), Unavailable> {
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/conf/lo/forwarding");
        match fs::read_to_string(&path) {
            Ok(value) if value.trim() == "1" => {}
            Ok(_) => {
                return Err(unavailable(format!(
                    "net.{family}.conf.lo.forwarding is 0; the fast path routes with \
                     bpf_fib_lookup, which needs it (sysctl -w net.{family}.conf.lo.forwarding=1)"
                )));
            }
            // A kernel without IPv6 has no such file; IPv4 always does.
            Err(_) if family == "ipv6" => {}
            Err(e) => return Err(unavailable(format!("reading {path}: {e}"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_reasons_keep_both_ends() {
        let long = format!("start{}end", "x".repeat(5000));
        let short = shorten(long);
        assert!(short.starts_with("start") && short.ends_with("end"));
        assert!(short.len() < 1300);
        assert_eq!(shorten("brief".into()), "brief");
    }

    #[test]
    fn permission_errors_name_the_capabilities() {
        let eperm = std::io::Error::from_raw_os_error(Errno::EPERM as i32);
        let reason = failure("creating the program's maps", &eperm).reason;
        assert!(
            reason.contains("CAP_BPF") && reason.contains("CAP_NET_ADMIN"),
            "{reason}"
        );
        let other = std::io::Error::from_raw_os_error(Errno::EINVAL as i32);
        assert!(!failure("x", &other).reason.contains("CAP_BPF"));
    }

    /// Runs in builds without the toolchain (`TURN_OFFLOAD_CLANG=/nonexistent cargo test`).
    #[cfg(not(turn_offload_program))]
    #[test]
    fn a_build_without_the_program_says_so() {
        let err = FastPath::load(&Config::new(["lo"])).unwrap_err();
        assert!(
            err.reason.contains("this build has no eBPF program"),
            "{err}"
        );
    }

    #[test]
    fn missing_interfaces_are_named() {
        let err = check_interfaces(&["no-such-if0".into()]).unwrap_err();
        assert_eq!(err.reason, "interface no-such-if0 does not exist");
        assert_eq!(check_interfaces(&["lo".into()]), Ok(()));
    }
}
