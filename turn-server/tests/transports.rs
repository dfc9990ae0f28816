//! Client transports and address families against the real binary: TCP and TLS clients
//! (RFC 8656 §3.1) and IPv6 relays (RFC 6156) driven by coturn's `turnutils_uclient`
//! (`-t`, `-S`, `-x`) relaying to UDP echo peers and client to client, RFC 6062 TCP relays
//! over TLS (`-S -T`), and raw TCP and TLS (rustls) clients for framing edge cases,
//! listener switches, TLS versions, certificate reloads and clients that stop reading.

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};

const SECRET: &str = "stream-test-secret";

struct Server {
    child: Child,
    port: u16,
    tls_port: u16,
    /// The self-signed certificate the server starts with (for "localhost").
    cert: CertificateDer<'static>,
    /// Holds `cert.pem` and `key.pem`, which the server reloads on signals.
    dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn start() -> Server {
    start_with(&[])
}

fn start_with(extra: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "turn-stream-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = write_certificate(&dir);
    let (port, tls_port) = (free_port(), free_port());
    let relay_base = 30_000 + (port % 1_000) * 20;
    let child = Command::new(env!("CARGO_BIN_EXE_turn-server"))
        .args([
            "-n".to_owned(),
            "--listening-ip=127.0.0.1".to_owned(),
            "--relay-ip=127.0.0.1".to_owned(),
            format!("--listening-port={port}"),
            format!("--tls-listening-port={tls_port}"),
            format!("--min-port={relay_base}"),
            format!("--max-port={}", relay_base + 19),
            "--realm=example.org".to_owned(),
            "--use-auth-secret".to_owned(),
            format!("--static-auth-secret={SECRET}"),
            "--allow-loopback-peers".to_owned(),
            format!("--cert={}", dir.join("cert.pem").display()),
            format!("--pkey={}", dir.join("key.pem").display()),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        port,
        tls_port,
        cert,
        dir: TempDir(dir),
    };
    // Either stream listener (`--no-tcp` or `--no-tls` closes one).
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err()
        && TcpStream::connect(("127.0.0.1", port)).is_err()
    {
        assert!(Instant::now() < deadline, "server did not start listening");
        thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Writes a new self-signed certificate for "localhost" and its key to `cert.pem` and
/// `key.pem` in `dir`; returns the certificate.
fn write_certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
    certified.cert.der().clone()
}

/// A UDP echo peer on 127.0.0.1, on a port and the next one (uclient sends RTCP to
/// port + 1); returns the first port.
fn echo_peer() -> u16 {
    echo_peer_on("127.0.0.1")
}

fn echo_peer_on(ip: &str) -> u16 {
    loop {
        let rtp = UdpSocket::bind((ip, 0)).unwrap();
        let port = rtp.local_addr().unwrap().port();
        let Ok(rtcp) = UdpSocket::bind((ip, port.wrapping_add(1))) else {
            continue;
        };
        for socket in [rtp, rtcp] {
            socket
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..len], from);
                }
            });
        }
        return port;
    }
}

/// Runs uclient and returns (sent, received) from its final summary.
/// How long one uclient run may take (a stuck run fails the test instead of hanging it).
const UCLIENT_LIMIT: Duration = Duration::from_secs(120);

fn uclient(args: &[String]) -> (u64, u64) {
    let text = support::run_bounded("turnutils_uclient", args, UCLIENT_LIMIT).output;
    let summary = support::parse_summary(&text)
        .unwrap_or_else(|| panic!("no summary in uclient output:\n{text}"));
    assert_eq!(summary.lost, 0, "uclient counted lost packets:\n{text}");
    (summary.sent_msgs, summary.recv_msgs)
}

fn common(port: u16) -> Vec<String> {
    [
        "-n",
        "20",
        "-l",
        "180",
        "-W",
        SECRET,
        "-u",
        "@alice:example.org",
        "-p",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([port.to_string()])
    .collect()
}

fn assert_all_relayed((sent, received): (u64, u64), what: &str) {
    assert!(sent > 0, "{what}: nothing sent");
    assert_eq!(received, sent, "{what}: every message must come back");
}

#[test]
fn uclient_over_tcp_channels_send_and_client_to_client() {
    let server = start();
    let peer = echo_peer();
    let to_peer = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "-e".into(),
            "127.0.0.1".into(),
            "-r".into(),
            peer.to_string(),
        ]);
        args.extend(common(server.port));
        args.push("127.0.0.1".into());
        args
    };
    assert_all_relayed(uclient(&to_peer(&["-t"])), "tcp, channels");
    assert_all_relayed(uclient(&to_peer(&["-t", "-s"])), "tcp, send indications");
    let mut c2c: Vec<String> = vec!["-t".into(), "-y".into()];
    c2c.extend(common(server.port));
    c2c.push("127.0.0.1".into());
    assert_all_relayed(uclient(&c2c), "tcp, client to client");
}

