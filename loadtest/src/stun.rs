//! A small sans-IO STUN/TURN codec: only what a load generator sends and reads.
//!
//! Kept independent of turn-server's own codec on purpose, so a bug there cannot hide
//! itself by being mirrored here. Decoding never panics: bad input is an error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// RFC 5389 magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;

/// TURN methods (RFC 5766 §13).
pub mod method {
    /// Binding (STUN).
    pub const BINDING: u16 = 0x001;
    /// Allocate.
    pub const ALLOCATE: u16 = 0x003;
    /// Refresh.
    pub const REFRESH: u16 = 0x004;
    /// Send indication.
    pub const SEND: u16 = 0x006;
    /// Data indication.
    pub const DATA: u16 = 0x007;
    /// CreatePermission.
    pub const CREATE_PERMISSION: u16 = 0x008;
    /// ChannelBind.
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types used here.
pub mod attr {
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// CHANNEL-NUMBER.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME.
    pub const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS.
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA.
    pub const DATA: u16 = 0x0013;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS.
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.1).
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// REQUESTED-TRANSPORT.
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
}

/// The four STUN message classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Request.
    Request,
    /// Indication.
    Indication,
    /// Success response.
    Success,
    /// Error response.
    Error,
}

/// Why a datagram is not a usable STUN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header or declared length.
    Truncated,
    /// Not STUN: wrong leading bits, cookie or length alignment.
    NotStun,
    /// An attribute runs past the end of the message.
    BadAttribute,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated STUN message",
            Self::NotStun => "not a STUN message",
            Self::BadAttribute => "malformed STUN attribute",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Encodes method and class into the 14-bit message type.
pub fn message_type(method: u16, class: Class) -> u16 {
    let class_bits = match class {
        Class::Request => 0x000,
        Class::Indication => 0x010,
        Class::Success => 0x100,
        Class::Error => 0x110,
    };
    ((method & 0xF80) << 2) | ((method & 0x070) << 1) | (method & 0x00F) | class_bits
}

fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

/// Builds one STUN message in place.
#[derive(Debug, Clone)]
pub struct Builder {
    buf: Vec<u8>,
    txid: [u8; 12],
}

impl Builder {
    /// Starts a message with the given method, class and transaction id.
    pub fn new(method: u16, class: Class, txid: [u8; 12]) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&txid);
        Self { buf, txid }
    }

    /// Appends an attribute, padded to four bytes.
    ///
    /// Values longer than 65535 bytes cannot be expressed; callers only pass short ones,
    /// and a longer one is cut rather than corrupting the framing.
    pub fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let value = &value[..value.len().min(usize::from(u16::MAX))];
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let pad = (4 - value.len() % 4) % 4;
        self.buf.extend_from_slice(&[0; 3][..pad]);
        self
    }

    /// Appends a 32-bit attribute.
    pub fn attr_u32(self, kind: u16, value: u32) -> Self {
        self.attr(kind, &value.to_be_bytes())
    }

    /// Appends an XOR-encoded address attribute.
    pub fn xor_addr(self, kind: u16, addr: SocketAddr) -> Self {
        let value = encode_xor_addr(addr, &self.txid);
        self.attr(kind, &value)
    }

    fn set_len(&mut self, body_len: usize) {
        let len = (body_len as u16).to_be_bytes();
        self.buf[2] = len[0];
        self.buf[3] = len[1];
    }

    /// Finishes without MESSAGE-INTEGRITY.
    pub fn finish(mut self) -> Vec<u8> {
        let body = self.buf.len() - HEADER_LEN;
        self.set_len(body);
        self.buf
    }

    /// Finishes with MESSAGE-INTEGRITY keyed by the long-term key.
    pub fn finish_with_integrity(mut self, key: &[u8]) -> Vec<u8> {
        let body = self.buf.len() - HEADER_LEN + 24;
        self.set_len(body);
        let mac = hmac_sha1(key, &self.buf);
        self.buf
            .extend_from_slice(&attr::MESSAGE_INTEGRITY.to_be_bytes());
        self.buf.extend_from_slice(&20u16.to_be_bytes());
        self.buf.extend_from_slice(&mac);
        self.buf
    }
}

/// A parsed STUN message borrowing the datagram.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Method number.
    pub method: u16,
    /// Message class.
    pub class: Class,
    /// Transaction id.
    pub txid: [u8; 12],
    raw: &'a [u8],
}

