//! TURN over TCP and TLS (RFC 8656 §3.1): one stream per client carries its STUN
//! transactions and its ChannelData, each frame read by its own length, ChannelData
//! padded to a multiple of 4 (RFC 8656 §12.5). The relay itself stays UDP.
//!
//! The data path is one tokio sender and one receiver task per client instead of the UDP
//! path's batched `sendmmsg`/`recvmmsg`; it measures the server's stream handling, not
//! the fastest possible client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use turn_proto::codec::{Class, Message, TransactionId};
use turn_proto::framing::frame_len;

use crate::client::{Failure, Link};
use crate::datapath::{
    Framing, Live, LoadSpec, WorkerResult, read_stamp, stamp, template, turn_payload,
};

/// How long one transaction may take: the stream is reliable, so there are no
/// retransmissions (RFC 8489 §6.2.2), only this bound.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP or TLS.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP, with this connector.
    Tls(TlsConnector),
}

impl Transport {
    /// TLS that accepts any server certificate: only for load-testing servers with
    /// self-signed certificates, which is why the command line asks for it explicitly.
    /// Handshake signatures are still checked, so the session keys are sound.
    pub fn tls_without_verification() -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Self::Tls(TlsConnector::from(Arc::new(config))))
    }

    /// `tcp` or `tls`, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls(_) => "tls",
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A byte stream to the server, TCP or TLS.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// One client's stream to the server, with the bytes read past the last frame.
pub struct StreamLink {
    stream: Box<dyn ByteStream>,
    buf: Vec<u8>,
}

fn io_failure(e: &std::io::Error) -> Failure {
    Failure::Io(format!("{:?}", e.kind()).to_lowercase())
}

/// Connects to `server` over `transport`.
pub async fn connect(server: SocketAddr, transport: &Transport) -> Result<StreamLink, Failure> {
    let tcp = TcpStream::connect(server)
        .await
        .map_err(|e| io_failure(&e))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn ByteStream> = match transport {
        Transport::Tcp => Box::new(tcp),
        Transport::Tls(connector) => {
            let name = ServerName::IpAddress(server.ip().into());
            Box::new(
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| io_failure(&e))?,
            )
        }
    };
    Ok(StreamLink {
        stream,
        buf: Vec::with_capacity(4096),
    })
}