#[test]
fn uclient_over_tls() {
    let server = start();
    let peer = echo_peer();
    let mut args: Vec<String> = vec![
        "-S".into(),
        "-t".into(),
        "-e".into(),
        "127.0.0.1".into(),
        "-r".into(),
        peer.to_string(),
    ];
    args.extend(common(server.tls_port));
    args.push("127.0.0.1".into());
    assert_all_relayed(uclient(&args), "tls");
}

#[test]
fn uclient_tcp_relays_over_tls() {
    // RFC 6062 with TLS control and data connections (-S -T).
    let server = start();
    let mut args: Vec<String> = vec!["-S".into(), "-T".into()];
    args.extend(common(server.tls_port));
    args.push("127.0.0.1".into());
    assert_all_relayed(uclient(&args), "tls, tcp relays");
}

fn binding_request(tid: u8) -> Vec<u8> {
    let mut message = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    message.extend_from_slice(&[tid; 12]);
    message
}

/// Reads one STUN message from the stream.
fn read_message(stream: &mut (impl Read + ?Sized)) -> Vec<u8> {
    let mut header = [0u8; 20];
    stream.read_exact(&mut header).unwrap();
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    [header.to_vec(), body].concat()
}

#[test]
fn framing_edge_cases_on_tcp_and_tls() {
    let server = start();
    let plain_on_tls_port = TcpStream::connect(("127.0.0.1", server.tls_port)).unwrap();
    plain_on_tls_port
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let streams: [(&str, Box<dyn Stream>); 3] = [
        ("TCP", connect(&server, Transport::Tcp)),
        ("plain TCP on the TLS port", Box::new(plain_on_tls_port)),
        ("TLS", connect(&server, Transport::Tls)),
    ];
    for (what, mut stream) in streams {
        // Two requests in one write (one segment, or one TLS record), then one split
        // across writes inside its header.
        let both = [binding_request(1), binding_request(2)].concat();
        stream.write_all(&both).unwrap();
        let third = binding_request(3);
        stream.write_all(&third[..7]).unwrap();
        thread::sleep(Duration::from_millis(50));
        stream.write_all(&third[7..]).unwrap();
        for tid in [1u8, 2, 3] {
            let response = read_message(&mut *stream);
            assert_eq!(&response[..2], &[0x01, 0x01], "Binding success, {what}");
            assert_eq!(&response[8..20], &[tid; 12], "answers in order, {what}");
        }
        // Something that is neither STUN nor ChannelData: the server closes the connection
        // (over TLS without close_notify, which the client reports as an unexpected end).
        stream.write_all(&[0xC0; 32]).unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof, "{what}"),
        }
        assert!(
            rest.is_empty(),
            "closed without an answer, {what}: {rest:?}"
        );
    }
}

