//! The packet-sending side of a run: each worker thread owns some client flows, sends
//! timestamped packets on a fixed schedule (or flat out) with `sendmmsg`, and drains
//! replies with `recvmmsg` through epoll, recording round-trip times.
//!
//! Payload layout (the first 24 bytes; the rest is zero): magic `LTv1`, sender index
//! (u32), sequence (u64), send time in ns since the run's epoch (u64), all big-endian.

use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use turn_proto::codec::ChannelData;

use crate::batch::{RecvBatch, SendBatch};
use crate::client::data_indication_payload;
use crate::stats::Histogram;

/// Bytes of loadtest's own header inside each payload; `--size` must be at least this.
pub const PAYLOAD_HEADER: usize = 24;
const MAGIC: &[u8; 4] = b"LTv1";
/// Datagrams per `sendmmsg`/`recvmmsg` call.
pub const BATCH: usize = 32;
/// Receive batches drained per readable socket before moving on (fairness between flows).
const MAX_DRAIN_ROUNDS: usize = 8;

/// How a flow wraps its payload on the wire.
#[derive(Debug, Clone)]
pub enum Framing {
    /// TURN ChannelData on this channel.
    Channel(u16),
    /// TURN Send indication; holds the STUN header and attributes up to the DATA value.
    Send(Vec<u8>),
    /// No TURN: the bare forwarder baseline.
    Raw,
}

/// One client's data-plane socket, already allocated and bound.
#[derive(Debug)]
pub struct Flow {
    /// Non-blocking socket connected to the server.
    pub sock: UdpSocket,
    /// Index carried in every payload, so receivers know who sent it.
    pub index: u32,
    /// Wire format.
    pub framing: Framing,
}

/// What every worker sends.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// Packets per second per flow; 0 sends flat out.
    pub rate: u64,
    /// Payload bytes per packet.
    pub size: usize,
    /// Sending time.
    pub duration: Duration,
    /// Time to keep receiving after sending stops.
    pub drain: Duration,
    /// Flat out only: most packets in flight per worker (0: no limit). Without a window an
    /// open-loop sender outruns its own receive path and measures loadtest, not the server.
    pub inflight: u64,
}

/// Packets in flight that get no reply for this long are written off, so lost packets
/// cannot stall a windowed flat-out sender.
const STALL: Duration = Duration::from_millis(50);

/// Counters the progress line reads while workers run.
#[derive(Debug, Default)]
pub struct Live {
    /// Packets handed to the kernel.
    pub sent: AtomicU64,
    /// Valid loadtest packets received back.
    pub received: AtomicU64,
}

/// One worker's totals.
#[derive(Debug, Default, Clone)]
pub struct WorkerResult {
    /// Packets sent.
    pub sent: u64,
    /// Packets received (with a valid loadtest header).
    pub received: u64,
    /// Packets the schedule wanted but the socket buffer refused.
    pub send_blocked: u64,
    /// Datagrams that were not loadtest payloads in the expected framing.
    pub malformed: u64,
    /// Socket errors (e.g. ICMP port unreachable surfacing as ECONNREFUSED).
    pub io_errors: u64,
    /// Round-trip (or one-way in client-to-client mode) times in µs.
    pub latency_us: Histogram,
}

/// Writes the payload header into `buf`.
pub fn stamp(buf: &mut [u8], index: u32, seq: u64, now_ns: u64) {
    buf[..4].copy_from_slice(MAGIC);
    buf[4..8].copy_from_slice(&index.to_be_bytes());
    buf[8..16].copy_from_slice(&seq.to_be_bytes());
    buf[16..24].copy_from_slice(&now_ns.to_be_bytes());
}

/// Reads `(sender index, send time ns)` from a payload.
pub fn read_stamp(payload: &[u8]) -> Option<(u32, u64)> {
    if payload.len() < PAYLOAD_HEADER || &payload[..4] != MAGIC {
        return None;
    }
    let index = u32::from_be_bytes(payload[4..8].try_into().ok()?);
    let ts = u64::from_be_bytes(payload[16..24].try_into().ok()?);
    Some((index, ts))
}

