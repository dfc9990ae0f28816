//! Parsing a STUN message in place (RFC 8489 §5, §14).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::attribute::AttrType;
use super::{HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN};
use rtc_auth::constant_time::ct_eq;

/// Most attributes kept per message; real requests carry fewer than 15. A message with
/// more is refused rather than stored in a growing list.
const MAX_ATTRIBUTES: usize = 32;

/// A STUN method (RFC 8489 §18.2, RFC 8656 §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// RFC 8489 §3.
    pub const BINDING: Self = Self(0x001);
    /// RFC 8656 §7.
    pub const ALLOCATE: Self = Self(0x003);
    /// RFC 8656 §7.3.
    pub const REFRESH: Self = Self(0x004);
    /// RFC 8656 §11.
    pub const SEND: Self = Self(0x006);
    /// RFC 8656 §11.
    pub const DATA: Self = Self(0x007);
    /// RFC 8656 §9.
    pub const CREATE_PERMISSION: Self = Self(0x008);
    /// RFC 8656 §12.
    pub const CHANNEL_BIND: Self = Self(0x009);
    /// RFC 6062 §4.3.
    pub const CONNECT: Self = Self(0x00A);
    /// RFC 6062 §4.4.
    pub const CONNECTION_BIND: Self = Self(0x00B);
    /// RFC 6062 §4.5.
    pub const CONNECTION_ATTEMPT: Self = Self(0x00C);
}

/// The class bits of a message type (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Expects a response.
    Request,
    /// Expects nothing.
    Indication,
    /// Success response.
    Success,
    /// Error response.
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Self::Request => 0x000,
            Self::Indication => 0x010,
            Self::Success => 0x100,
            Self::Error => 0x110,
        }
    }
}

/// Encodes method and class into the 14-bit message type.
pub fn message_type(method: Method, class: Class) -> u16 {
    let m = method.0;
    (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | class.bits()
}

fn split_type(raw: u16) -> (Method, Class) {
    let method = (raw & 0x000F) | ((raw & 0x00E0) >> 1) | ((raw & 0x3E00) >> 2);
    let class = match raw & 0x0110 {
        0x000 => Class::Request,
        0x010 => Class::Indication,
        0x100 => Class::Success,
        _ => Class::Error,
    };
    (Method(method), class)
}

/// The 96-bit transaction id (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// Why bytes are not a STUN message we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not STUN at all (wrong leading bits or magic cookie): dropped silently.
    #[error("not a STUN message")]
    NotStun,
    /// Header length disagrees with the bytes received, or the message is longer than
    /// [`MAX_MESSAGE_LEN`].
    #[error("STUN length does not match the datagram")]
    BadLength,
    /// An attribute runs past the end of the message.
    #[error("attribute overruns the message")]
    Truncated,
    /// More attributes than the server keeps.
    #[error("too many attributes")]
    TooManyAttributes,
    /// FINGERPRINT present but wrong: the message is dropped (RFC 8489 §7.3).
    #[error("FINGERPRINT mismatch")]
    BadFingerprint,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    kind: u16,
    /// Offset of the attribute value within the message.
    start: u16,
    len: u16,
}

/// A parsed STUN message borrowing its bytes.
///
/// Only attributes before MESSAGE-INTEGRITY are visible (RFC 8489 §14.5: anything after
/// it but FINGERPRINT is ignored).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    bytes: &'a [u8],
    method: Method,
    class: Class,
    transaction: TransactionId,
    slots: [Slot; MAX_ATTRIBUTES],
    count: usize,
    /// Offset of the MESSAGE-INTEGRITY attribute header, when present.
    integrity: Option<usize>,
    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute header, when present.
    integrity_sha256: Option<usize>,
    has_fingerprint: bool,
}

