//! The fast path on real interfaces: client, server and peer each in their own network
//! namespace, joined by veth pairs, bindings installed through the public API. The
//! server namespace does not forward packets, so whatever reaches the other side
//! without passing the server's sockets was relayed by the program.

mod netns;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use aya::programs::{SchedClassifier, TcAttachType};
use netns::{Namespace, veth};
use turn_offload::{Binding, Config, Counters, FastPath, InstallError, Traffic};

const WAIT: Duration = Duration::from_secs(3);
const CHANNEL: u16 = 0x4001;
/// Payload sizes: empty, odd, near a 1500-byte MTU, around the program's 1536-byte copy
/// chunk and its multiples, its 4096-byte limit (the test interfaces have a 9000-byte MTU).
const SIZES: [usize; 16] = [
    0, 1, 3, 4, 99, 511, 512, 513, 1200, 1399, 1535, 1536, 1537, 3072, 3073, 4096,
];

/// client — s0 | server | s1 — peer.
struct Topology {
    client: Namespace,
    server: Namespace,
    peer: Namespace,
    ips: Ips,
}

#[derive(Clone, Copy)]
struct Ips {
    client: IpAddr,
    server: IpAddr,
    relay: IpAddr,
    peer: IpAddr,
}

/// `offload`: whether client and peer leave UDP checksums to the (virtual) NIC, as
/// local senders do; without it they send full checksums that the program must update.
fn topology(v6: bool, offload: bool) -> Topology {
    let t = Topology {
        client: Namespace::new("c"),
        server: Namespace::new("s"),
        peer: Namespace::new("p"),
        ips: if v6 {
            Ips {
                client: "2001:db8:1::2".parse().unwrap(),
                server: "2001:db8:1::1".parse().unwrap(),
                relay: "2001:db8:2::1".parse().unwrap(),
                peer: "2001:db8:2::2".parse().unwrap(),
            }
        } else {
            Ips {
                client: "198.18.1.2".parse().unwrap(),
                server: "198.18.1.1".parse().unwrap(),
                relay: "198.18.2.1".parse().unwrap(),
                peer: "198.18.2.2".parse().unwrap(),
            }
        },
    };
    veth(&t.server, "s0", &t.client, "c0");
    veth(&t.server, "s1", &t.peer, "p0");
    for (ns, dev) in [
        (&t.server, "s0"),
        (&t.client, "c0"),
        (&t.server, "s1"),
        (&t.peer, "p0"),
    ] {
        ns.ip(&["link", "set", dev, "mtu", "9000"]);
    }
    let (prefix, family) = if v6 { ("64", "-6") } else { ("24", "-4") };
    let addr = |ns: &Namespace, ip: IpAddr, dev: &str| {
        let cidr = format!("{ip}/{prefix}");
        let mut args = vec![family, "addr", "add", &cidr, "dev", dev];
        if v6 {
            args.push("nodad");
        }
        ns.ip(&args);
    };
    addr(&t.client, t.ips.client, "c0");
    addr(&t.server, t.ips.server, "s0");
    addr(&t.server, t.ips.relay, "s1");
    addr(&t.peer, t.ips.peer, "p0");
    t.client.ip(&[
        family,
        "route",
        "add",
        "default",
        "via",
        &t.ips.server.to_string(),
    ]);
    t.peer.ip(&[
        family,
        "route",
        "add",
        "default",
        "via",
        &t.ips.relay.to_string(),
    ]);
    t.server.sysctl("net/ipv4/conf/lo/forwarding", "1");
    t.server.sysctl("net/ipv6/conf/lo/forwarding", "1");
    // The server's interfaces finish checksums in software on the way out, so the
    // receivers verify every checksum the program wrote (over veth they would
    // otherwise trust a packet still marked "checksum to be computed").
    t.server.exec("ethtool", &["-K", "s0", "tx", "off"]);
    t.server.exec("ethtool", &["-K", "s1", "tx", "off"]);
    if !offload {
        t.client.exec("ethtool", &["-K", "c0", "tx", "off"]);
        t.peer.exec("ethtool", &["-K", "p0", "tx", "off"]);
    }
    t
}

/// The four sockets of a TURN relay path; the server's two only ever see what the
/// program passed on.
struct Sockets {
    client: UdpSocket,
    listener: UdpSocket,
    relay: UdpSocket,
    peer: UdpSocket,
}

