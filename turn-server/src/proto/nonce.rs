//! Stateless nonces (RFC 8489 §9.2): an HMAC of time and client address.
//!
//! The server keeps no state for a client before it authenticates, so spoofed
//! Allocate floods cost nothing but CPU (coturn kept an 18 KB session per spoofed
//! packet until 4.17, #2036).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha1::Sha1;

use rtc_auth::constant_time::ct_eq;

/// Length of a nonce we issue: 16 hex digits of time, 16 of MAC.
pub const NONCE_LEN: usize = 32;

/// Why a nonce is refused (both answer 438 with a fresh nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not one of ours, or for another client address.
    Invalid,
    /// Older than `stale-nonce`.
    Stale,
}

/// Issues and checks nonces with a per-process random key.
#[derive(Debug, Clone)]
pub struct Nonces {
    key: [u8; 32],
    epoch: Instant,
    lifetime: Option<Duration>,
}

impl Nonces {
    /// `lifetime` None means nonces never go stale (`stale-nonce=0`).
    pub fn new(key: [u8; 32], epoch: Instant, lifetime: Option<Duration>) -> Self {
        Self {
            key,
            epoch,
            lifetime,
        }
    }

    /// A nonce for `client`, written as ASCII into a fixed buffer.
    pub fn issue(&self, now: Instant, client: IpAddr) -> [u8; NONCE_LEN] {
        let time = now.saturating_duration_since(self.epoch).as_secs();
        let mut out = [0u8; NONCE_LEN];
        write_hex(time, &mut out[..16]);
        write_hex(self.mac(time, client), &mut out[16..]);
        out
    }

    /// Checks a nonce a client sent back.
    pub fn check(&self, nonce: &[u8], now: Instant, client: IpAddr) -> Result<(), NonceError> {
        if nonce.len() != NONCE_LEN {
            return Err(NonceError::Invalid);
        }
        let time = read_hex(&nonce[..16]).ok_or(NonceError::Invalid)?;
        let mut expected = [0u8; 16];
        write_hex(self.mac(time, client), &mut expected);
        if !ct_eq(&expected, &nonce[16..]) {
            return Err(NonceError::Invalid);
        }
        let current = now.saturating_duration_since(self.epoch).as_secs();
        if time > current {
            return Err(NonceError::Invalid);
        }
        match self.lifetime {
            Some(lifetime) if current - time > lifetime.as_secs() => Err(NonceError::Stale),
            _ => Ok(()),
        }
    }

    fn mac(&self, time: u64, client: IpAddr) -> u64 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha1>>::new_from_slice(&self.key).expect("any key length");
        mac.update(&time.to_be_bytes());
        match client {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let tag = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(first)
    }
}

fn write_hex(value: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((value >> ((15 - i) * 4)) & 0xF) as usize];
    }
}

fn read_hex(text: &[u8]) -> Option<u64> {
    text.iter().try_fold(0u64, |acc, &c| {
        let digit = (c as char).to_digit(16)?;
        Some(acc << 4 | u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn issue_check_and_stale() {
        let epoch = Instant::now();
        let nonces = Nonces::new([7; 32], epoch, Some(Duration::from_secs(600)));
        let nonce = nonces.issue(epoch + Duration::from_secs(5), ip("192.0.2.1"));
        assert!(nonce.iter().all(u8::is_ascii_hexdigit));
        let at = |secs| epoch + Duration::from_secs(secs);
        assert_eq!(nonces.check(&nonce, at(5), ip("192.0.2.1")), Ok(()));
        assert_eq!(nonces.check(&nonce, at(605), ip("192.0.2.1")), Ok(()));
        assert_eq!(
            nonces.check(&nonce, at(606), ip("192.0.2.1")),
            Err(NonceError::Stale)
        );
        assert_eq!(
            nonces.check(&nonce, at(5), ip("192.0.2.2")),
            Err(NonceError::Invalid)
        );
        assert_eq!(
            nonces.check(&nonce, at(4), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
        let mut forged = nonce;
        forged[31] = if forged[31] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            nonces.check(&forged, at(5), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
        assert_eq!(
            nonces.check(b"short", at(5), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
        let other_key = Nonces::new([8; 32], epoch, None);
        assert_eq!(
            other_key.check(&nonce, at(5), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
    }

    #[test]
    fn never_stale_when_lifetime_is_zero() {
        let epoch = Instant::now();
        let nonces = Nonces::new([1; 32], epoch, None);
        let nonce = nonces.issue(epoch, ip("::1"));
        assert_eq!(
            nonces.check(&nonce, epoch + Duration::from_secs(1 << 30), ip("::1")),
            Ok(())
        );
    }
}
