//! The TURN servers the homeserver hands out (`/_matrix/client/v3/voip/turnServer`):
//! the URI list's format, where each host resolves, and a real Allocate with the
//! credentials the homeserver minted, over each URI's transport (UDP, TCP, or TLS for
//! `turns:`, with the certificate checked against the platform's roots and `--ca-file`).

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use turn_proto::codec::address::decode_xor;
use turn_proto::codec::attribute::AttrType;
use turn_proto::codec::{Class, HEADER_LEN, Message, MessageWriter, Method, TransactionId};
use url::Url;

use crate::http::{Http, join};
use crate::options::Options;
use crate::report::Report;

/// One URI of the homeserver's list, parsed (RFC 7065).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUri {
    /// `turns:` (TLS).
    pub secure: bool,
    /// Host name or address.
    pub host: String,
    /// Port (3478, or 5349 for `turns:`, when absent).
    pub port: u16,
    /// `?transport=`, when given.
    pub transport: Option<Transport>,
}

/// The transport between client and TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `?transport=udp`.
    Udp,
    /// `?transport=tcp`.
    Tcp,
}

impl TurnUri {
    /// Parses `turn:host[:port][?transport=udp|tcp]` or the `turns:` form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (secure, rest) = if let Some(rest) = text.strip_prefix("turns:") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("turn:") {
            (false, rest)
        } else {
            return Err(format!("{text:?} does not start with turn: or turns:"));
        };
        if rest.contains(',') || rest.contains(char::is_whitespace) {
            return Err(format!(
                "{text:?} holds several URIs in one string (comma-separated instead of a list)"
            ));
        }
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let transport = match query {
            "" => None,
            "transport=udp" => Some(Transport::Udp),
            "transport=tcp" => Some(Transport::Tcp),
            other => return Err(format!("{text:?}: unknown parameter {other:?}")),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && !port.contains(']') => {
                let port = port
                    .parse()
                    .map_err(|_| format!("{text:?}: bad port {port:?}"))?;
                (host, port)
            }
            _ => (authority, if secure { 5349 } else { 3478 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        Ok(Self {
            secure,
            host: host.to_owned(),
            port,
            transport,
        })
    }
}

/// Fetches the homeserver's TURN answer and checks every URI in it.
pub async fn check(
    http: &Http,
    homeserver: &Url,
    token: &str,
    options: &Options,
    report: &mut Report,
) {
    let url = join(homeserver, "/_matrix/client/v3/voip/turnServer");
    let answer = match http.get(&url, Some(token)).await {
        Ok(answer) => answer,
        Err(e) => {
            report.fail("turn-config", e, "the homeserver must be reachable");
            return;
        }
    };
    let document = answer.json().unwrap_or_default();
    let uris = match &document["uris"] {
        Value::Array(uris) if answer.status == 200 && !uris.is_empty() => uris.clone(),
        Value::String(_) => {
            report.fail(
                "turn-uris-format",
                "`uris` is a string, not a list",
                "write turn_uris as a list (a JSON array in an environment variable)",
            );
            return;
        }
        _ => {
            report.fail(
                "turn-config",
                format!("{url} answered {} without TURN URIs", answer.describe()),
                "set turn_uris and the shared secret on the homeserver (docs/element-call.md)",
            );
            return;
        }
    };
    let (Some(username), Some(password)) =
        (document["username"].as_str(), document["password"].as_str())
    else {
        report.fail(
            "turn-config",
            "the answer has no username/password",
            "set the homeserver's TURN shared secret (turn_shared_secret / turn_secret)",
        );
        return;
    };
    report.ok(
        "turn-config",
        format!("the homeserver hands out {} TURN URI(s)", uris.len()),
    );
    for uri in &uris {
        let text = uri.as_str().unwrap_or_default();
        let parsed = match TurnUri::parse(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                report.fail(
                    "turn-uris-format",
                    e,
                    "list one URI per element: [\"turn:turn.example.org:3478?transport=udp\", \
                     \"turn:turn.example.org:3478?transport=tcp\"]",
                );
                continue;
            }
        };
        if parsed.transport.is_none() {
            report.fail(
                "turn-uri-no-transport",
                format!("{text} has no ?transport=: clients try only UDP with it"),
                "list both turn:HOST:3478?transport=udp and turn:HOST:3478?transport=tcp, so \
                 clients behind UDP-blocking firewalls can relay over TCP",
            );
        }
        allocate_one(text, &parsed, username, password, options, report).await;
    }
}

