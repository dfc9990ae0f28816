//! Network namespaces for the tests: created with iproute2, entered per thread with
//! setns(2), deleted on drop (also when a test fails), so tests can run side by side
//! and leave nothing behind.

#![allow(dead_code)] // each test binary uses part of the harness

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use nix::sched::{CloneFlags, setns};

/// A network namespace of our own; deleted (with its interfaces) on drop.
pub(crate) struct Namespace {
    pub(crate) name: String,
}

impl Namespace {
    /// A fresh namespace with `lo` up; `tag` makes its name readable in `ip netns`.
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("tofl-{}-{n}-{tag}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip -n NAME args...`, panicking with its output when it fails.
    pub(crate) fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Runs any command inside the namespace (`ip netns exec`).
    pub(crate) fn exec(&self, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Starts `argv` inside the namespace (`ip netns exec`, which execs it: the child is
    /// the program) with its stdout and stderr collected line by line into one log, for
    /// the test to print when it fails.
    pub(crate) fn spawn_logged(&self, argv: &[String]) -> (Child, Arc<Mutex<String>>) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {argv:?} in {}: {e}", self.name));
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        (child, log)
    }

    /// Writes a sysctl of this namespace, e.g. `net/ipv4/conf/lo/forwarding`.
    pub(crate) fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{key}");
        self.enter(|| std::fs::write(&path, value))
            .unwrap_or_else(|e| panic!("writing {path} in {}: {e}", self.name));
    }

    /// A tap interface whose frames the kernel receives in page fragments (IFF_NAPI_FRAGS):
    /// only the first iovec of a write lands in the skb's linear part.
    // The one ioctl (TUNSETIFF) has no safe wrapper in std or nix.
    #[allow(unsafe_code)]
    pub(crate) fn frags_tap(&self, name: &str) -> File {
        use nix::libc;
        use std::os::fd::AsRawFd;

        let tun = self
            .enter(|| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/net/tun")
            })
            .expect("/dev/net/tun");
        let mut ifr = [0u8; 40]; // struct ifreq: name[16], flags
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        let flags: libc::c_short = 0x0002 | 0x1000 | 0x0010 | 0x0020; // TAP, NO_PI, NAPI, NAPI_FRAGS
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes), which `ifr` holds.
        // The interface is created in the namespace the file was opened in.
        let rc = unsafe { libc::ioctl(tun.as_raw_fd(), 0x4004_54ca, ifr.as_mut_ptr()) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        tun
    }

    /// Runs `f` on a thread inside the namespace: sockets it creates live there, and
    /// a fast path it loads attaches there.
    pub(crate) fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    setns(&file, CloneFlags::CLONE_NEWNET)
                        .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Joins `a` and `b` with a veth pair named `a_if` (in `a`) and `b_if` (in `b`).
pub(crate) fn veth(a: &Namespace, a_if: &str, b: &Namespace, b_if: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} could not run: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
