//! Loading without capabilities must give `Unavailable`, never a panic. Its own test
//! binary: aya probes kernel features once per process, and an unprivileged probe must
//! not leak into the privileged tests.

mod netns;

use caps::CapSet;
use netns::Namespace;
use turn_offload::{Config, FastPath};

#[test]
fn loading_without_capabilities_is_unavailable() {
    let ns = Namespace::new("u");
    // Everything else is in place: the missing capabilities are the only obstacle.
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    let result = ns.enter(|| {
        // Capabilities are per thread: this one gives up all it had.
        caps::clear(None, CapSet::Effective).expect("drop effective capabilities");
        caps::clear(None, CapSet::Permitted).expect("drop permitted capabilities");
        assert!(caps::read(None, CapSet::Effective).unwrap().is_empty());
        FastPath::load(&Config::new(["lo"]))
    });
    let err = result.expect_err("loading without capabilities");
    assert!(
        err.reason.contains("CAP_BPF") && err.reason.contains("CAP_NET_ADMIN"),
        "{err}"
    );
}
