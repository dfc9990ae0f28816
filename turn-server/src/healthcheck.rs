//! `turn-server healthcheck`: exit 0 when the server configured by the same options
//! answers a STUN Binding request, for container health checks without curl.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::config::Config;
use turn_proto::codec::{Class, Message, MessageWriter, Method, TransactionId};

/// Tries per probe; each waits `TIMEOUT`.
const TRIES: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(1);

/// Where to probe: the first `listening-ip`, or loopback of its family when listening on
/// every address (or the embedded default). With `listening-device`, loopback does not
/// reach the listeners, so the first address of that interface instead.
pub fn target(config: &Config) -> SocketAddr {
    let ip = match config.listening_ips.first() {
        Some(ip) if !ip.is_unspecified() => *ip,
        first => {
            let ipv6 = first.is_some_and(IpAddr::is_ipv6);
            let loopback = if ipv6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            };
            config
                .listening_device
                .as_deref()
                .and_then(|device| device_address(device, ipv6))
                .unwrap_or(loopback)
        }
    };
    SocketAddr::new(ip, config.listening_port)
}

/// The first address of `family` on the interface `device` (IPv6 link-local ones need a
/// scope and are skipped).
fn device_address(device: &str, ipv6: bool) -> Option<IpAddr> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|interface| interface.interface_name == device)
        .filter_map(|interface| {
            let address = interface.address?;
            match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
                (Some(v4), _) if !ipv6 => Some(IpAddr::V4(v4.ip())),
                (_, Some(v6)) if ipv6 && !v6.ip().is_unicast_link_local() => {
                    Some(IpAddr::V6(v6.ip()))
                }
                _ => None,
            }
        })
        .next()
}

/// Sends Binding requests to `server` until one is answered with a success response.
pub fn probe(server: SocketAddr) -> io::Result<SocketAddr> {
    let any: IpAddr = if server.is_ipv6() {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind((any, 0))?;
    socket.connect(server)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let transaction = TransactionId(rand::random());
    let mut request = Vec::new();
    MessageWriter::new(&mut request, Method::BINDING, Class::Request, transaction).fingerprint();
    let mut buf = [0u8; 1500];
    let mut last_error = io::Error::new(io::ErrorKind::TimedOut, "no answer");
    for _ in 0..TRIES {
        socket.send(&request)?;
        match socket.recv(&mut buf) {
            Ok(len) => match Message::parse(&buf[..len]) {
                Ok(message)
                    if message.transaction() == transaction
                        && message.class() == Class::Success =>
                {
                    return Ok(server);
                }
                _ => last_error = io::Error::new(io::ErrorKind::InvalidData, "unexpected answer"),
            },
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_silence() {
        // A minimal responder standing in for the server: echo a success response.
        let responder = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = responder.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (len, from) = responder.recv_from(&mut buf).unwrap();
            let request = Message::parse(&buf[..len]).unwrap();
            let mut response = Vec::new();
            MessageWriter::new(
                &mut response,
                Method::BINDING,
                Class::Success,
                request.transaction(),
            );
            responder.send_to(&response, from).unwrap();
        });
        assert_eq!(probe(address).unwrap(), address);
        thread.join().unwrap();
        // Nobody listening: an error, not a hang.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(probe(silent.local_addr().unwrap()).is_err());
    }

    #[test]
    fn target_follows_listening_ip() {
        let mut config = Config::default();
        assert_eq!(target(&config), "127.0.0.1:3478".parse().unwrap());
        config.listening_ips = vec!["::".parse().unwrap()];
        config.listening_port = 3479;
        assert_eq!(target(&config), "[::1]:3479".parse().unwrap());
        config.listening_ips = vec!["192.0.2.1".parse().unwrap()];
        assert_eq!(target(&config), "192.0.2.1:3479".parse().unwrap());
        // `listening-device`: an address of it (the netns test covers other interfaces).
        config.listening_ips.clear();
        config.listening_device = Some("nosuchdev9".into());
        assert_eq!(target(&config), "127.0.0.1:3479".parse().unwrap());
        assert_eq!(
            device_address("lo", false),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }
}
