//! XOR-encoded transport addresses (RFC 8489 §14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::message::TransactionId;
use super::{MAGIC_COOKIE, MAGIC_COOKIE_HIGH};

const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// Why an address attribute is unusable (the request gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Wrong length for its family, or an unknown family.
    #[error("malformed address attribute")]
    Malformed,
}

/// Decodes an XOR address attribute value.
pub fn decode_xor(value: &[u8], transaction: &TransactionId) -> Result<SocketAddr, AddressError> {
    if value.len() < 4 {
        return Err(AddressError::Malformed);
    }
    let port = u16::from_be_bytes([value[2], value[3]]) ^ MAGIC_COOKIE_HIGH;
    let ip = match (value[1], value.len()) {
        (FAMILY_IPV4, 8) => {
            let raw = u32::from_be_bytes([value[4], value[5], value[6], value[7]]);
            IpAddr::V4(Ipv4Addr::from(raw ^ MAGIC_COOKIE))
        }
        (FAMILY_IPV6, 20) => {
            let mut raw = [0u8; 16];
            raw.copy_from_slice(&value[4..20]);
            for (byte, mask) in raw.iter_mut().zip(xor_mask(transaction)) {
                *byte ^= mask;
            }
            IpAddr::V6(Ipv6Addr::from(raw))
        }
        _ => return Err(AddressError::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Encodes `address` into `out`; returns the value length (8 or 20).
pub fn encode_xor(address: SocketAddr, transaction: &TransactionId, out: &mut [u8; 20]) -> usize {
    out[0] = 0;
    out[2..4].copy_from_slice(&(address.port() ^ MAGIC_COOKIE_HIGH).to_be_bytes());
    match address.ip() {
        IpAddr::V4(v4) => {
            out[1] = FAMILY_IPV4;
            out[4..8].copy_from_slice(&(u32::from(v4) ^ MAGIC_COOKIE).to_be_bytes());
            8
        }
        IpAddr::V6(v6) => {
            out[1] = FAMILY_IPV6;
            for ((dst, byte), mask) in out[4..20]
                .iter_mut()
                .zip(v6.octets())
                .zip(xor_mask(transaction))
            {
                *dst = byte ^ mask;
            }
            20
        }
    }
}

/// Encodes `address` without XOR (MAPPED-ADDRESS layout, used by ALTERNATE-SERVER);
/// returns the value length.
pub fn encode_plain(address: SocketAddr, out: &mut [u8; 20]) -> usize {
    out[0] = 0;
    out[2..4].copy_from_slice(&address.port().to_be_bytes());
    match address.ip() {
        IpAddr::V4(v4) => {
            out[1] = FAMILY_IPV4;
            out[4..8].copy_from_slice(&v4.octets());
            8
        }
        IpAddr::V6(v6) => {
            out[1] = FAMILY_IPV6;
            out[4..20].copy_from_slice(&v6.octets());
            20
        }
    }
}

fn xor_mask(transaction: &TransactionId) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    mask[4..].copy_from_slice(&transaction.0);
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        let tid = TransactionId([7; 12]);
        for text in [
            "192.0.2.1:32853",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            "0.0.0.0:0",
        ] {
            let address: SocketAddr = text.parse().unwrap();
            let mut out = [0u8; 20];
            let len = encode_xor(address, &tid, &mut out);
            assert_eq!(decode_xor(&out[..len], &tid), Ok(address));
        }
    }

    #[test]
    fn malformed() {
        let tid = TransactionId([0; 12]);
        assert!(decode_xor(&[], &tid).is_err());
        assert!(decode_xor(&[0, 1, 0, 0, 1, 2, 3], &tid).is_err());
        assert!(decode_xor(&[0, 2, 0, 0, 1, 2, 3, 4], &tid).is_err());
        assert!(decode_xor(&[0, 3, 0, 0, 1, 2, 3, 4], &tid).is_err());
    }
}