/// Quick test for the STUN leading bits and cookie, before a full parse.
pub fn looks_like_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] & 0xC0 == 0 && buf[4..8] == MAGIC_COOKIE.to_be_bytes()
}

impl<'a> Message<'a> {
    /// Parses and checks the header and attribute framing.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        if !looks_like_stun(buf) {
            return Err(DecodeError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len % 4 != 0 {
            return Err(DecodeError::NotStun);
        }
        if buf.len() < HEADER_LEN + len {
            return Err(DecodeError::Truncated);
        }
        let raw = &buf[..HEADER_LEN + len];
        let (method, class) = split_type(u16::from_be_bytes([buf[0], buf[1]]));
        let mut txid = [0; 12];
        txid.copy_from_slice(&buf[8..20]);
        let msg = Self {
            method,
            class,
            txid,
            raw,
        };
        for item in msg.attrs() {
            item?;
        }
        Ok(msg)
    }

    /// Iterates over `(type, value, offset of the attribute header)`.
    fn attrs(&self) -> impl Iterator<Item = Result<(u16, &'a [u8], usize), DecodeError>> + 'a {
        let raw = self.raw;
        let mut pos = HEADER_LEN;
        std::iter::from_fn(move || {
            if pos >= raw.len() {
                return None;
            }
            if pos + 4 > raw.len() {
                pos = raw.len();
                return Some(Err(DecodeError::BadAttribute));
            }
            let kind = u16::from_be_bytes([raw[pos], raw[pos + 1]]);
            let len = usize::from(u16::from_be_bytes([raw[pos + 2], raw[pos + 3]]));
            let start = pos + 4;
            if start + len > raw.len() {
                pos = raw.len();
                return Some(Err(DecodeError::BadAttribute));
            }
            let at = pos;
            pos = start + len + (4 - len % 4) % 4;
            Some(Ok((kind, &raw[start..start + len], at)))
        })
    }

    /// The first attribute of this type.
    pub fn attr(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs()
            .filter_map(Result::ok)
            .find(|(k, _, _)| *k == kind)
            .map(|(_, v, _)| v)
    }

    /// An XOR-encoded address attribute.
    pub fn xor_addr(&self, kind: u16) -> Option<SocketAddr> {
        decode_xor_addr(self.attr(kind)?, &self.txid)
    }

    /// ERROR-CODE as `(code, reason)`.
    pub fn error_code(&self) -> Option<(u16, String)> {
        let v = self.attr(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        let code = u16::from(v[2] & 0x07) * 100 + u16::from(v[3]);
        Some((code, String::from_utf8_lossy(&v[4..]).into_owned()))
    }

    /// A 32-bit attribute such as LIFETIME.
    pub fn u32_attr(&self, kind: u16) -> Option<u32> {
        let v = self.attr(kind)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    /// Checks MESSAGE-INTEGRITY: `None` when absent, else whether it matches `key`.
    pub fn check_integrity(&self, key: &[u8]) -> Option<bool> {
        let (_, value, at) = self
            .attrs()
            .filter_map(Result::ok)
            .find(|(k, _, _)| *k == attr::MESSAGE_INTEGRITY)?;
        if value.len() != 20 {
            return Some(false);
        }
        let mut head = self.raw[..at].to_vec();
        let len = ((at - HEADER_LEN + 24) as u16).to_be_bytes();
        head[2] = len[0];
        head[3] = len[1];
        Some(hmac_sha1(key, &head) == value)
    }
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    // HMAC takes keys of any length, so this constructor cannot fail.
    let mut mac = match <Hmac<Sha1>>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; 20],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// XOR-encodes an address (RFC 5389 §15.2).
pub fn encode_xor_addr(addr: SocketAddr, txid: &[u8; 12]) -> Vec<u8> {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut out = Vec::with_capacity(20);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&[0, 0x01]);
            out.extend_from_slice(&port.to_be_bytes());
            let x = u32::from(ip) ^ MAGIC_COOKIE;
            out.extend_from_slice(&x.to_be_bytes());
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&[0, 0x02]);
            out.extend_from_slice(&port.to_be_bytes());
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(txid);
            for (b, m) in ip.octets().iter().zip(mask) {
                out.push(b ^ m);
            }
        }
    }
    out
}

