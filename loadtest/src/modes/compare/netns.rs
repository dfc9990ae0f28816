//! Where a phase of the benchmark runs. Without privileges: the host's loopback, as the
//! benchmark always did. As root (`--offload` or `--veth`): network namespaces of its
//! own, created with iproute2 and deleted at the end, so the kernel fast path's sysctl
//! and program never touch the host:
//!
//! - `loopback`: one namespace with only `lo`; servers, clients and the echo peer share
//!   it, as on the host.
//! - `veth`: the servers in one namespace, loadtest's clients and echo peer in another,
//!   joined by a veth pair, so every relayed packet crosses a real interface twice.
//!
//! loadtest enters the load namespace with setns(2) on its main thread before a phase
//! (threads and child processes it starts inherit it) and returns afterwards; servers
//! start through `ip netns exec`, which execs them in place (same pid).

use std::fs::File;
use std::net::IpAddr;
use std::process::Command;

use nix::sched::{CloneFlags, setns};

/// One phase's network.
pub(super) struct Phase {
    /// `loopback` or `veth`: the report's section and the results' key prefix.
    pub(super) name: &'static str,
    /// Where the servers listen and relay.
    pub(super) server_ip: IpAddr,
    /// Where loadtest's echo peer listens (its clients bind by route).
    pub(super) load_ip: IpAddr,
    server_ns: Option<String>,
    load_ns: Option<String>,
    /// Namespaces to delete on drop.
    created: Vec<String>,
}

/// The veth link's addresses.
const VETH_SERVER: &str = "10.203.0.1";
const VETH_LOAD: &str = "10.203.0.2";

impl Phase {
    /// The host's loopback, no privileges needed.
    pub(super) fn host() -> Self {
        Self {
            name: "loopback",
            server_ip: IpAddr::from([127, 0, 0, 1]),
            load_ip: IpAddr::from([127, 0, 0, 1]),
            server_ns: None,
            load_ns: None,
            created: Vec::new(),
        }
    }

    /// A namespace with `lo` only (root).
    pub(super) fn loopback() -> Result<Self, String> {
        let name = format!("loadtest-{}-lo", std::process::id());
        let mut phase = Self::host();
        phase.server_ns = Some(name.clone());
        phase.load_ns = Some(name.clone());
        create(&mut phase.created, &name)?;
        forwarding_on_lo(&name)?;
        Ok(phase)
    }

    /// A server namespace and a load namespace joined by a veth pair (root).
    pub(super) fn veth() -> Result<Self, String> {
        let server = format!("loadtest-{}-srv", std::process::id());
        let load = format!("loadtest-{}-load", std::process::id());
        let mut phase = Self {
            name: "veth",
            server_ip: VETH_SERVER.parse().map_err(|_| "address")?,
            load_ip: VETH_LOAD.parse().map_err(|_| "address")?,
            server_ns: Some(server.clone()),
            load_ns: Some(load.clone()),
            created: Vec::new(),
        };
        create(&mut phase.created, &server)?;
        create(&mut phase.created, &load)?;
        ip(&[
            "-n", &server, "link", "add", "s0", "type", "veth", "peer", "name", "l0", "netns",
            &load,
        ])?;
        for (ns, dev, addr) in [(&server, "s0", VETH_SERVER), (&load, "l0", VETH_LOAD)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        forwarding_on_lo(&server)?;
        Ok(phase)
    }

    /// `program` started in the servers' namespace.
    pub(super) fn command(&self, program: &str) -> Command {
        match &self.server_ns {
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", ns, program]);
                command
            }
            None => Command::new(program),
        }
    }

    /// Server flags that let the echo peer in: loopback peers, or the load address
    /// (10.0.0.0/8 is denied by default).
    pub(super) fn peer_args(&self) -> Vec<String> {
        if self.load_ip.is_loopback() {
            vec!["--allow-loopback-peers".into()]
        } else {
            vec![format!("--allowed-peer-ip={}", self.load_ip)]
        }
    }

    /// Moves this thread (loadtest's main thread) into the load namespace until the guard
    /// drops.
    pub(super) fn enter(&self) -> Result<Entered, String> {
        let Some(ns) = &self.load_ns else {
            return Ok(Entered { home: None });
        };
        let home =
            File::open("/proc/thread-self/ns/net").map_err(|e| format!("own namespace: {e}"))?;
        let target = File::open(format!("/run/netns/{ns}")).map_err(|e| format!("{ns}: {e}"))?;
        setns(&target, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering {ns}: {e}"))?;
        Ok(Entered { home: Some(home) })
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Back in the namespace loadtest started in when dropped.
pub(super) struct Entered {
    home: Option<File>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(home) = &self.home
            && let Err(e) = setns(home, CloneFlags::CLONE_NEWNET)
        {
            eprintln!("[compare] returning to the host namespace: {e}");
        }
    }
}

fn create(created: &mut Vec<String>, name: &str) -> Result<(), String> {
    ip(&["netns", "add", name])?;
    created.push(name.to_owned());
    ip(&["-n", name, "link", "set", "lo", "up"])
}

/// The kernel fast path routes with bpf_fib_lookup, which needs forwarding on `lo` of the
/// servers' namespace (docs/operations.md).
fn forwarding_on_lo(ns: &str) -> Result<(), String> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            "net.ipv4.conf.lo.forwarding=1",
            "net.ipv6.conf.lo.forwarding=1",
        ],
    )
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
