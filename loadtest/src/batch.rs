//! Batched UDP I/O (`recvmmsg`/`sendmmsg` through nix's safe wrappers) so loadtest spends
//! one system call per batch rather than per packet and does not become the bottleneck.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrLike, SockaddrStorage, recvmmsg, sendmmsg,
    setsockopt, sockopt,
};

/// Largest datagram loadtest sends or reads; `--size` is capped below it.
pub const MAX_DATAGRAM: usize = 2048;

/// Preallocated buffers for one `recvmmsg` call.
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    meta: Vec<(usize, Option<SocketAddr>)>,
}

impl RecvBatch {
    /// Room for `n` datagrams of up to [`MAX_DATAGRAM`] bytes.
    pub fn new(n: usize) -> Self {
        Self {
            bufs: vec![vec![0; MAX_DATAGRAM]; n],
            headers: MultiHeaders::preallocate(n, None),
            meta: Vec::with_capacity(n),
        }
    }

    /// Receives up to the batch size without blocking; `Ok(0)` when nothing is queued.
    pub fn recv(&mut self, sock: &impl AsRawFd) -> io::Result<usize> {
        let Self {
            bufs,
            headers,
            meta,
        } = self;
        meta.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        match recvmmsg(
            sock.as_raw_fd(),
            headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(results) => {
                for r in results {
                    meta.push((r.bytes, r.address.as_ref().and_then(to_std)));
                }
                Ok(meta.len())
            }
            Err(nix::errno::Errno::EAGAIN) => Ok(0),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// The `i`-th datagram of the last call and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        let (len, addr) = *self.meta.get(i)?;
        let buf = self.bufs.get(i)?;
        Some((&buf[..len.min(buf.len())], addr))
    }
}

/// Preallocated headers for one `sendmmsg` call.
pub struct SendBatch {
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
    cap: usize,
}

impl SendBatch {
    /// Room for `n` datagrams per call.
    pub fn new(n: usize) -> Self {
        Self {
            headers: MultiHeaders::preallocate(n, None),
            addrs: Vec::with_capacity(n),
            cap: n,
        }
    }

    /// Most datagrams one call sends.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Sends `msgs` (to `dest`, or to the connected peer when `None`) without blocking.
    /// Returns how many went out; `Ok(0)` when the socket buffer is full.
    pub fn send(
        &mut self,
        sock: &impl AsRawFd,
        msgs: &[&[u8]],
        dest: &[Option<SocketAddr>],
    ) -> io::Result<usize> {
        let n = msgs.len().min(self.cap);
        if n == 0 {
            return Ok(0);
        }
        self.addrs.clear();
        for i in 0..n {
            self.addrs
                .push(dest.get(i).copied().flatten().map(SockaddrStorage::from));
        }
        let iovs: Vec<[IoSlice<'_>; 1]> = msgs[..n].iter().map(|m| [IoSlice::new(m)]).collect();
        let cmsgs: [ControlMessage<'_>; 0] = [];
        match sendmmsg(
            sock.as_raw_fd(),
            &mut self.headers,
            iovs.iter(),
            &self.addrs,
            cmsgs,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(r) => Ok(r.count()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS) => Ok(0),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
        .filter(|_| addr.family().is_some())
}

/// Asks for large socket buffers so bursts are not dropped inside loadtest itself.
/// Tries the privileged variant first (ignores `rmem_max`), then the ordinary one.
pub fn grow_buffers(sock: &impl std::os::fd::AsFd, bytes: usize) {
    if setsockopt(sock, sockopt::RcvBufForce, &bytes).is_err() {
        let _ = setsockopt(sock, sockopt::RcvBuf, &bytes);
    }
    if setsockopt(sock, sockopt::SndBufForce, &bytes).is_err() {
        let _ = setsockopt(sock, sockopt::SndBuf, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn batch_round_trip() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        let mut send = SendBatch::new(8);
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        assert_eq!(send.send(&a, &refs, &[Some(to); 5]).unwrap(), 5);
        let mut recv = RecvBatch::new(8);
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = recv.recv(&b).unwrap();
            for i in 0..n {
                let (data, from) = recv.get(i).unwrap();
                assert_eq!(from, Some(a.local_addr().unwrap()));
                got.push(data.to_vec());
            }
            if got.len() == 5 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, msgs);
        assert_eq!(recv.recv(&b).unwrap(), 0);
    }
}