impl Sockets {
    fn binding(&self, channel: u16) -> Binding {
        Binding {
            client: self.client.local_addr().unwrap(),
            server: self.listener.local_addr().unwrap(),
            relay: self.relay.local_addr().unwrap(),
            peer: self.peer.local_addr().unwrap(),
            channel,
        }
    }
}

fn bind(ns: &Namespace, ip: IpAddr) -> UdpSocket {
    let socket = ns.enter(|| UdpSocket::bind((ip, 0))).expect("bind");
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

fn sockets(t: &Topology) -> Sockets {
    Sockets {
        client: bind(&t.client, t.ips.client),
        listener: bind(&t.server, t.ips.server),
        relay: bind(&t.server, t.ips.relay),
        peer: bind(&t.peer, t.ips.peer),
    }
}

fn load(ns: &Namespace, config: Config) -> FastPath {
    ns.enter(|| FastPath::load(&config))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut out = channel.to_be_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + seed * 31) as u8).collect()
}

fn recv(socket: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 8192];
    let (n, from) = socket
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    (buf[..n].to_vec(), from)
}

fn nothing_waiting(socket: &UdpSocket, what: &str) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8192];
    match socket.recv_from(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("{what} received {other:?}"),
    }
    socket.set_nonblocking(false).unwrap();
}

fn traffic(sizes: &[usize]) -> Traffic {
    Traffic {
        packets: sizes.len() as u64,
        bytes: sizes.iter().sum::<usize>() as u64,
    }
}

/// Every size both ways, byte for byte, then the counters.
fn round_trip(t: &Topology) {
    let s = sockets(t);
    let mut fast = load(&t.server, Config::new(["s0", "s1"]));
    let b = s.binding(CHANNEL);
    fast.install(b).unwrap();

    for (i, &n) in SIZES.iter().enumerate() {
        let data = payload(i, n);
        s.client
            .send_to(&channel_data(CHANNEL, &data), b.server)
            .unwrap();
        let (got, from) = recv(&s.peer, &format!("peer, {n} bytes"));
        assert_eq!((got.len(), from), (n, b.relay));
        assert_eq!(got, data);
    }
    for (i, &n) in SIZES.iter().enumerate() {
        let data = payload(i + 100, n);
        s.peer.send_to(&data, b.relay).unwrap();
        let (got, from) = recv(&s.client, &format!("client, {n} bytes"));
        assert_eq!(from, b.server);
        assert_eq!(got, channel_data(CHANNEL, &data));
    }
    nothing_waiting(&s.listener, "the server's listener");
    nothing_waiting(&s.relay, "the server's relay socket");

    let expected = Counters {
        to_peer: traffic(&SIZES),
        to_client: traffic(&SIZES),
    };
    assert_eq!(fast.counters(&b).unwrap(), Some(expected));
    assert_eq!(fast.take_counters().unwrap(), vec![(b, expected)]);
    assert_eq!(
        fast.take_counters().unwrap(),
        vec![],
        "taken counters are not repeated"
    );
    assert_eq!(fast.remove(&b).unwrap(), Some(Counters::default()));
    assert!(fast.is_empty());
}

#[test]
fn relays_both_ways_ipv4() {
    round_trip(&topology(false, true));
}

#[test]
fn relays_both_ways_ipv6() {
    round_trip(&topology(true, true));
}

#[test]
fn relays_fully_checksummed_datagrams_ipv4() {
    round_trip(&topology(false, false));
}

#[test]
fn relays_fully_checksummed_datagrams_ipv6() {
    round_trip(&topology(true, false));
}

