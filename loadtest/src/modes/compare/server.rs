//! The servers under test, started as child processes with equivalent configurations.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::config::{REALM, SECRET};
use crate::stun::{Builder, Class, Message, method};

/// A server process under test.
pub(super) struct ServerProc {
    pub(super) name: &'static str,
    pub(super) child: Child,
    pub(super) addr: SocketAddr,
    pub(super) bin: String,
    pub(super) args: Vec<String>,
    pub(super) log: PathBuf,
    pub(super) restarts: u32,
}

impl ServerProc {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(bin: &str, args: &[String], log: &Path) -> Result<Child, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("log {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| format!("log: {e}"))?;
        Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {bin}: {e}"))
    }

    pub(super) fn start(
        name: &'static str,
        bin: &str,
        port: u16,
        relay: (u16, u16),
        extra: &[&str],
        logdir: &Path,
    ) -> Result<Self, String> {
        let mut args: Vec<String> = vec![
            "-n".into(),
            "--listening-ip=127.0.0.1".into(),
            "--relay-ip=127.0.0.1".into(),
            format!("--listening-port={port}"),
            format!("--min-port={}", relay.0),
            format!("--max-port={}", relay.1),
            format!("--realm={REALM}"),
            "--use-auth-secret".into(),
            format!("--static-auth-secret={SECRET}"),
            "--allow-loopback-peers".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = logdir.join(format!("{name}.log"));
        let child = Self::spawn(bin, &args, &log)?;
        let mut p = Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            bin: bin.to_string(),
            args,
            log,
            restarts: 0,
        };
        p.wait_ready()?;
        Ok(p)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_binding(self.addr) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited at startup ({status}); see {}",
                    self.name,
                    self.log.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} does not answer STUN on {}; see {}",
                    self.name,
                    self.addr,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Restarts the server if it died; returns a note saying so.
    pub(super) fn ensure_alive(&mut self, after: &str) -> Result<Option<String>, String> {
        match self.child.try_wait() {
            Ok(None) => Ok(None),
            Ok(Some(status)) => {
                self.restarts += 1;
                self.child = Self::spawn(&self.bin, &self.args, &self.log)?;
                self.wait_ready()?;
                Ok(Some(format!(
                    "{} exited ({status}) after {after}; restarted (log: {})",
                    self.name,
                    self.log.display()
                )))
            }
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a STUN Binding request to `addr` gets a success response within 200 ms.
pub(super) fn answers_binding(addr: SocketAddr) -> bool {
    let Ok(sock) = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)) else {
        return false;
    };
    if sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return false;
    }
    let req = Builder::new(method::BINDING, Class::Request, crate::client::new_txid()).finish();
    if sock.send_to(&req, addr).is_err() {
        return false;
    }
    let mut buf = [0; 1500];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Message::parse(&buf[..n]).is_ok_and(|m| m.class == Class::Success),
        Err(_) => false,
    }
}
