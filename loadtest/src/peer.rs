//! The UDP echo peer that relayed packets are sent to: one socket, batched receive and
//! batched send back to each packet's source (the server's relay address).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::batch::{RecvBatch, SendBatch, grow_buffers};
use crate::datapath::BATCH;

/// A running echo peer.
pub struct EchoPeer {
    /// Where to point permissions and channels.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl EchoPeer {
    /// Binds on `ip` (an ephemeral port) and starts echoing.
    pub fn start(ip: std::net::IpAddr) -> Result<Self, String> {
        let sock =
            UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(|e| format!("peer bind: {e}"))?;
        sock.set_nonblocking(true)
            .map_err(|e| format!("peer socket: {e}"))?;
        grow_buffers(&sock, 8 << 20);
        let addr = sock.local_addr().map_err(|e| format!("peer addr: {e}"))?;
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
        epoll
            .add(sock.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 0))
            .map_err(|e| format!("epoll add: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (s, e, d) = (stop.clone(), echoed.clone(), dropped.clone());
        let handle = std::thread::Builder::new()
            .name("echo-peer".into())
            .spawn(move || echo_loop(&sock, &epoll, &s, &e, &d))
            .map_err(|e| format!("peer thread: {e}"))?;
        Ok(Self {
            addr,
            stop,
            echoed,
            dropped,
            handle: Some(handle),
        })
    }

    /// Stops the peer; returns `(echoed, dropped because the send buffer was full)`.
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        (
            self.echoed.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn echo_loop(
    sock: &UdpSocket,
    epoll: &Epoll,
    stop: &AtomicBool,
    echoed: &AtomicU64,
    dropped: &AtomicU64,
) {
    let mut recv = RecvBatch::new(BATCH);
    let mut send = SendBatch::new(BATCH);
    let mut events = [EpollEvent::empty(); 1];
    let mut msgs: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut dests: Vec<Option<SocketAddr>> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        if epoll
            .wait(&mut events, EpollTimeout::from(50u8))
            .unwrap_or(0)
            == 0
        {
            continue;
        }
        // Bounded drain per wakeup so the stop flag is seen under any load.
        for _ in 0..64 {
            let n = match recv.recv(sock) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            msgs.clear();
            dests.clear();
            for i in 0..n {
                if let Some((data, Some(from))) = recv.get(i) {
                    msgs.push(data.to_vec());
                    dests.push(Some(from));
                }
            }
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let mut done = 0;
            // A full send buffer drops the rest of the batch, as a real peer would.
            while done < refs.len() {
                match send.send(sock, &refs[done..], &dests[done..]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => done += k,
                }
            }
            echoed.fetch_add(done as u64, Ordering::Relaxed);
            dropped.fetch_add((refs.len() - done) as u64, Ordering::Relaxed);
            if n < BATCH {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_to_the_sender() {
        let peer = EchoPeer::start("127.0.0.1".parse().unwrap()).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        c.send_to(b"ping", peer.addr).unwrap();
        let mut buf = [0; 16];
        let (n, from) = c.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], peer.addr));
        assert_eq!(peer.stop(), (1, 0));
    }
}