async fn allocate_one(
    text: &str,
    uri: &TurnUri,
    username: &str,
    password: &str,
    options: &Options,
    report: &mut Report,
) {
    let timeout = options.timeout;
    let resolved = match options.resolved(&uri.host) {
        Some(ip) => Ok(Ok(vec![SocketAddr::new(ip, uri.port)])),
        None => tokio::time::timeout(
            timeout,
            tokio::net::lookup_host((uri.host.as_str(), uri.port)),
        )
        .await
        .map(|found| found.map(Iterator::collect::<Vec<_>>)),
    };
    let addresses: Vec<SocketAddr> = match resolved {
        Ok(Ok(addresses)) => addresses,
        Ok(Err(e)) => {
            report.fail(
                "turn-dns",
                format!("{}: {e}", uri.host),
                "publish a DNS record for the TURN host",
            );
            return;
        }
        Err(_) => {
            report.fail(
                "turn-dns",
                format!("{}: DNS timeout", uri.host),
                "publish a DNS record for the TURN host",
            );
            return;
        }
    };
    let Some(&address) = addresses.first() else {
        report.fail(
            "turn-dns",
            format!("{} has no address", uri.host),
            "publish a DNS record for the TURN host",
        );
        return;
    };
    if !addresses.iter().any(|a| is_public(a.ip())) {
        report.warn(
            "turn-private-address",
            format!(
                "{} resolves to {} only: reachable from this network only",
                uri.host,
                address.ip()
            ),
            "clients outside need the TURN host's public address in DNS",
        );
    }
    let way = match (uri.secure, uri.transport) {
        (true, Some(Transport::Udp)) => {
            report.skip("turn-allocate", format!("{text}: DTLS is not checked"));
            return;
        }
        (true, _) => match tls_connector(options) {
            Ok(connector) => Way::Tls(connector, uri.host.clone()),
            Err(e) => {
                report.fail("turn-allocate", format!("{text}: {e}"), "check --ca-file");
                return;
            }
        },
        (false, Some(Transport::Tcp)) => Way::Tcp,
        (false, _) => Way::Udp,
    };
    let label = way.label();
    match tokio::time::timeout(timeout, allocate(address, way, username, password)).await {
        Ok(Ok(relayed)) => report.ok(
            "turn-allocate",
            format!("{text}: Allocate over {label} with the homeserver's credentials gives relay {relayed}"),
        ),
        Ok(Err(AllocateError::Refused(code, reason))) if code == 401 || code == 441 => report.fail(
            "turn-secret-mismatch",
            format!("{text}: the TURN server refuses the homeserver's credentials ({code} {reason})"),
            "the homeserver's TURN secret (turn_shared_secret / turn_secret) must equal \
             turn-server's static-auth-secret, and LiveKit's turn_servers secret too",
        ),
        Ok(Err(AllocateError::Refused(code, reason))) => report.fail(
            "turn-allocate",
            format!("{text}: Allocate refused: {code} {reason}"),
            "see turn-server's log for the refused allocation",
        ),
        Ok(Err(AllocateError::Tls(e))) => report.fail(
            "turn-tls",
            format!("{text}: TLS handshake failed: {e}"),
            "give turn-server a certificate valid for the TURN host (cert= and pkey=), and \
             reload it after each renewal (SIGUSR2)",
        ),
        Ok(Err(AllocateError::Io(e))) => report.fail(
            "turn-unreachable",
            format!("{text}: {e}"),
            format!("open {} {label} to the TURN server", uri.port),
        ),
        Err(_) => report.fail(
            "turn-unreachable",
            format!("{text}: no answer over {label} within {}s", timeout.as_secs()),
            format!("open {} {label} to the TURN server (and check its listening-ip)", uri.port),
        ),
    }
}