impl<'a> Message<'a> {
    /// Cheap test for "this looks like STUN" used to demultiplex from ChannelData.
    pub fn is_stun(bytes: &[u8]) -> bool {
        bytes.len() >= HEADER_LEN
            && bytes[0] & 0xC0 == 0
            && u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) == MAGIC_COOKIE
    }

    /// Parses a whole message: `bytes` must be exactly one message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        if !Self::is_stun(bytes) {
            return Err(ParseError::NotStun);
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if length % 4 != 0 || HEADER_LEN + length != bytes.len() || bytes.len() > MAX_MESSAGE_LEN {
            return Err(ParseError::BadLength);
        }
        let (method, class) = split_type(u16::from_be_bytes([bytes[0], bytes[1]]));
        let mut transaction = [0u8; 12];
        transaction.copy_from_slice(&bytes[8..20]);
        let mut message = Message {
            bytes,
            method,
            class,
            transaction: TransactionId(transaction),
            slots: [Slot::default(); MAX_ATTRIBUTES],
            count: 0,
            integrity: None,
            integrity_sha256: None,
            has_fingerprint: false,
        };
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            if offset + 4 > bytes.len() {
                return Err(ParseError::Truncated);
            }
            let kind = u16::from_be_bytes([bytes[offset], bytes[offset + 1]]);
            let len = usize::from(u16::from_be_bytes([bytes[offset + 2], bytes[offset + 3]]));
            let start = offset + 4;
            let padded = (len + 3) & !3;
            if start + padded > bytes.len() {
                return Err(ParseError::Truncated);
            }
            match AttrType(kind) {
                AttrType::FINGERPRINT => {
                    // FINGERPRINT must be last (RFC 8489 §14.7).
                    if len != 4 || start + 4 != bytes.len() {
                        return Err(ParseError::BadFingerprint);
                    }
                    let expected = u32::from_be_bytes([
                        bytes[start],
                        bytes[start + 1],
                        bytes[start + 2],
                        bytes[start + 3],
                    ]);
                    if fingerprint(&bytes[..offset]) != Some(expected) {
                        return Err(ParseError::BadFingerprint);
                    }
                    message.has_fingerprint = true;
                }
                AttrType::MESSAGE_INTEGRITY
                    if message.integrity.is_none() && message.integrity_sha256.is_none() =>
                {
                    message.integrity = Some(offset);
                }
                AttrType::MESSAGE_INTEGRITY_SHA256 if message.integrity_sha256.is_none() => {
                    message.integrity_sha256 = Some(offset);
                }
                _ if message.integrity.is_some() || message.integrity_sha256.is_some() => {}
                _ => {
                    if message.count == MAX_ATTRIBUTES {
                        return Err(ParseError::TooManyAttributes);
                    }
                    // The whole message is at most MAX_MESSAGE_LEN bytes, so offsets
                    // fit in u16; checked rather than cast all the same.
                    let (Ok(start), Ok(len)) = (u16::try_from(start), u16::try_from(len)) else {
                        return Err(ParseError::BadLength);
                    };
                    message.slots[message.count] = Slot { kind, start, len };
                    message.count += 1;
                }
            }
            offset = start + padded;
        }
        Ok(message)
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The transaction id.
    pub fn transaction(&self) -> TransactionId {
        self.transaction
    }

    /// The raw message.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the message carried a (valid) FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.has_fingerprint
    }

    /// True when the message carried MESSAGE-INTEGRITY.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    /// True when the message carried MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6), which then
    /// is the one to check and to answer with.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 with `key`, in constant time; a value truncated to
    /// 16..32 bytes (a multiple of 4) is compared on its length (§14.6).
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> bool {
        let Some(offset) = self.integrity_sha256 else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([
            self.bytes[offset + 2],
            self.bytes[offset + 3],
        ]));
        if !(16..=32).contains(&len) || len % 4 != 0 {
            return false;
        }
        let value_start = offset + 4;
        let Some(length) = length_field(value_start + len) else {
            return false;
        };
        let mut mac = hmac_sha256(key);
        mac.update(&self.bytes[..2]);
        mac.update(&length.to_be_bytes());
        mac.update(&self.bytes[4..offset]);
        let computed = mac.finalize().into_bytes();
        ct_eq(
            &computed[..len],
            &self.bytes[value_start..value_start + len],
        )
    }

    /// The value of the first attribute of type `kind`.
    pub fn attr(&self, kind: AttrType) -> Option<&'a [u8]> {
        self.attrs(kind).next()
    }

    /// Values of every attribute of type `kind`, in order.
    pub fn attrs(&self, kind: AttrType) -> impl Iterator<Item = &'a [u8]> + '_ {
        let bytes = self.bytes;
        self.slots[..self.count]
            .iter()
            .filter(move |slot| slot.kind == kind.0)
            .map(move |slot| {
                let start = usize::from(slot.start);
                &bytes[start..start + usize::from(slot.len)]
            })
    }

    /// Where the first attribute of type `kind` lies in [`Self::bytes`], so relayed data
    /// can be sent from the input buffer without a copy.
    pub fn attr_range(&self, kind: AttrType) -> Option<std::ops::Range<usize>> {
        self.slots[..self.count]
            .iter()
            .find(|slot| slot.kind == kind.0)
            .map(|slot| usize::from(slot.start)..usize::from(slot.start) + usize::from(slot.len))
    }

    /// Every attribute type present (before MESSAGE-INTEGRITY).
    pub fn attr_types(&self) -> impl Iterator<Item = AttrType> + '_ {
        self.slots[..self.count]
            .iter()
            .map(|slot| AttrType(slot.kind))
    }

    /// A UTF-8 attribute value (USERNAME, REALM, NONCE).
    pub fn text_attr(&self, kind: AttrType) -> Option<Result<&'a str, ()>> {
        self.attr(kind)
            .map(|value| std::str::from_utf8(value).map_err(|_| ()))
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) with `key`, in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(offset) = self.integrity else {
            return false;
        };
        let value_start = offset + 4;
        if u16::from_be_bytes([self.bytes[offset + 2], self.bytes[offset + 3]]) != 20 {
            return false;
        }
        // The length in the header covers the message up to the end of MI (§14.5).
        let Some(length) = length_field(value_start + 20) else {
            return false;
        };
        let mut mac = hmac_sha1(key);
        mac.update(&self.bytes[..2]);
        mac.update(&length.to_be_bytes());
        mac.update(&self.bytes[4..offset]);
        let computed = mac.finalize().into_bytes();
        ct_eq(&computed, &self.bytes[value_start..value_start + 20])
    }
}