/// The bytes of one packet for `framing` and the offset of its payload; `pad` pads
/// ChannelData to 4 bytes, as stream transports need (RFC 8656 §12.5). An error when
/// `size` does not fit one message.
pub fn template(framing: &Framing, size: usize, pad: bool) -> Result<(Vec<u8>, usize), String> {
    let too_long = || format!("a {size}-byte payload does not fit one TURN message");
    match framing {
        Framing::Channel(ch) => {
            let mut t = Vec::new();
            if !ChannelData::write(*ch, &vec![0; size], pad, &mut t) {
                return Err(too_long());
            }
            Ok((t, 4))
        }
        Framing::Send(prefix) => {
            let mut t = prefix.clone();
            let at = t.len();
            t.resize(at + size.next_multiple_of(4), 0);
            Ok((t, at))
        }
        Framing::Raw => Ok((vec![0; size], 0)),
    }
}

/// The loadtest payload of a received ChannelData message or Data indication.
pub fn turn_payload(data: &[u8]) -> Option<&[u8]> {
    ChannelData::parse(data)
        .map(|c| c.data)
        .or_else(|| data_indication_payload(data))
}

fn payload_of<'a>(framing: &Framing, data: &'a [u8]) -> Option<&'a [u8]> {
    match framing {
        Framing::Raw => Some(data),
        _ => turn_payload(data),
    }
}

