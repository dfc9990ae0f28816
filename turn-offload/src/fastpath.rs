//! Loading and attaching the program, and splitting its maps into per-thread shares.

use std::error::Error;
use std::fs;
use std::time::Duration;

use aya::programs::{SchedClassifier, TcAttachType, tc};
use aya::util::{KernelVersion, nr_cpus};
use aya::{Ebpf, EbpfLoader};
use nix::errno::Errno;

use crate::binding::{Binding, Counters};
use crate::interfaces;
use crate::program;
use crate::share::{InstallError, Share};
use crate::unavailable::Unavailable;

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

/// The loaded and attached program, with one [`Share`] of its maps holding every
/// counter slot. Dropping it detaches the program and frees its maps (on kernels before
/// 6.6, whose TC attachments are netlink filters, drop it in the network namespace it
/// was loaded in).
pub struct FastPath {
    share: Share,
    attachment: Attachment,
}

/// The attached program on its own, once [`FastPath::split`] handed its maps out to
/// shares: dropping it detaches the program (shares left over then relay nothing).
pub struct Attachment {
    ebpf: Ebpf,
    cpus: usize,
    max_bindings: u32,
}

/// What the kernel measured of the program's runs, all interfaces and CPUs together.
/// Both stay 0 unless `kernel.bpf_stats_enabled` is 1 (the measurement costs two clock
/// reads per run, so the kernel leaves it off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Time spent in the program.
    pub run_time: Duration,
    /// Runs: every packet the attached interfaces received while measuring.
    pub runs: u64,
}

impl FastPath {
    /// Loads the program and attaches it to the ingress of every configured interface,
    /// in the calling thread's network namespace.
    pub fn load(config: &Config) -> Result<Self, Unavailable> {
        let (mut ebpf, cpus) = load_program(config)?;
        attach(&mut ebpf, &config.interfaces)?;
        let share = Share::new(&ebpf, cpus, 0, config.max_bindings)
            .map_err(|e| failure("opening the program's maps", &e))?;
        Ok(Self {
            share,
            attachment: Attachment {
                ebpf,
                cpus,
                max_bindings: config.max_bindings,
            },
        })
    }

    /// Whether [`load`](Self::load) would succeed, without attaching anything: the same
    /// checks, and the program loaded into the kernel (so its verifier has its say) and
    /// freed again at once.
    pub fn check(config: &Config) -> Result<(), Unavailable> {
        load_program(config).map(drop)
    }

    /// Hands the maps out to `parts` [`Share`]s with equal ranges of counter slots, one
    /// per thread that installs bindings, and keeps the attachment. Bindings installed
    /// through the fast path itself are removed first.
    pub fn split(mut self, parts: usize) -> Result<(Attachment, Vec<Share>), Unavailable> {
        self.share.clear();
        let attachment = self.attachment;
        let parts = u32::try_from(parts.max(1)).unwrap_or(u32::MAX);
        let per_part = attachment.max_bindings / parts;
        let shares = (0..parts)
            .map(|index| {
                let first = index * per_part;
                Share::new(&attachment.ebpf, attachment.cpus, first, first + per_part)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| failure("opening the program's maps", &e))?;
        Ok((attachment, shares))
    }

    /// See [`Share::install`].
    pub fn install(&mut self, binding: Binding) -> Result<(), InstallError> {
        self.share.install(binding)
    }

    /// See [`Share::remove`].
    pub fn remove(&mut self, binding: &Binding) -> Result<Option<Counters>, aya::maps::MapError> {
        self.share.remove(binding)
    }

    /// See [`Share::counters`].
    pub fn counters(&self, binding: &Binding) -> Result<Option<Counters>, aya::maps::MapError> {
        self.share.counters(binding)
    }

    /// See [`Share::take_counters`].
    pub fn take_counters(&mut self) -> Result<Vec<(Binding, Counters)>, aya::maps::MapError> {
        self.share.take_counters()
    }

    /// The number of installed bindings.
    pub fn len(&self) -> usize {
        self.share.len()
    }

    /// True when no binding is installed.
    pub fn is_empty(&self) -> bool {
        self.share.is_empty()
    }

    /// See [`Attachment::run_stats`].
    pub fn run_stats(&self) -> Result<RunStats, Unavailable> {
        self.attachment.run_stats()
    }
}

impl Attachment {
    /// The kernel's measurement of the program's runs so far (see [`RunStats`]).
    pub fn run_stats(&self) -> Result<RunStats, Unavailable> {
        let classifier: &SchedClassifier = self
            .ebpf
            .program(program::PROGRAM)
            .ok_or_else(|| unavailable("the eBPF object has no turn_relay program"))?
            .try_into()
            .map_err(|e| failure("the eBPF object", &e))?;
        let info = classifier
            .info()
            .map_err(|e| failure("reading the program's statistics", &e))?;
        Ok(RunStats {
            run_time: info.run_time(),
            runs: info.run_count(),
        })
    }
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment")
            .field("max_bindings", &self.max_bindings)
            .finish_non_exhaustive()
    }
}

/// Checks what can be checked without the kernel, then creates the maps and has the
/// verifier load the program; nothing is attached yet.
fn load_program(config: &Config) -> Result<(Ebpf, usize), Unavailable> {
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
    classifier(&mut ebpf)?
        .load()
        .map_err(|e| failure("the kernel refused the program", &e))?;
    Ok((ebpf, cpus))
}

fn classifier(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, Unavailable> {
    ebpf.program_mut(program::PROGRAM)
        .ok_or_else(|| unavailable("the eBPF object has no turn_relay program"))?
        .try_into()
        .map_err(|e| failure("the eBPF object", &e))
}

/// Attaches the loaded program to the ingress of `interfaces`. Kernels since 6.6 attach
/// through TCX links, which end with the process; older ones through a netlink filter on
/// the clsact qdisc, which outlives a killed process: filters of that name left by an
/// earlier run are removed first, so a dead server's bindings never relay.
fn attach(ebpf: &mut Ebpf, interfaces: &[String]) -> Result<(), Unavailable> {
    let tcx = KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0));
    let classifier = classifier(ebpf)?;
    for interface in interfaces {
        if !tcx {
            match tc::qdisc_add_clsact(interface) {
                Ok(()) => {}
                Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(EEXIST) => {}
                Err(e) => {
                    return Err(failure(&format!("adding clsact to {interface}"), &e));
                }
            }
            // Best effort: "none found" is the usual answer, and a real netlink problem
            // makes the attach below fail with its reason.
            let _ = tc::qdisc_detach_program(interface, TcAttachType::Ingress, program::PROGRAM);
        }
        classifier
            .attach(interface, TcAttachType::Ingress)
            .map_err(|e| failure(&format!("attaching to {interface}"), &e))?;
    }
    Ok(())
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("bindings", &self.share.len())
            .field("max_bindings", &self.attachment.max_bindings)
            .finish_non_exhaustive()
    }
}

const EEXIST: i32 = Errno::EEXIST as i32;

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
    let links = interfaces::links().map_err(|e| unavailable(format!("listing interfaces: {e}")))?;
    for name in names {
        match links.iter().find(|l| &l.name == name) {
            None => return Err(unavailable(format!("interface {name} does not exist"))),
            Some(link) if link.supported() => {}
            Some(link) => {
                return Err(unavailable(format!(
                    "interface {name} has link type {}; the program handles Ethernet \
                     and loopback interfaces only",
                    link.hatype.map_or("unknown".into(), |t| t.to_string())
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