/// A STUN header announcing 20 + 65 532 bytes: more than a message may have (attribute
/// offsets are 16-bit). The server closes the stream on the header, without waiting for
/// the body (before, it buffered up to the partial-frame timeout, 10 s).
#[test]
fn over_long_messages_close_the_stream_at_once() {
    let server = start();
    for (what, mut stream) in [
        ("TCP", connect(&server, Transport::Tcp)),
        ("TLS", connect(&server, Transport::Tls)),
    ] {
        let mut header = binding_request(4)[..20].to_vec();
        header[2..4].copy_from_slice(&0xFFFCu16.to_be_bytes());
        stream.write_all(&header).unwrap();
        stream.write_all(&[0; 1000]).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(error) => assert!(
                matches!(
                    error.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ),
                "{what}: {error}"
            ),
        }
        assert!(rest.is_empty(), "{what}: answered {rest:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{what}: closed after {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn uclient_ipv6_relays() {
    if UdpSocket::bind("[::1]:0").is_err() {
        panic!("this test needs IPv6 on loopback (::1)");
    }
    let server = start_with(&["--listening-ip=::1", "--relay-ip=::1"]);
    let peer = echo_peer_on("::1");
    for (what, client_address) in [
        ("IPv4 client, IPv6 relay", "127.0.0.1"),
        ("IPv6 client and relay", "::1"),
    ] {
        let mut args: Vec<String> = vec![
            "-x".into(),
            "-e".into(),
            "::1".into(),
            "-r".into(),
            peer.to_string(),
        ];
        args.extend(common(server.port));
        args.push(client_address.into());
        assert_all_relayed(uclient(&args), what);
    }
}

#[test]
fn uclient_ipv6_relay_to_the_loopback_peer_is_refused_by_default() {
    assert!(
        UdpSocket::bind("[::1]:0").is_ok(),
        "this test needs IPv6 on loopback (::1)"
    );
    // As in uclient_ipv6_relays, without the test-only loopback opening.
    let server = start_with(&[
        "--listening-ip=::1",
        "--relay-ip=::1",
        "--allow-loopback-peers=false",
    ]);
    let peer = UdpSocket::bind("[::1]:0").unwrap();
    let mut args: Vec<String> = vec![
        "-x".into(),
        "-c".into(),
        "-e".into(),
        "::1".into(),
        "-r".into(),
        peer.local_addr().unwrap().port().to_string(),
    ];
    args.extend(common(server.port));
    args.push("127.0.0.1".into());
    let support::RunOutput {
        status,
        output: text,
    } = support::run_bounded("turnutils_uclient", &args, UCLIENT_LIMIT);
    assert!(!status.success(), "uclient relayed to ::1:\n{text}");
    assert!(
        text.contains("channel bind: error 403"),
        "the ChannelBind to ::1 must get 403:\n{text}"
    );
    peer.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    assert_eq!(
        peer.recv_from(&mut buf).map_err(|error| error.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "the ::1 peer received data"
    );
}

/// XOR-MAPPED-ADDRESS of a Binding success response (IPv4).
fn mapped_address(response: &[u8]) -> std::net::SocketAddr {
    let mut at = 20;
    while at + 4 <= response.len() {
        let kind = u16::from_be_bytes([response[at], response[at + 1]]);
        let len = usize::from(u16::from_be_bytes([response[at + 2], response[at + 3]]));
        if kind == 0x0020 {
            let value = &response[at + 4..at + 4 + len];
            let port = u16::from_be_bytes([value[2], value[3]]) ^ 0x2112;
            let ip = u32::from_be_bytes([value[4], value[5], value[6], value[7]]) ^ 0x2112_A442;
            return (std::net::Ipv4Addr::from(ip), port).into();
        }
        at += 4 + ((len + 3) & !3);
    }
    panic!("no XOR-MAPPED-ADDRESS in {response:?}");
}

#[test]
fn proxy_protocol_listener_sees_the_real_client() {
    let proxy_port = free_port();
    let server = start_with(&[&format!("--tcp-proxy-port={proxy_port}")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", proxy_port)).is_err() {
        assert!(Instant::now() < deadline, "proxy listener did not start");
        thread::sleep(Duration::from_millis(50));
    }
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 51, 100, 9, 127, 0, 0, 1]);
    v2.extend_from_slice(&41_000u16.to_be_bytes());
    v2.extend_from_slice(&proxy_port.to_be_bytes());
    let v1 = format!("PROXY TCP4 192.0.2.7 127.0.0.1 40000 {proxy_port}\r\n").into_bytes();
    for (header, expected) in [(v1, "192.0.2.7:40000"), (v2, "198.51.100.9:41000")] {
        let mut stream = TcpStream::connect(("127.0.0.1", proxy_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Header and first request in one segment, as proxies send them.
        stream
            .write_all(&[header, binding_request(7)].concat())
            .unwrap();
        let response = read_message(&mut stream);
        assert_eq!(mapped_address(&response), expected.parse().unwrap());
    }
    // Without a header the connection is refused (reset: the request was never read);
    // the plain port is unaffected.
    let mut bare = TcpStream::connect(("127.0.0.1", proxy_port)).unwrap();
    bare.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    bare.write_all(&binding_request(8)).unwrap();
    let mut rest = Vec::new();
    match bare.read_to_end(&mut rest) {
        Ok(0) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
        Ok(_) => panic!("answered without a PROXY header: {rest:?}"),
    }
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.write_all(&binding_request(9)).unwrap();
    let local = plain.local_addr().unwrap();
    assert_eq!(mapped_address(&read_message(&mut plain)), local);
}

/// The PROXY listener believes headers only from `tcp-proxy-trusted-ip` (default:
/// loopback): anyone else could claim any client address. An untrusted source is closed
/// before its header is read.
#[test]
fn proxy_protocol_listener_refuses_untrusted_sources() {
    let proxy_port = free_port();
    let _server = start_with(&[
        &format!("--tcp-proxy-port={proxy_port}"),
        "--tcp-proxy-trusted-ip=192.0.2.0/24",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", proxy_port)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "proxy listener did not start");
        thread::sleep(Duration::from_millis(50));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let header = format!("PROXY TCP4 198.51.100.7 127.0.0.1 40000 {proxy_port}\r\n");
    // The server may close before or after the write lands: either is a refusal.
    let _ = stream.write_all(&[header.into_bytes(), binding_request(7)].concat());
    let mut answer = [0u8; 64];
    match stream.read(&mut answer) {
        Ok(0) => {}
        Ok(len) => panic!("answered an untrusted proxy: {:?}", &answer[..len]),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}"),
    }
}

/// How a test client reaches the server.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// Plain TCP on `listening-port`.
    Tcp,
    /// TLS on `tls-listening-port`, trusting the server's self-signed certificate.
    Tls,
}

/// A client connection of either transport.
trait Stream: Read + Write {}

impl<S: Read + Write> Stream for S {}

/// Connects to `server` over `transport`; reads time out after 5 s.
fn connect(server: &Server, transport: Transport) -> Box<dyn Stream> {
    let port = match transport {
        Transport::Tcp => server.port,
        Transport::Tls => server.tls_port,
    };
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    match transport {
        Transport::Tcp => Box::new(tcp),
        Transport::Tls => Box::new(tls_client(&server.cert, tcp, rustls::ALL_VERSIONS)),
    }
}

/// A TLS client for "localhost" over `tcp` that trusts `cert` only and offers
/// `versions`; the handshake runs on first use.
fn tls_client(
    cert: &CertificateDer<'static>,
    tcp: TcpStream,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    rustls::StreamOwned::new(connection, tcp)
}

/// Whether a TLS handshake with the server succeeds for a client that trusts `cert` only
/// and offers `versions`.
fn handshake(
    server: &Server,
    cert: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> bool {
    let Ok(tcp) = TcpStream::connect(("127.0.0.1", server.tls_port)) else {
        return false;
    };
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut stream = tls_client(cert, tcp, versions);
    stream.conn.complete_io(&mut stream.sock).is_ok()
}

/// Whether a STUN Binding request over UDP to the server's port is answered.
fn udp_answers(server: &Server) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket
        .send_to(&binding_request(1), ("127.0.0.1", server.port))
        .unwrap();
    socket.recv_from(&mut [0u8; 512]).is_ok()
}

#[test]
fn no_udp_no_tcp_and_no_tls_each_close_their_listener() {
    for (flag, udp, tcp, tls) in [
        ("--no-udp", false, true, true),
        ("--no-tcp", true, false, true),
        ("--no-tls", true, true, false),
    ] {
        let server = start_with(&[flag]);
        assert_eq!(udp_answers(&server), udp, "{flag}: UDP");
        assert_eq!(
            TcpStream::connect(("127.0.0.1", server.port)).is_ok(),
            tcp,
            "{flag}: TCP"
        );
        assert_eq!(
            handshake_trusting(&server, &server.cert),
            tls,
            "{flag}: TLS"
        );
    }
}

/// [`handshake`] with every version rustls speaks.
fn handshake_trusting(server: &Server, cert: &CertificateDer<'static>) -> bool {
    handshake(server, cert, rustls::ALL_VERSIONS)
}

#[test]
fn tls_1_2_and_1_3_are_served_and_no_tlsv1_2_leaves_1_3() {
    let tls12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let tls13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let server = start();
    assert!(handshake(&server, &server.cert, tls12), "TLS 1.2");
    assert!(handshake(&server, &server.cert, tls13), "TLS 1.3");
    let server = start_with(&["--no-tlsv1_2"]);
    assert!(!handshake(&server, &server.cert, tls12), "TLS 1.2 refused");
    assert!(handshake(&server, &server.cert, tls13), "TLS 1.3");
}

#[test]
fn tls_certificate_is_reloaded_on_sigusr2_and_sighup() {
    let server = start();
    let mut current = server.cert.clone();
    assert!(handshake_trusting(&server, &current), "initial certificate");
    for signal in ["USR2", "HUP"] {
        let new = write_certificate(&server.dir.0);
        assert!(
            !handshake_trusting(&server, &new),
            "the new certificate is served before SIG{signal}"
        );
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(server.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !handshake_trusting(&server, &new) {
            assert!(
                Instant::now() < deadline,
                "SIG{signal} did not load the new certificate"
            );
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !handshake_trusting(&server, &current),
            "the old certificate is still served after SIG{signal}"
        );
        current = new;
    }
}

/// Sends a request over the stream (with a REST long-term credential once `nonce` is
/// known) and returns the response.
fn stream_request(
    stream: &mut dyn Stream,
    method: turn_proto::codec::Method,
    extra: &[(turn_proto::codec::attribute::AttrType, Vec<u8>)],
    credential: &rtc_auth::rest::RestCredential,
    nonce: Option<&[u8]>,
    tid: u8,
) -> Vec<u8> {
    use turn_proto::codec::attribute::AttrType;
    use turn_proto::codec::{Class, MessageWriter, TransactionId};
    let mut request = Vec::new();
    let mut writer = MessageWriter::new(
        &mut request,
        method,
        Class::Request,
        TransactionId([tid; 12]),
    );
    for (kind, value) in extra {
        writer.attr(*kind, value);
    }
    if let Some(nonce) = nonce {
        let key = rtc_auth::long_term::long_term_key(
            &credential.username,
            "example.org",
            &credential.password,
        );
        writer
            .attr(AttrType::USERNAME, credential.username.as_bytes())
            .attr(AttrType::REALM, b"example.org")
            .attr(AttrType::NONCE, nonce)
            .integrity(&key);
    }
    stream.write_all(&request).unwrap();
    read_message(stream)
}

/// How the relay hands peer data to the slow client.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// Data indications, after a CreatePermission.
    DataIndications,
    /// ChannelData, after a ChannelBind.
    Channel,
}

/// A client over `transport` allocates, lets a peer in, then stops reading while the
/// peer sends 40 MB through the relay: the server's RSS must stay bounded, another client
/// on the same transport must still be served, and the slow connection must work again
/// once its client reads.
fn a_client_that_stops_reading_costs_bounded_memory(transport: Transport, delivery: Delivery) {
    use turn_proto::codec::address::{decode_xor, encode_xor};
    use turn_proto::codec::attribute::AttrType;
    use turn_proto::codec::{Class, Message, Method, TransactionId};
    let server = start();
    let credential = rtc_auth::rest::mint(
        &rtc_auth::secret::Secret::new(SECRET),
        "@slow:example.org",
        4_000_000_000,
        ':',
    );
    let mut stream = connect(&server, transport);
    let udp = (AttrType::REQUESTED_TRANSPORT, vec![17, 0, 0, 0]);
    let challenge = stream_request(
        &mut *stream,
        Method::ALLOCATE,
        std::slice::from_ref(&udp),
        &credential,
        None,
        1,
    );
    let nonce = Message::parse(&challenge)
        .unwrap()
        .attr(AttrType::NONCE)
        .unwrap()
        .to_vec();
    let response = stream_request(
        &mut *stream,
        Method::ALLOCATE,
        &[udp],
        &credential,
        Some(&nonce),
        2,
    );
    let message = Message::parse(&response).unwrap();
    assert_eq!(
        message.class(),
        Class::Success,
        "Allocate over {transport:?}"
    );
    let relay = decode_xor(
        message.attr(AttrType::XOR_RELAYED_ADDRESS).unwrap(),
        &message.transaction(),
    )
    .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut peer_attr = [0u8; 20];
    let len = encode_xor(
        peer.local_addr().unwrap(),
        &TransactionId([3; 12]),
        &mut peer_attr,
    );
    let peer_attr = (AttrType::XOR_PEER_ADDRESS, peer_attr[..len].to_vec());
    let (method, attrs) = match delivery {
        Delivery::DataIndications => (Method::CREATE_PERMISSION, vec![peer_attr]),
        Delivery::Channel => (
            Method::CHANNEL_BIND,
            vec![
                (AttrType::CHANNEL_NUMBER, vec![0x40, 0x00, 0, 0]),
                peer_attr,
            ],
        ),
    };
    let answer = stream_request(&mut *stream, method, &attrs, &credential, Some(&nonce), 3);
    assert_eq!(
        Message::parse(&answer).unwrap().class(),
        Class::Success,
        "{delivery:?}"
    );

    // The client stops reading; the peer sends 40 MB at it through the relay.
    let before = support::rss_kib(server.child.id());
    // Not a multiple of 4: ChannelData and DATA need padding on the stream.
    let payload = [0x55u8; 999];
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..40_000 {
        let _ = peer.send_to(&payload, relay);
        if Instant::now() > deadline {
            break;
        }
    }
    thread::sleep(Duration::from_millis(500));
    let grown = support::rss_kib(server.child.id()).saturating_sub(before);
    // Measured: about 0.6 MiB (TCP) and 0.7 MiB (TLS) with the 256 KiB queue bound,
    // 14 and 18 MiB without it.
    assert!(
        grown < 4 * 1024,
        "server RSS grew by {grown} KiB for one slow {transport:?} reader"
    );

    // Stream clients share a shard: the slow one must not hold the others up.
    let mut other = connect(&server, transport);
    other.write_all(&binding_request(10)).unwrap();
    let answer = read_message(&mut other);
    assert_eq!(
        &answer[..2],
        &[0x01, 0x01],
        "Binding success for another client"
    );
    assert_eq!(&answer[8..20], &[10; 12]);

    // The connection still works once the client reads again: a Binding answer arrives
    // after whatever part of the backlog was kept.
    stream.write_all(&binding_request(9)).unwrap();
    let mut seen = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pending = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no Binding answer after the backlog"
        );
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the slow connection");
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        let mut answered = false;
        while let Ok(Some(len)) = turn_proto::framing::frame_len(&pending[at..]) {
            let frame = &pending[at..at + len];
            if frame[0] >> 6 == 0 && frame[8..20] == [9; 12] {
                answered = true;
            }
            seen += 1;
            at += len;
        }
        pending.drain(..at);
        if answered {
            break;
        }
    }
    assert!(seen > 1, "some relayed data was kept for the client");
    assert!(
        seen < 40_000,
        "not everything was buffered ({seen} messages)"
    );
}

#[test]
fn a_tcp_client_that_stops_reading_costs_bounded_memory() {
    a_client_that_stops_reading_costs_bounded_memory(Transport::Tcp, Delivery::DataIndications);
}

#[test]
fn a_tls_client_that_stops_reading_costs_bounded_memory() {
    a_client_that_stops_reading_costs_bounded_memory(Transport::Tls, Delivery::Channel);
}

/// A TCP client that sends a Binding request; its stream when answered, None when the
/// server closed it unread (a connection cap).
fn answered_tcp_client(server: &Server, tid: u8) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // A refused connection may be closed before the request is even written.
    let _ = stream.write_all(&binding_request(tid));
    let mut header = [0u8; 20];
    stream.read_exact(&mut header).ok()?;
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    stream.read_exact(&mut vec![0u8; len]).ok()?;
    Some(stream)
}

