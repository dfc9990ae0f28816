//! The load-test modes and what they share: target checks and resource limits.

pub mod alloc;
pub mod compare;
pub mod forward;
pub mod jwt;
pub mod turn;

use std::net::SocketAddr;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Parses the target and refuses non-loopback ones unless `allow_remote`: a load test
/// pointed at someone else's server by mistake is a denial-of-service.
pub fn target(text: &str, allow_remote: bool) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("--server {text:?}: expected IP:PORT (e.g. 127.0.0.1:3478)"))?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "--server {addr} is not a loopback address; pass --allow-remote to load a remote server"
        ));
    }
    Ok(addr)
}

/// Raises the open-file soft limit to the hard limit and checks `needed` fits.
pub fn ensure_fds(needed: u64) -> Result<(), String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    if soft < hard {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    if needed > soft {
        return Err(format!(
            "need about {needed} open files but the limit is {soft}; raise it (ulimit -n)"
        ));
    }
    Ok(())
}

/// Reads `--transport` and refuses what this build cannot do yet.
pub fn udp_only(transport: &str) -> Result<(), String> {
    match transport {
        "udp" => Ok(()),
        "tcp" | "tls" => Err(format!(
            "--transport {transport} is not supported by this loadtest build yet (UDP only)"
        )),
        other => Err(format!("--transport {other:?}: expected udp, tcp or tls")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_loopback() {
        assert!(target("127.0.0.1:3478", false).is_ok());
        assert!(target("[::1]:3478", false).is_ok());
        assert!(
            target("192.0.2.1:3478", false)
                .unwrap_err()
                .contains("--allow-remote")
        );
        assert!(target("192.0.2.1:3478", true).is_ok());
        assert!(target("localhost", false).is_err());
        assert!(udp_only("udp").is_ok());
        assert!(udp_only("tcp").unwrap_err().contains("not supported"));
        assert!(udp_only("sctp").is_err());
        assert!(ensure_fds(16).is_ok());
        assert!(ensure_fds(u64::MAX).is_err());
    }
}