/// Decodes an XOR-encoded address; `None` when malformed.
pub fn decode_xor_addr(v: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    match v[1] {
        0x01 if v.len() == 8 => {
            let x = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(x)), port))
        }
        0x02 if v.len() == 20 => {
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(txid);
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = v[4 + i] ^ mask[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// Writes a ChannelData message (RFC 5766 §11.4) into `out`, unpadded as UDP allows.
pub fn channel_data_header(channel: u16, payload_len: usize) -> [u8; 4] {
    let c = channel.to_be_bytes();
    let l = (payload_len.min(usize::from(u16::MAX)) as u16).to_be_bytes();
    [c[0], c[1], l[0], l[1]]
}

/// The payload of a ChannelData message, or `None` if `buf` is not one.
pub fn parse_channel_data(buf: &[u8]) -> Option<(u16, &[u8])> {
    if buf.len() < 4 || buf[0] & 0xC0 != 0x40 {
        return None;
    }
    let channel = u16::from_be_bytes([buf[0], buf[1]]);
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    buf.get(4..4 + len).map(|p| (channel, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_round_trip() {
        assert_eq!(message_type(method::ALLOCATE, Class::Request), 0x0003);
        assert_eq!(message_type(method::ALLOCATE, Class::Success), 0x0103);
        assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(method::SEND, Class::Indication), 0x0016);
        assert_eq!(message_type(method::DATA, Class::Indication), 0x0017);
        for m in [1, 3, 4, 6, 7, 8, 9, 0xABC] {
            for c in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                assert_eq!(split_type(message_type(m, c)), (m, c));
            }
        }
    }

    #[test]
    fn rfc5769_ipv4_response_address() {
        // RFC 5769 §2.2: XOR-MAPPED-ADDRESS 192.0.2.1:32853.
        let txid = [
            0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
        ];
        let v = [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        assert_eq!(
            decode_xor_addr(&v, &txid),
            Some("192.0.2.1:32853".parse().unwrap())
        );
        assert_eq!(
            encode_xor_addr("192.0.2.1:32853".parse().unwrap(), &txid),
            v
        );
        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        assert_eq!(
            decode_xor_addr(&encode_xor_addr(v6, &txid), &txid),
            Some(v6)
        );
    }

    #[test]
    fn integrity_round_trip_and_tamper() {
        let key = rtc_auth::long_term::long_term_key("u", "r", "p");
        let msg = Builder::new(method::REFRESH, Class::Request, [7; 12])
            .attr(attr::USERNAME, b"u")
            .attr_u32(attr::LIFETIME, 600)
            .finish_with_integrity(&key);
        let parsed = Message::parse(&msg).unwrap();
        assert_eq!(parsed.method, method::REFRESH);
        assert_eq!(parsed.u32_attr(attr::LIFETIME), Some(600));
        assert_eq!(parsed.attr(attr::USERNAME), Some(&b"u"[..]));
        assert_eq!(parsed.check_integrity(&key), Some(true));
        assert_eq!(parsed.check_integrity(&[0; 16]), Some(false));
        let mut bad = msg.clone();
        bad[HEADER_LEN + 5] ^= 1;
        assert_eq!(
            Message::parse(&bad).unwrap().check_integrity(&key),
            Some(false)
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(Message::parse(&[]).unwrap_err(), DecodeError::Truncated);
        assert_eq!(
            Message::parse(&[0u8; 20]).unwrap_err(),
            DecodeError::NotStun
        );
        let mut msg = Builder::new(method::BINDING, Class::Request, [1; 12])
            .attr(attr::USERNAME, b"abcd")
            .finish();
        msg[HEADER_LEN + 3] = 200; // attribute claims more than the message holds
        assert_eq!(Message::parse(&msg).unwrap_err(), DecodeError::BadAttribute);
        msg.truncate(22);
        assert_eq!(Message::parse(&msg).unwrap_err(), DecodeError::Truncated);
    }

    #[test]
    fn error_code_and_channel_data() {
        let msg = Builder::new(method::ALLOCATE, Class::Error, [2; 12])
            .attr(attr::ERROR_CODE, &[0, 0, 4, 38, b'S', b't'])
            .finish();
        let parsed = Message::parse(&msg).unwrap();
        assert_eq!(parsed.class, Class::Error);
        assert_eq!(parsed.error_code(), Some((438, "St".into())));
        let mut cd = channel_data_header(0x4001, 3).to_vec();
        cd.extend_from_slice(b"abc");
        assert_eq!(parse_channel_data(&cd), Some((0x4001, &b"abc"[..])));
        assert_eq!(parse_channel_data(&cd[..5]), None);
        assert_eq!(parse_channel_data(b"\x00\x01"), None);
    }
}