/// Global unicast: what clients on the Internet can reach.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[derive(Debug)]
enum AllocateError {
    Refused(u16, String),
    Tls(String),
    Io(String),
}

/// How to reach the TURN server.
enum Way {
    Udp,
    Tcp,
    /// TLS over TCP, checking the certificate for this host name.
    Tls(tokio_rustls::TlsConnector, String),
}

impl Way {
    fn label(&self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls(..) => "TLS",
        }
    }
}

/// A TLS client with the platform's roots plus `--ca-file`.
fn tls_connector(options: &Options) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let extra: Vec<CertificateDer<'static>> = match &options.ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?,
        None => Vec::new(),
    };
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| format!("no TLS roots: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A byte stream: TCP, or TLS over TCP.
trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// A STUN conversation over UDP, or over a byte stream (RFC 8489 §6.2.2 framing).
enum Channel {
    Udp(UdpSocket),
    Stream(Pin<Box<dyn ByteStream>>),
}

impl Channel {
    async fn open(address: SocketAddr, way: Way) -> Result<Self, AllocateError> {
        let io = |e: std::io::Error| AllocateError::Io(e.to_string());
        Ok(match way {
            Way::Udp => {
                let local: SocketAddr = if address.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(local).await.map_err(io)?;
                socket.connect(address).await.map_err(io)?;
                Self::Udp(socket)
            }
            Way::Tcp => Self::Stream(Box::pin(TcpStream::connect(address).await.map_err(io)?)),
            Way::Tls(connector, host) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| AllocateError::Tls(format!("{host}: {e}")))?;
                let tcp = TcpStream::connect(address).await.map_err(io)?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| AllocateError::Tls(e.to_string()))?;
                Self::Stream(Box::pin(tls))
            }
        })
    }

    /// Sends `request` and returns the response with the same transaction id. UDP
    /// retransmits every 500 ms (the caller bounds the whole exchange).
    async fn exchange(
        &mut self,
        request: &[u8],
        id: TransactionId,
    ) -> Result<Vec<u8>, AllocateError> {
        let io = |e: std::io::Error| AllocateError::Io(e.to_string());
        match self {
            Self::Udp(socket) => loop {
                socket.send(request).await.map_err(io)?;
                let mut buf = vec![0u8; 2048];
                if let Ok(received) =
                    tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await
                {
                    let n = received.map_err(io)?;
                    buf.truncate(n);
                    if Message::parse(&buf).is_ok_and(|m| m.transaction() == id) {
                        return Ok(buf);
                    }
                }
            },
            Self::Stream(stream) => {
                stream.write_all(request).await.map_err(io)?;
                loop {
                    let mut header = [0u8; HEADER_LEN];
                    stream.read_exact(&mut header).await.map_err(io)?;
                    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
                    let mut message = header.to_vec();
                    message.resize(HEADER_LEN + length, 0);
                    stream
                        .read_exact(&mut message[HEADER_LEN..])
                        .await
                        .map_err(io)?;
                    if Message::parse(&message).is_ok_and(|m| m.transaction() == id) {
                        return Ok(message);
                    }
                }
            }
        }
    }
}

fn error_code(message: &Message<'_>) -> (u16, String) {
    match message.attr(AttrType::ERROR_CODE) {
        Some(value) if value.len() >= 4 => (
            u16::from(value[2] & 0x07) * 100 + u16::from(value[3]),
            String::from_utf8_lossy(&value[4..]).into_owned(),
        ),
        _ => (0, "error response without ERROR-CODE".to_owned()),
    }
}