/// Runs one worker until its schedule and drain time are over or `stop` is set.
pub fn run_worker(
    flows: Vec<Flow>,
    spec: LoadSpec,
    epoch: Instant,
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerResult, String> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    for (i, f) in flows.iter().enumerate() {
        epoll
            .add(
                f.sock.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, i as u64),
            )
            .map_err(|e| format!("epoll add: {e}"))?;
    }
    let templates = flows
        .iter()
        .map(|f| template(&f.framing, spec.size, false))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scratch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut scheduled = vec![0u64; flows.len()];
    let mut seq = vec![0u64; flows.len()];
    let mut out = WorkerResult::default();
    let mut send = SendBatch::new(BATCH);
    let mut recv = RecvBatch::new(BATCH);
    let mut events = vec![EpollEvent::empty(); 64];
    let no_dest = [None; BATCH];
    let mut written_off = 0u64;
    let mut last_progress = (Instant::now(), 0u64);
    let start = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let t = start.elapsed();
        if t >= spec.duration + spec.drain {
            break;
        }
        let sending = t < spec.duration;
        if sending {
            if out.received != last_progress.1 {
                last_progress = (Instant::now(), out.received);
            }
            for (fi, flow) in flows.iter().enumerate() {
                let due = if spec.rate > 0 {
                    let target = (t.as_nanos() * u128::from(spec.rate) / 1_000_000_000) as u64;
                    target.saturating_sub(scheduled[fi])
                } else if spec.inflight > 0 {
                    let in_flight = out.sent.saturating_sub(out.received + written_off);
                    if in_flight >= spec.inflight && last_progress.0.elapsed() > STALL {
                        written_off += in_flight;
                        last_progress.0 = Instant::now();
                    }
                    let in_flight = out.sent.saturating_sub(out.received + written_off);
                    spec.inflight.saturating_sub(in_flight).min(BATCH as u64)
                } else {
                    BATCH as u64
                };
                let due = due.min(BATCH as u64) as usize;
                if due == 0 {
                    continue;
                }
                let (tpl, at) = &templates[fi];
                let now_ns = epoch.elapsed().as_nanos() as u64;
                scratch.resize_with(due, Vec::new);
                for (k, buf) in scratch.iter_mut().enumerate() {
                    buf.clear();
                    buf.extend_from_slice(tpl);
                    stamp(&mut buf[*at..], flow.index, seq[fi] + k as u64, now_ns);
                }
                let refs: Vec<&[u8]> = scratch.iter().map(Vec::as_slice).collect();
                let n = match send.send(&flow.sock, &refs, &no_dest[..due]) {
                    Ok(n) => n,
                    Err(_) => {
                        out.io_errors += 1;
                        0
                    }
                };
                seq[fi] += n as u64;
                out.sent += n as u64;
                live.sent.fetch_add(n as u64, Ordering::Relaxed);
                if spec.rate > 0 {
                    // Keep the schedule: what the socket refused is counted, not resent.
                    scheduled[fi] += due as u64;
                    out.send_blocked += (due - n) as u64;
                }
            }
        }
        let window_open = spec.inflight == 0
            || out.sent.saturating_sub(out.received + written_off) < spec.inflight;
        let timeout = if sending && spec.rate == 0 && window_open {
            EpollTimeout::ZERO
        } else {
            EpollTimeout::from(1u8)
        };
        let n = match epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(format!("epoll wait: {e}")),
        };
        for ev in &events[..n] {
            let Some(flow) = flows.get(ev.data() as usize) else {
                continue;
            };
            for _ in 0..MAX_DRAIN_ROUNDS {
                let got = match recv.recv(&flow.sock) {
                    Ok(0) => break,
                    Ok(g) => g,
                    Err(_) => {
                        out.io_errors += 1;
                        break;
                    }
                };
                let now_ns = epoch.elapsed().as_nanos() as u64;
                let mut valid = 0;
                for i in 0..got {
                    let Some((data, _)) = recv.get(i) else {
                        continue;
                    };
                    match payload_of(&flow.framing, data).and_then(read_stamp) {
                        Some((_, ts)) => {
                            valid += 1;
                            out.latency_us.record(now_ns.saturating_sub(ts) / 1000);
                        }
                        None => out.malformed += 1,
                    }
                }
                out.received += valid;
                live.received.fetch_add(valid, Ordering::Relaxed);
                if got < BATCH {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// Splits flows over `threads` workers, runs them and sums the results.
pub fn run_workers(
    flows: Vec<Flow>,
    threads: usize,
    spec: LoadSpec,
    live: Arc<Live>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerResult, String> {
    let threads = threads.clamp(1, flows.len().max(1));
    let mut groups: Vec<Vec<Flow>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, f) in flows.into_iter().enumerate() {
        groups[i % threads].push(f);
    }
    let epoch = Instant::now();
    let handles: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let live = live.clone();
            let stop = stop.clone();
            std::thread::spawn(move || run_worker(g, spec, epoch, live, stop))
        })
        .collect();
    let mut total = WorkerResult::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| "a load worker thread panicked".to_string())??;
        total.sent += r.sent;
        total.received += r.received;
        total.send_blocked += r.send_blocked;
        total.malformed += r.malformed;
        total.io_errors += r.io_errors;
        total.latency_us.merge(&r.latency_us);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use turn_proto::codec::attribute::AttrType;
    use turn_proto::codec::{Class, MessageWriter, Method, TransactionId};

    use super::*;

    #[test]
    fn stamps_round_trip_through_each_framing() {
        let peer = "127.0.0.1:9".parse().unwrap();
        for framing in [
            Framing::Channel(0x4000),
            Framing::Send(crate::client::send_indication_prefix(peer, 61)),
            Framing::Raw,
        ] {
            let (mut t, at) = template(&framing, 61, false).unwrap();
            stamp(&mut t[at..], 7, 9, 123_456);
            // What comes back from the server: ChannelData stays, Send becomes Data.
            let echoed = match &framing {
                Framing::Send(_) => {
                    let mut data = Vec::new();
                    MessageWriter::new(
                        &mut data,
                        Method::DATA,
                        Class::Indication,
                        TransactionId([0; 12]),
                    )
                    .attr(AttrType::DATA, &t[at..at + 61]);
                    data
                }
                _ => t.clone(),
            };
            let p = payload_of(&framing, &echoed).unwrap();
            assert_eq!(read_stamp(p), Some((7, 123_456)));
        }
        assert_eq!(read_stamp(b"LTv1short"), None);
        assert_eq!(read_stamp(&[0; 30]), None);
    }
}