/// One namespace, everything on loopback: what `loadtest compare` runs.
#[test]
fn relays_on_loopback() {
    let ns = Namespace::new("l");
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    let mut fast = load(&ns, Config::new(["lo"]));
    for ip in ["127.0.0.1", "::1"] {
        let ip: IpAddr = ip.parse().unwrap();
        let s = Sockets {
            client: bind(&ns, ip),
            listener: bind(&ns, ip),
            relay: bind(&ns, ip),
            peer: bind(&ns, ip),
        };
        let b = s.binding(CHANNEL);
        fast.install(b).unwrap();
        for &n in &SIZES {
            let data = payload(n, n);
            s.client
                .send_to(&channel_data(CHANNEL, &data), b.server)
                .unwrap();
            assert_eq!(recv(&s.peer, "peer"), (data.clone(), b.relay));
            s.peer.send_to(&data, b.relay).unwrap();
            assert_eq!(
                recv(&s.client, "client"),
                (channel_data(CHANNEL, &data), b.server)
            );
        }
        nothing_waiting(&s.listener, "the server's listener");
        nothing_waiting(&s.relay, "the server's relay socket");
        let expected = Counters {
            to_peer: traffic(&SIZES),
            to_client: traffic(&SIZES),
        };
        assert_eq!(fast.remove(&b).unwrap(), Some(expected), "{ip}");
    }
}

fn stun_binding_request() -> Vec<u8> {
    let mut out = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    out.extend_from_slice(b"offload-test");
    out
}

#[test]
fn passes_to_userspace_what_it_does_not_relay() {
    let t = topology(false, true);
    let s = sockets(&t);
    let mut fast = load(&t.server, Config::new(["s0", "s1"]));
    let b = s.binding(CHANNEL);
    fast.install(b).unwrap();

    // The binding works...
    s.client
        .send_to(&channel_data(CHANNEL, b"media"), b.server)
        .unwrap();
    assert_eq!(recv(&s.peer, "peer").0, b"media");

    // ...and none of these is for it: each reaches the listener exactly as sent.
    let mut padded = channel_data(CHANNEL, b"abc");
    padded.push(0);
    let cases: [(&str, Vec<u8>); 6] = [
        ("an unbound channel", channel_data(0x4002, b"media")),
        ("a STUN Binding request", stun_binding_request()),
        ("padded ChannelData", padded),
        (
            "a length field past the end",
            vec![0x40, 0x01, 0x00, 0x09, 1, 2, 3],
        ),
        (
            "a length field short of the end",
            vec![0x40, 0x01, 0x00, 0x01, 1, 2, 3],
        ),
        ("a 2-byte datagram", vec![0x40, 0x01]),
    ];
    for (what, bytes) in &cases {
        s.client.send_to(bytes, b.server).unwrap();
        assert_eq!(recv(&s.listener, what), (bytes.clone(), b.client), "{what}");
    }
    // A TTL of 1 would leave with 0: userspace relays it with the default TTL.
    s.client.set_ttl(1).unwrap();
    let data = channel_data(CHANNEL, b"last hop");
    s.client.send_to(&data, b.server).unwrap();
    assert_eq!(recv(&s.listener, "TTL 1"), (data, b.client));
    s.client.set_ttl(64).unwrap();

    // A peer on another port has no channel: its datagram goes to the relay socket.
    let stranger = bind(&t.peer, t.ips.peer);
    stranger.send_to(b"not bound", b.relay).unwrap();
    assert_eq!(recv(&s.relay, "relay").0, b"not bound");

    let relayed = Counters {
        to_peer: traffic(&[5]),
        to_client: Traffic::default(),
    };
    assert_eq!(fast.remove(&b).unwrap(), Some(relayed));

    // Once removed, the binding's own traffic goes to userspace too.
    let data = channel_data(CHANNEL, b"after removal");
    s.client.send_to(&data, b.server).unwrap();
    assert_eq!(
        recv(&s.listener, "listener after removal"),
        (data, b.client)
    );
    s.peer.send_to(b"late peer", b.relay).unwrap();
    assert_eq!(
        recv(&s.relay, "relay after removal"),
        (b"late peer".to_vec(), b.peer)
    );
    nothing_waiting(&s.peer, "the peer");
    nothing_waiting(&s.client, "the client");
    assert_eq!(fast.counters(&b).unwrap(), None);

    // Dropping the fast path detaches the program, even with bindings installed.
    fast.install(b).unwrap();
    drop(fast);
    let data = channel_data(CHANNEL, b"after drop");
    s.client.send_to(&data, b.server).unwrap();
    assert_eq!(recv(&s.listener, "listener after drop"), (data, b.client));
    nothing_waiting(&s.peer, "the peer after drop");
}

