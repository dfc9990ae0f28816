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

/// RFC 8489 §9.2: a nonce starting with this "nonce cookie" and 4 base64 characters of
/// security feature bits tells RFC 8489 clients what the server supports; the bits are
/// part of the nonce the client echoes, so tampering with them is detected.
pub const NONCE_COOKIE: &[u8; 9] = b"obMatJos2";

/// Feature bits "password algorithms" (bit 0, counted from the least significant bit
/// as in RFC 8489's example nonce), base64 of 0x000001.
pub const FEATURES_PASSWORD_ALGORITHMS: &[u8; 4] = b"AAAB";

/// Feature bits "password algorithms" and "username anonymity" (USERHASH), 0x000003.
pub const FEATURES_WITH_USERHASH: &[u8; 4] = b"AAAD";

const PREFIX_LEN: usize = 13;

/// Length of a nonce we issue: cookie and features, 16 hex digits of time, 16 of MAC.
pub const NONCE_LEN: usize = PREFIX_LEN + 32;

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
    prefix: [u8; PREFIX_LEN],
    epoch: Instant,
    lifetime: Option<Duration>,
}

impl Nonces {
    /// `lifetime` None means nonces never go stale (`stale-nonce=0`); `features` is one
    /// of the `FEATURES_*` values.
    pub fn new(
        key: [u8; 32],
        epoch: Instant,
        lifetime: Option<Duration>,
        features: &[u8; 4],
    ) -> Self {
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..9].copy_from_slice(NONCE_COOKIE);
        prefix[9..].copy_from_slice(features);
        Self {
            key,
            prefix,
            epoch,
            lifetime,
        }
    }

    /// A nonce for `client`, written as ASCII into a fixed buffer.
    pub fn issue(&self, now: Instant, client: IpAddr) -> [u8; NONCE_LEN] {
        let time = now.saturating_duration_since(self.epoch).as_secs();
        let mut out = [0u8; NONCE_LEN];
        out[..PREFIX_LEN].copy_from_slice(&self.prefix);
        write_hex(time, &mut out[PREFIX_LEN..PREFIX_LEN + 16]);
        write_hex(self.mac(time, client), &mut out[PREFIX_LEN + 16..]);
        out
    }

    /// Checks a nonce a client sent back.
    pub fn check(&self, nonce: &[u8], now: Instant, client: IpAddr) -> Result<(), NonceError> {
        if nonce.len() != NONCE_LEN || nonce[..PREFIX_LEN] != self.prefix {
            return Err(NonceError::Invalid);
        }
        let nonce = &nonce[PREFIX_LEN..];
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
        let nonces = Nonces::new(
            [7; 32],
            epoch,
            Some(Duration::from_secs(600)),
            FEATURES_PASSWORD_ALGORITHMS,
        );
        let nonce = nonces.issue(epoch + Duration::from_secs(5), ip("192.0.2.1"));
        assert!(nonce.starts_with(b"obMatJos2AAAB"));
        assert!(nonce[13..].iter().all(u8::is_ascii_hexdigit));
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
        let other_key = Nonces::new([8; 32], epoch, None, FEATURES_PASSWORD_ALGORITHMS);
        assert_eq!(
            other_key.check(&nonce, at(5), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
        // Feature bits changed in transit (a bid-down attempt): refused.
        let mut downgraded = nonce;
        downgraded[9..13].copy_from_slice(b"AAAA");
        assert_eq!(
            nonces.check(&downgraded, at(5), ip("192.0.2.1")),
            Err(NonceError::Invalid)
        );
    }

    #[test]
    fn never_stale_when_lifetime_is_zero() {
        let epoch = Instant::now();
        let nonces = Nonces::new([1; 32], epoch, None, FEATURES_WITH_USERHASH);
        let nonce = nonces.issue(epoch, ip("::1"));
        assert_eq!(
            nonces.check(&nonce, epoch + Duration::from_secs(1 << 30), ip("::1")),
            Ok(())
        );
    }
}