/// Seconds until the server closes `stream` (reads return EOF or reset), at most `limit`.
fn seconds_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<f64> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed().as_secs_f64()),
        }
    }
    None
}

#[test]
fn tcp_clients_are_capped_per_source_and_in_total() {
    let server = start_with(&["--max-tcp-clients-per-ip=3"]);
    let mut open: Vec<TcpStream> = (0..3)
        .map(|tid| answered_tcp_client(&server, tid).expect("under the cap"))
        .collect();
    assert!(
        answered_tcp_client(&server, 9).is_none(),
        "a fourth connection from 127.0.0.1 is closed unread"
    );
    drop(open.pop());
    // The place comes back once the server sees the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while answered_tcp_client(&server, 10).is_none() {
        assert!(
            Instant::now() < deadline,
            "a closed connection's place came back"
        );
        thread::sleep(Duration::from_millis(100));
    }

    let server = start_with(&["--max-tcp-clients=2", "--relay-threads=2"]);
    let _open: Vec<TcpStream> = (0..2)
        .map(|tid| answered_tcp_client(&server, tid).expect("under the cap"))
        .collect();
    assert!(
        answered_tcp_client(&server, 9).is_none(),
        "the total counts the connections of every shard"
    );
}

#[test]
fn a_tcp_client_without_an_allocation_is_closed_after_max_allocate_timeout() {
    use turn_proto::codec::attribute::AttrType;
    use turn_proto::codec::{Message, Method};
    let server = start_with(&["--max-allocate-timeout=2"]);
    let mut idle = answered_tcp_client(&server, 1).expect("answered");
    let closed = seconds_until_closed(&mut idle, Duration::from_secs(8))
        .expect("closed for want of an allocation");
    assert!(
        (1.0..5.0).contains(&closed),
        "closed after about 2 s, not {closed:.1} s"
    );

    // With an allocation the same idleness is fine.
    let credential = rtc_auth::rest::mint(
        &rtc_auth::secret::Secret::new(SECRET),
        "@busy:example.org",
        4_000_000_000,
        ':',
    );
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let udp = (AttrType::REQUESTED_TRANSPORT, vec![17, 0, 0, 0]);
    let challenge = stream_request(
        &mut stream,
        Method::ALLOCATE,
        std::slice::from_ref(&udp),
        &credential,
        None,
        1,
    );
    let nonce = Message::parse(&challenge)
        .unwrap()
        .attr(AttrType::NONCE)
        .unwrap()
        .to_vec();
    let allocated = stream_request(
        &mut stream,
        Method::ALLOCATE,
        &[udp],
        &credential,
        Some(&nonce),
        2,
    );
    assert!(
        Message::parse(&allocated)
            .unwrap()
            .attr(AttrType::XOR_RELAYED_ADDRESS)
            .is_some(),
        "allocated"
    );
    assert_eq!(
        seconds_until_closed(&mut stream, Duration::from_secs(5)),
        None,
        "an allocated connection stays open"
    );
}