#[test]
fn install_refuses_conflicts_and_a_full_table() {
    let ns = Namespace::new("f");
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    let mut fast = load(
        &ns,
        Config {
            max_bindings: 1,
            ..Config::new(["lo"])
        },
    );
    let first = Binding {
        client: "127.0.0.1:40000".parse().unwrap(),
        server: "127.0.0.1:3478".parse().unwrap(),
        relay: "127.0.0.1:49152".parse().unwrap(),
        peer: "127.0.0.1:50000".parse().unwrap(),
        channel: 0x4000,
    };
    let second = Binding {
        client: "127.0.0.1:40001".parse().unwrap(),
        peer: "127.0.0.1:50001".parse().unwrap(),
        ..first
    };
    fast.install(first).unwrap();
    fast.install(first).unwrap();
    assert_eq!(fast.len(), 1);
    assert!(matches!(fast.install(second), Err(InstallError::Full(1))));
    fast.remove(&first).unwrap();
    fast.install(second).unwrap();
    // One channel of one client 5-tuple leads to one peer, and back.
    let same_channel = Binding {
        peer: "127.0.0.1:50002".parse().unwrap(),
        ..second
    };
    let same_peer = Binding {
        client: "127.0.0.1:40002".parse().unwrap(),
        ..second
    };
    for conflicting in [same_channel, same_peer] {
        match fast.install(conflicting) {
            Err(InstallError::Conflict(with)) => assert_eq!(*with, second),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let mixed = Binding {
        peer: "[::1]:50000".parse().unwrap(),
        ..second
    };
    assert!(matches!(fast.install(mixed), Err(InstallError::Binding(_))));
}

#[test]
fn missing_interfaces_and_lo_forwarding_are_reported() {
    let ns = Namespace::new("m");
    // A new namespace copies the host's IPv4 defaults (Docker turns forwarding on).
    ns.sysctl("net/ipv4/conf/lo/forwarding", "0");
    let err = ns
        .enter(|| FastPath::load(&Config::new(["lo"])))
        .unwrap_err();
    assert!(err.reason.contains("net.ipv4.conf.lo.forwarding"), "{err}");
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    let err = ns
        .enter(|| FastPath::load(&Config::new(["lo", "missing0"])))
        .unwrap_err();
    assert_eq!(err.reason, "interface missing0 does not exist");
}

fn loopback_namespace(tag: &str) -> Namespace {
    let ns = Namespace::new(tag);
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    ns
}

/// Programs attached to `lo` of `ns` through TCX links.
fn attached_on_lo(ns: &Namespace) -> usize {
    ns.enter(|| SchedClassifier::query_tcx("lo", TcAttachType::Ingress))
        .expect("query tcx")
        .1
        .len()
}

#[test]
fn check_attaches_nothing() {
    let ns = Namespace::new("k");
    ns.sysctl("net/ipv4/conf/lo/forwarding", "0");
    let err = ns
        .enter(|| FastPath::check(&Config::new(["lo"])))
        .unwrap_err();
    assert!(err.reason.contains("net.ipv4.conf.lo.forwarding"), "{err}");
    ns.sysctl("net/ipv4/conf/lo/forwarding", "1");
    ns.sysctl("net/ipv6/conf/lo/forwarding", "1");
    ns.enter(|| FastPath::check(&Config::new(["lo"])))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(attached_on_lo(&ns), 0, "check attached a program");
    let fast = load(&ns, Config::new(["lo"]));
    assert_eq!(attached_on_lo(&ns), 1);
    drop(fast);
    assert_eq!(attached_on_lo(&ns), 0);
}

/// Two shares of one program: each installs, relays and counts its own bindings, and
/// holds its own part of the slots.
#[test]
fn shares_relay_their_own_bindings() {
    let ns = loopback_namespace("h");
    let fast = load(
        &ns,
        Config {
            max_bindings: 4,
            ..Config::new(["lo"])
        },
    );
    let (attachment, mut shares) = fast.split(2).unwrap();
    assert_eq!(shares.len(), 2);
    assert!(shares.iter().all(|share| share.capacity() == 2));
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let all: Vec<Sockets> = (0..2)
        .map(|_| Sockets {
            client: bind(&ns, ip),
            listener: bind(&ns, ip),
            relay: bind(&ns, ip),
            peer: bind(&ns, ip),
        })
        .collect();
    for (share, s) in shares.iter_mut().zip(&all) {
        share.install(s.binding(CHANNEL)).unwrap();
    }
    for (i, s) in all.iter().enumerate() {
        let data = payload(i, 100 + i);
        s.client
            .send_to(
                &channel_data(CHANNEL, &data),
                s.listener.local_addr().unwrap(),
            )
            .unwrap();
        assert_eq!(recv(&s.peer, "peer").0, data);
    }
    for (i, (share, s)) in shares.iter_mut().zip(&all).enumerate() {
        let b = s.binding(CHANNEL);
        let expected = Counters {
            to_peer: traffic(&[100 + i]),
            to_client: Traffic::default(),
        };
        assert_eq!(share.take_counters().unwrap(), vec![(b, expected)]);
        // A binding of the other share is not this one's to take or remove.
        let other = all[1 - i].binding(CHANNEL);
        assert_eq!(share.take(&other).unwrap(), None);
        assert_eq!(share.remove(&other).unwrap(), None);
    }
    // Each share fills up at its own capacity.
    let extra = |port: u16| Binding {
        client: SocketAddr::new(ip, port),
        server: SocketAddr::new(ip, 3478),
        relay: SocketAddr::new(ip, port + 1),
        peer: SocketAddr::new(ip, 9),
        channel: CHANNEL,
    };
    shares[0].install(extra(40_000)).unwrap();
    assert!(matches!(
        shares[0].install(extra(40_010)),
        Err(InstallError::Full(2))
    ));
    shares[1].install(extra(40_020)).unwrap();
    // Without the attachment nothing is relayed any more.
    drop(attachment);
    let s = &all[0];
    let data = channel_data(CHANNEL, b"detached");
    s.client
        .send_to(&data, s.listener.local_addr().unwrap())
        .unwrap();
    assert_eq!(recv(&s.listener, "listener after detach").0, data);
}

/// What the program passes on reaches the next TC program on the interface: a second
/// server's fast path relays its own binding behind the first.
#[test]
fn a_second_program_on_the_interface_sees_what_the_first_passes_on() {
    let ns = loopback_namespace("2");
    let first = load(&ns, Config::new(["lo"]));
    let mut second = load(&ns, Config::new(["lo"]));
    assert_eq!(attached_on_lo(&ns), 2);
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let s = Sockets {
        client: bind(&ns, ip),
        listener: bind(&ns, ip),
        relay: bind(&ns, ip),
        peer: bind(&ns, ip),
    };
    let b = s.binding(CHANNEL);
    second.install(b).unwrap();
    s.client
        .send_to(&channel_data(CHANNEL, b"behind"), b.server)
        .unwrap();
    assert_eq!(recv(&s.peer, "peer"), (b"behind".to_vec(), b.relay));
    s.peer.send_to(b"back", b.relay).unwrap();
    assert_eq!(
        recv(&s.client, "client"),
        (channel_data(CHANNEL, b"back"), b.server)
    );
    nothing_waiting(&s.listener, "the server's listener");
    assert!(first.is_empty());
    assert_eq!(
        second.remove(&b).unwrap(),
        Some(Counters {
            to_peer: traffic(&[6]),
            to_client: traffic(&[4]),
        })
    );
}

/// Ones-complement sum (RFC 1071) of `bytes` added to `sum`, not yet folded.
fn csum_add(mut sum: u32, bytes: &[u8]) -> u32 {
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame carrying a fully checksummed UDP datagram.
fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    from: SocketAddr,
    to: SocketAddr,
    data: &[u8],
) -> Vec<u8> {
    let udp_len = 8 + data.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&from.port().to_be_bytes());
    udp.extend_from_slice(&to.port().to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(data);
    let (ethertype, mut ip, pseudo) = match (from.ip(), to.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let total = (20 + udp_len) as u16;
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&src.octets());
            ip.extend_from_slice(&dst.octets());
            let check = csum_fold(csum_add(0, &ip));
            ip[10..12].copy_from_slice(&check.to_be_bytes());
            let pseudo = [
                &src.octets()[..],
                &dst.octets()[..],
                &[0, 17],
                &(udp_len as u16).to_be_bytes(),
            ]
            .concat();
            (0x0800u16, ip, pseudo)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
            ip.extend_from_slice(&[17, 64]);
            ip.extend_from_slice(&src.octets());
            ip.extend_from_slice(&dst.octets());
            let pseudo = [
                &src.octets()[..],
                &dst.octets()[..],
                &(udp_len as u32).to_be_bytes(),
                &[0, 0, 0, 17],
            ]
            .concat();
            (0x86ddu16, ip, pseudo)
        }
        _ => panic!("mixed families"),
    };
    let check = match csum_fold(csum_add(csum_add(0, &pseudo), &udp)) {
        0 => 0xffff,
        check => check,
    };
    udp[6..8].copy_from_slice(&check.to_be_bytes());
    let mut frame = [&dst_mac[..], &src_mac[..], &ethertype.to_be_bytes()].concat();
    frame.append(&mut ip);
    frame.append(&mut udp);
    frame
}