/// Allocates a UDP relay with long-term credentials, then releases it (Refresh with
/// LIFETIME 0). Returns the relayed address.
async fn allocate(
    address: SocketAddr,
    way: Way,
    username: &str,
    password: &str,
) -> Result<SocketAddr, AllocateError> {
    let mut channel = Channel::open(address, way).await?;
    // RFC 8656 §7.2: the first request without credentials brings REALM and NONCE.
    let id = TransactionId(rand::random());
    let mut request = Vec::new();
    MessageWriter::new(&mut request, Method::ALLOCATE, Class::Request, id)
        .attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .fingerprint();
    let response = channel.exchange(&request, id).await?;
    let challenge = Message::parse(&response)
        .map_err(|e| AllocateError::Io(format!("bad STUN answer: {e}")))?;
    if challenge.class() != Class::Error || error_code(&challenge).0 != 401 {
        let (code, reason) = error_code(&challenge);
        return Err(AllocateError::Refused(
            code,
            format!("to the unauthenticated Allocate: {reason}"),
        ));
    }
    let text = |kind| {
        challenge
            .text_attr(kind)
            .and_then(Result::ok)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let (realm, nonce) = (text(AttrType::REALM), text(AttrType::NONCE));
    let key = rtc_auth::long_term::long_term_key(username, &realm, password);
    let id = TransactionId(rand::random());
    let mut request = Vec::new();
    MessageWriter::new(&mut request, Method::ALLOCATE, Class::Request, id)
        .attr(AttrType::REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .attr(AttrType::USERNAME, username.as_bytes())
        .attr(AttrType::REALM, realm.as_bytes())
        .attr(AttrType::NONCE, nonce.as_bytes())
        .integrity(&key)
        .fingerprint();
    let response = channel.exchange(&request, id).await?;
    let answer = Message::parse(&response)
        .map_err(|e| AllocateError::Io(format!("bad STUN answer: {e}")))?;
    if answer.class() != Class::Success {
        let (code, reason) = error_code(&answer);
        return Err(AllocateError::Refused(code, reason));
    }
    let relayed = answer
        .attr(AttrType::XOR_RELAYED_ADDRESS)
        .and_then(|value| decode_xor(value, &id).ok())
        .ok_or_else(|| AllocateError::Io("success without XOR-RELAYED-ADDRESS".into()))?;
    // Release the relay at once; a failure here changes nothing about the finding.
    let id = TransactionId(rand::random());
    let mut refresh = Vec::new();
    MessageWriter::new(&mut refresh, Method::REFRESH, Class::Request, id)
        .u32_attr(AttrType::LIFETIME, 0)
        .attr(AttrType::USERNAME, username.as_bytes())
        .attr(AttrType::REALM, realm.as_bytes())
        .attr(AttrType::NONCE, nonce.as_bytes())
        .integrity(&key)
        .fingerprint();
    let _ = tokio::time::timeout(Duration::from_secs(2), channel.exchange(&refresh, id)).await;
    Ok(relayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let uri = TurnUri::parse("turn:turn.example.org:3478?transport=udp").unwrap();
        assert_eq!(
            uri,
            TurnUri {
                secure: false,
                host: "turn.example.org".into(),
                port: 3478,
                transport: Some(Transport::Udp)
            }
        );
        let uri = TurnUri::parse("turns:turn.example.org").unwrap();
        assert!(uri.secure);
        assert_eq!((uri.port, uri.transport), (5349, None));
        let uri = TurnUri::parse("turn:[2001:db8::1]:3479?transport=tcp").unwrap();
        assert_eq!((uri.host.as_str(), uri.port), ("2001:db8::1", 3479));
        assert!(
            TurnUri::parse("turn:a:3478?transport=udp,turn:a:3478?transport=tcp")
                .unwrap_err()
                .contains("comma-separated")
        );
        assert!(TurnUri::parse("stun:a:3478").is_err());
        assert!(TurnUri::parse("turn::3478").is_err());
        assert!(TurnUri::parse("turn:a:x").is_err());
    }

    #[test]
    fn public_addresses() {
        assert!(!is_public("198.51.100.7".parse().unwrap()));
        assert!(is_public("8.8.8.8".parse().unwrap()));
        assert!(!is_public("10.1.2.3".parse().unwrap()));
        assert!(!is_public("127.0.0.1".parse().unwrap()));
        assert!(!is_public("100.64.0.1".parse().unwrap()));
        assert!(!is_public("fd00::1".parse().unwrap()));
        assert!(is_public("2a00:1450::1".parse().unwrap()));
    }
}