#[test]
fn a_message_trickling_in_is_cut_off_by_its_deadline() {
    // Slowloris: a byte every 500 ms keeps reads coming, but the message must be whole
    // within 10 s of its first byte.
    let server = start();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // A Binding request announcing 200 bytes of attributes it never completes.
    let mut request = binding_request(1);
    request[2..4].copy_from_slice(&200u16.to_be_bytes());
    stream.write_all(&request).unwrap();
    let start = Instant::now();
    let mut closed = None;
    while start.elapsed() < Duration::from_secs(16) {
        if stream.write_all(&[0]).is_err() {
            closed = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 16];
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = Some(start.elapsed());
                break;
            }
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = Some(start.elapsed());
                break;
            }
        }
        thread::sleep(Duration::from_millis(450));
    }
    let closed = closed.expect("the trickling connection is closed");
    assert!(
        closed > Duration::from_secs(8) && closed < Duration::from_secs(13),
        "closed at the 10 s message deadline, not after {closed:?}"
    );
}

#[test]
fn stream_clients_reach_the_shard_that_holds_their_reservation_or_peer_connection() {
    // With four shards the kernel spreads a client's connections over them. An Allocate
    // claiming a reserved port (uclient's RTCP half, -t) and a ConnectionBind (-T) that
    // land on another shard than the one holding the reservation or peer connection are
    // handed over, on plain TCP and TLS; without that, a run fails whenever its second
    // connection lands on another shard, three times in four.
    let server = start_with(&["--relay-threads=4"]);
    let peer = echo_peer();
    for (tls, port) in [(false, server.port), (true, server.tls_port)] {
        for _ in 0..2 {
            let tls_flag = tls.then(|| "-S".to_owned());
            let mut reserved: Vec<String> = tls_flag.iter().cloned().collect();
            reserved.extend(["-t", "-e", "127.0.0.1", "-r"].map(str::to_owned));
            reserved.push(peer.to_string());
            reserved.extend(common(port));
            reserved.push("127.0.0.1".into());
            assert_all_relayed(uclient(&reserved), "reservations across shards");
            let mut tcp_relays: Vec<String> = tls_flag.into_iter().collect();
            tcp_relays.push("-T".into());
            tcp_relays.extend(common(port));
            tcp_relays.push("127.0.0.1".into());
            assert_all_relayed(uclient(&tcp_relays), "tcp relays across shards");
        }
    }
}