/// Headers outside the skb's linear part (a NIC that receives into page fragments): the
/// program pulls them in and still relays, byte for byte.
fn relays_with_headers_in_fragments(v6: bool) {
    use std::io::Write;

    let server = Namespace::new("s");
    let peer = Namespace::new("p");
    veth(&server, "s1", &peer, "p0");
    let (family, prefix, client, server_ip, relay, peer_ip) = if v6 {
        (
            "-6",
            "64",
            "2001:db8:3::2",
            "2001:db8:3::1",
            "2001:db8:2::1",
            "2001:db8:2::2",
        )
    } else {
        (
            "-4",
            "24",
            "198.18.3.2",
            "198.18.3.1",
            "198.18.2.1",
            "198.18.2.2",
        )
    };
    let tap = server.frags_tap("t0");
    let (tap_mac, client_mac) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    server.ip(&["link", "set", "t0", "address", "02:00:00:00:00:01"]);
    for (ns, ip, dev) in [
        (&server, server_ip, "t0"),
        (&server, relay, "s1"),
        (&peer, peer_ip, "p0"),
    ] {
        let cidr = format!("{ip}/{prefix}");
        let mut args = vec![family, "addr", "add", &cidr, "dev", dev];
        if v6 {
            args.push("nodad");
        }
        ns.ip(&args);
    }
    server.ip(&["link", "set", "t0", "up"]);
    server.ip(&[
        family,
        "neigh",
        "add",
        client,
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        "t0",
        "nud",
        "permanent",
    ]);
    server.sysctl("net/ipv4/conf/lo/forwarding", "1");
    server.sysctl("net/ipv6/conf/lo/forwarding", "1");

    let peer_socket = bind(&peer, peer_ip.parse().unwrap());
    let b = Binding {
        client: SocketAddr::new(client.parse().unwrap(), 40000),
        server: SocketAddr::new(server_ip.parse().unwrap(), 3478),
        relay: SocketAddr::new(relay.parse().unwrap(), 49152),
        peer: peer_socket.local_addr().unwrap(),
        channel: CHANNEL,
    };
    let mut fast = load(&server, Config::new(["t0", "s1"]));
    fast.install(b).unwrap();

    let sizes = [0, 3, 99, 1200];
    for (i, &n) in sizes.iter().enumerate() {
        let data = payload(i, n);
        let frame = udp_frame(
            tap_mac,
            client_mac,
            b.client,
            b.server,
            &channel_data(CHANNEL, &data),
        );
        // Ethernet header linear, the IP header, UDP header and ChannelData in fragments.
        let iph = if v6 { 40 } else { 20 };
        let parts = [&frame[..14], &frame[14..14 + iph], &frame[14 + iph..]];
        let parts = parts.map(std::io::IoSlice::new);
        let written = (&tap).write_vectored(&parts).expect("writev");
        assert_eq!(written, frame.len());
        let (got, from) = recv(&peer_socket, &format!("peer, {n} bytes"));
        assert_eq!((got, from), (data, b.relay));
    }
    let expected = Counters {
        to_peer: traffic(&sizes),
        to_client: Traffic::default(),
    };
    assert_eq!(fast.remove(&b).unwrap(), Some(expected));
}

#[test]
fn relays_with_headers_in_fragments_ipv4() {
    relays_with_headers_in_fragments(false);
}

#[test]
fn relays_with_headers_in_fragments_ipv6() {
    relays_with_headers_in_fragments(true);
}