pub(super) fn hmac_sha1(key: &[u8]) -> Hmac<Sha1> {
    // HMAC takes keys of any length, so this cannot fail.
    <Hmac<Sha1>>::new_from_slice(key).expect("HMAC accepts any key length")
}

pub(super) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The header length field of a message `total` bytes long (header included); None
/// past [`MAX_MESSAGE_LEN`].
pub(super) fn length_field(total: usize) -> Option<u16> {
    if total > MAX_MESSAGE_LEN {
        return None;
    }
    u16::try_from(total.checked_sub(HEADER_LEN)?).ok()
}

/// CRC-32 of `bytes` with the length field set as if FINGERPRINT followed, XOR'd with
/// 0x5354554e (RFC 8489 §14.7). `bytes` ends where the FINGERPRINT attribute starts;
/// None when the message would be longer than [`MAX_MESSAGE_LEN`].
pub(super) fn fingerprint(bytes: &[u8]) -> Option<u32> {
    let length = length_field(bytes.len() + 8)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..2]);
    crc.update(&length.to_be_bytes());
    crc.update(&bytes[4..]);
    Some(crc.finalize() ^ 0x5354_554e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attribute past offset 65 535 of an over-long message would be stored at its
    /// offset modulo 65 536 and read from the wrong bytes: such messages are refused.
    #[test]
    fn messages_longer_than_65535_bytes_are_refused() {
        let mut bytes = vec![0x00, 0x01, 0, 0];
        bytes.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        bytes.extend_from_slice(&[9; 12]);
        // A 65 520-byte comprehension-optional attribute, then USERNAME at 65 544.
        bytes.extend_from_slice(&[0x80, 0x22, 0xFF, 0xF0]);
        bytes.resize(bytes.len() + 0xFFF0, 0);
        bytes.extend_from_slice(&[0x00, 0x06, 0x00, 0x04]);
        bytes.extend_from_slice(b"evil");
        let length = u16::try_from(bytes.len() - HEADER_LEN).unwrap();
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        assert_eq!(bytes.len(), 65_552);
        assert_eq!(Message::parse(&bytes).err(), Some(ParseError::BadLength));
        // The longest message that fits still parses, its last attribute where it is.
        let fits = bytes.len() - 20;
        bytes.truncate(HEADER_LEN + 4 + 0xFFF0 - 20);
        bytes[22..24].copy_from_slice(&(0xFFF0u16 - 20).to_be_bytes());
        bytes.extend_from_slice(&[0x00, 0x06, 0x00, 0x04]);
        bytes.extend_from_slice(b"good");
        let length = u16::try_from(bytes.len() - HEADER_LEN).unwrap();
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        assert_eq!(bytes.len(), fits);
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.attr(AttrType::USERNAME), Some(&b"good"[..]));
    }

    #[test]
    fn type_encoding_round_trips() {
        for method in [
            Method::BINDING,
            Method::ALLOCATE,
            Method::CHANNEL_BIND,
            Method(0xFFF),
        ] {
            for class in [
                Class::Request,
                Class::Indication,
                Class::Success,
                Class::Error,
            ] {
                assert_eq!(split_type(message_type(method, class)), (method, class));
            }
        }
        assert_eq!(message_type(Method::BINDING, Class::Request), 0x0001);
        assert_eq!(message_type(Method::BINDING, Class::Success), 0x0101);
        assert_eq!(message_type(Method::ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(Method::SEND, Class::Indication), 0x0016);
        assert_eq!(message_type(Method::DATA, Class::Indication), 0x0017);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(Message::parse(b"").unwrap_err(), ParseError::NotStun);
        assert_eq!(
            Message::parse(&[0x40; 20]).unwrap_err(),
            ParseError::NotStun
        );
        let mut header = [0u8; 20];
        header[1] = 1;
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(Message::parse(&header).is_ok());
        header[3] = 4;
        assert_eq!(Message::parse(&header).unwrap_err(), ParseError::BadLength);
        let mut long = header.to_vec();
        long.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        assert_eq!(Message::parse(&long).unwrap_err(), ParseError::Truncated);
        header[3] = 3;
        let mut odd = header.to_vec();
        odd.extend_from_slice(&[0, 0, 0]);
        assert_eq!(Message::parse(&odd).unwrap_err(), ParseError::BadLength);
    }
}
