//! SO_BINDTODEVICE, for `listening-device` and `relay-device`: a socket bound to an
//! interface sends and receives through that interface only, whatever the routes say.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::BindToDevice;
use socket2::{Domain, Protocol, Socket, Type};

/// Binds `socket` to the network interface `device` when one is set (before it is bound
/// to an address). The error names the device and, for EPERM, the privilege.
pub fn bind_to_device(socket: &impl AsFd, device: Option<&str>) -> io::Result<()> {
    let Some(device) = device else {
        return Ok(());
    };
    setsockopt(socket, BindToDevice, &OsString::from(device)).map_err(|errno| {
        // Linux before 5.7 lets only CAP_NET_RAW bind a socket to a device.
        let hint = if errno == Errno::EPERM {
            " (this kernel allows it only to root or with CAP_NET_RAW)"
        } else {
            ""
        };
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("cannot bind a socket to network interface {device:?}: {errno}{hint}"),
        )
    })
}

/// Binds a throwaway UDP socket to `device`: relay sockets are bound per allocation,
/// so a refusal must show at start-up, not as a 508 to every Allocate.
pub fn probe(device: &str) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    bind_to_device(&socket, Some(device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_device_is_named_in_the_error() {
        let error = probe("nosuchdev0").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("network interface \"nosuchdev0\""),
            "{error}"
        );
    }

    #[test]
    fn no_device_leaves_the_socket_alone() {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        bind_to_device(&socket, None).unwrap();
        let bound = nix::sys::socket::getsockopt(&socket, BindToDevice).unwrap();
        assert!(bound.is_empty(), "{bound:?}");
    }

    /// Loopback exists everywhere; Linux 5.7+ lets anyone bind an unbound socket to it.
    #[test]
    fn a_socket_is_bound_to_the_device() {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        match bind_to_device(&socket, Some("lo")) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return,
            Err(error) => panic!("{error}"),
        }
        let bound = nix::sys::socket::getsockopt(&socket, BindToDevice).unwrap();
        assert_eq!(bound, "lo");
    }
}