/// Reads one frame into `frame` (ChannelData padding included), keeping extra bytes in
/// `buf`; the boundaries are the relay core's (`turn_proto::framing`). Anything but STUN
/// or ChannelData, or a frame longer than a message can be, is an `InvalidData` error.
async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin + ?Sized),
    buf: &mut Vec<u8>,
    frame: &mut Vec<u8>,
) -> std::io::Result<()> {
    loop {
        let complete =
            frame_len(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if let Some(len) = complete {
            frame.clear();
            frame.extend_from_slice(&buf[..len]);
            buf.drain(..len);
            return Ok(());
        }
        let at = buf.len();
        buf.resize(at + 4096, 0);
        let n = stream.read(&mut buf[at..]).await?;
        buf.truncate(at + n);
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

impl Link for StreamLink {
    async fn transact(&mut self, msg: &[u8], txid: TransactionId) -> Result<Vec<u8>, Failure> {
        let exchange = async {
            self.stream
                .write_all(msg)
                .await
                .map_err(|e| io_failure(&e))?;
            let mut frame = Vec::new();
            loop {
                read_frame(&mut self.stream, &mut self.buf, &mut frame)
                    .await
                    .map_err(|e| io_failure(&e))?;
                if let Ok(m) = Message::parse(&frame)
                    && m.transaction() == txid
                    && matches!(m.class(), Class::Success | Class::Error)
                {
                    return Ok(frame);
                }
            }
        };
        tokio::time::timeout(TRANSACTION_TIMEOUT, exchange)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

impl StreamLink {
    /// Splits into halves for the data path; bytes already read stay with the reader.
    fn split(self) -> (Reader, WriteHalf<Box<dyn ByteStream>>) {
        let (read, write) = tokio::io::split(self.stream);
        (
            Reader {
                read,
                buf: self.buf,
            },
            write,
        )
    }
}

struct Reader {
    read: ReadHalf<Box<dyn ByteStream>>,
    buf: Vec<u8>,
}

/// Sends paced, timestamped packets on every stream and reads what comes back until the
/// schedule and the drain time are over; `spec.rate` must be above 0. An error when
/// `spec.size` does not fit one message.
pub async fn run(
    flows: Vec<(StreamLink, Framing)>,
    spec: LoadSpec,
    live: Arc<Live>,
) -> Result<WorkerResult, String> {
    // ChannelData padded to 4 bytes on a stream (RFC 8656 §12.5).
    let flows = flows
        .into_iter()
        .map(|(link, framing)| Ok((link, template(&framing, spec.size, true)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let epoch = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (link, packet)) in flows.into_iter().enumerate() {
        let (reader, writer) = link.split();
        let (live_s, live_r) = (live.clone(), live.clone());
        let index = index as u32;
        tasks.spawn(async move { send(writer, packet, index, spec, epoch, &live_s).await });
        tasks.spawn(async move { receive(reader, spec, epoch, &live_r).await });
    }
    let mut total = WorkerResult::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(r) => {
                total.sent += r.sent;
                total.received += r.received;
                total.malformed += r.malformed;
                total.io_errors += r.io_errors;
                total.latency_us.merge(&r.latency_us);
            }
            Err(_) => total.io_errors += 1,
        }
    }
    Ok(total)
}

/// Sends `packet` (payload at offset `at`) on the schedule, stamped afresh each time.
async fn send(
    mut writer: WriteHalf<Box<dyn ByteStream>>,
    (mut packet, at): (Vec<u8>, usize),
    index: u32,
    spec: LoadSpec,
    epoch: Instant,
    live: &Live,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let period = Duration::from_secs_f64(1.0 / spec.rate.max(1) as f64);
    let mut tick = tokio::time::interval(period);
    // Late ticks are sent at once: the schedule, not loadtest's own delays, sets the
    // offered load (as the UDP path counts what the schedule wanted).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = epoch + spec.duration;
    let mut seq = 0;
    while Instant::now() < end {
        tick.tick().await;
        stamp(
            &mut packet[at..],
            index,
            seq,
            epoch.elapsed().as_nanos() as u64,
        );
        if writer.write_all(&packet).await.is_err() {
            out.io_errors += 1;
            break;
        }
        seq += 1;
        out.sent += 1;
        live.sent.fetch_add(1, Ordering::Relaxed);
    }
    out
}

async fn receive(mut reader: Reader, spec: LoadSpec, epoch: Instant, live: &Live) -> WorkerResult {
    let mut out = WorkerResult::default();
    let deadline = tokio::time::Instant::from_std(epoch + spec.duration + spec.drain);
    let mut frame = Vec::with_capacity(2048);
    loop {
        let read = read_frame(&mut reader.read, &mut reader.buf, &mut frame);
        match tokio::time::timeout_at(deadline, read).await {
            Err(_) => break,
            Ok(Err(_)) => {
                out.io_errors += 1;
                break;
            }
            Ok(Ok(())) => {}
        }
        match turn_payload(&frame).and_then(read_stamp) {
            Some((_, sent_ns)) => {
                let now = epoch.elapsed().as_nanos() as u64;
                out.latency_us.record(now.saturating_sub(sent_ns) / 1000);
                out.received += 1;
                live.received.fetch_add(1, Ordering::Relaxed);
            }
            None => out.malformed += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use turn_proto::codec::attribute::AttrType;
    use turn_proto::codec::{ChannelData, MessageWriter, Method};

    use super::*;

    #[test]
    fn channel_data_is_padded_on_streams() {
        let (channel, at) = template(&Framing::Channel(0x4000), 25, true).unwrap();
        assert_eq!((channel.len(), at), (32, 4));
        assert_eq!(ChannelData::parse(&channel).map(|c| c.data.len()), Some(25));
    }

    #[tokio::test]
    async fn frames_split_across_reads_and_joined_in_one() {
        let mut a = ChannelData::header(0x4000, 5).unwrap().to_vec();
        a.extend_from_slice(b"hello\0\0\0");
        let mut b = ChannelData::header(0x4001, 4).unwrap().to_vec();
        b.extend_from_slice(b"abcd");
        let mut stun = Vec::new();
        MessageWriter::new(
            &mut stun,
            Method::BINDING,
            Class::Success,
            TransactionId([5; 12]),
        )
        .xor_address(AttrType::XOR_MAPPED_ADDRESS, ([127, 0, 0, 1], 9).into());
        let both = [a.clone(), stun.clone(), b.clone()].concat();
        // Delivered in 3-byte pieces.
        let (mut client, mut server) = tokio::io::duplex(3);
        tokio::spawn(async move { server.write_all(&both).await });
        let (mut buf, mut frame) = (Vec::new(), Vec::new());
        read_frame(&mut client, &mut buf, &mut frame).await.unwrap();
        assert_eq!(frame, a);
        read_frame(&mut client, &mut buf, &mut frame).await.unwrap();
        assert_eq!(frame, stun);
        read_frame(&mut client, &mut buf, &mut frame).await.unwrap();
        assert_eq!(frame, b);
        assert!(read_frame(&mut client, &mut buf, &mut frame).await.is_err());
        let mut junk = &[0xC0u8, 0, 0, 4, 1, 2, 3, 4][..];
        assert!(
            read_frame(&mut junk, &mut Vec::new(), &mut frame)
                .await
                .is_err()
        );
    }
}
