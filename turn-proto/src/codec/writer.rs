//! Writing a STUN message into a caller-owned buffer (no allocation once it has grown).

use std::net::SocketAddr;

use hmac::Mac;

use super::address::{encode_plain, encode_xor};
use super::attribute::AttrType;
use super::error_code::ErrorCode;
use super::message::{
    Class, Method, TransactionId, fingerprint, hmac_sha1, hmac_sha256, length_field, message_type,
};
use super::{HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN};

/// Appends one message to a buffer, keeping the header length current.
pub struct MessageWriter<'b> {
    buf: &'b mut Vec<u8>,
    start: usize,
    transaction: TransactionId,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message at the end of `buf`.
    pub fn new(
        buf: &'b mut Vec<u8>,
        method: Method,
        class: Class,
        transaction: TransactionId,
    ) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction.0);
        Self {
            buf,
            start,
            transaction,
        }
    }

    /// Continues the message that starts at the beginning of `buf` (a prepared response
    /// prefix, or bytes received to re-sign).
    pub fn resume(buf: &'b mut Vec<u8>) -> Self {
        let mut transaction = [0u8; 12];
        if let Some(id) = buf.get(8..HEADER_LEN) {
            transaction.copy_from_slice(id);
        }
        Self {
            buf,
            start: 0,
            transaction: TransactionId(transaction),
        }
    }

    /// Adds an attribute with its padding. An attribute that would make the message
    /// longer than [`MAX_MESSAGE_LEN`] is left out, so no length field is ever truncated;
    /// callers bound what they add (DATA carries at most 65 000 bytes), and debug builds
    /// check that they do.
    pub fn attr(&mut self, kind: AttrType, value: &[u8]) -> &mut Self {
        let pad = (4 - value.len() % 4) % 4;
        let fits = self.len() + 4 + value.len() + pad <= MAX_MESSAGE_LEN;
        debug_assert!(fits, "attribute {kind:?} overflows the message");
        let (true, Ok(len)) = (fits, u16::try_from(value.len())) else {
            return self;
        };
        self.buf.extend_from_slice(&kind.0.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.extend_from_slice(&[0, 0, 0][..pad]);
        self.update_length();
        self
    }

    /// Adds a 32-bit attribute (LIFETIME).
    pub fn u32_attr(&mut self, kind: AttrType, value: u32) -> &mut Self {
        self.attr(kind, &value.to_be_bytes())
    }

    /// Adds an XOR-encoded address (XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, XOR-PEER-ADDRESS).
    pub fn xor_address(&mut self, kind: AttrType, address: SocketAddr) -> &mut Self {
        let mut value = [0u8; 20];
        let len = encode_xor(address, &self.transaction, &mut value);
        self.attr(kind, &value[..len])
    }

    /// Adds a plain (non-XOR) address attribute such as ALTERNATE-SERVER.
    pub fn plain_address(&mut self, kind: AttrType, address: SocketAddr) -> &mut Self {
        let mut value = [0u8; 20];
        let len = encode_plain(address, &mut value);
        self.attr(kind, &value[..len])
    }

    /// Adds ERROR-CODE with its standard reason phrase.
    pub fn error_code(&mut self, code: ErrorCode) -> &mut Self {
        let reason = code.reason().as_bytes();
        let mut value = [0u8; 64];
        value[2] = (code.0 / 100) as u8;
        value[3] = (code.0 % 100) as u8;
        let len = 4 + reason.len().min(60);
        value[4..len].copy_from_slice(&reason[..len - 4]);
        self.attr(AttrType::ERROR_CODE, &value[..len])
    }

    /// Adds ERROR-CODE without a reason phrase (RFC 8489 §14.8 allows an empty one): for
    /// answers to spoofable requests, where every byte is amplification.
    pub fn bare_error_code(&mut self, code: ErrorCode) -> &mut Self {
        let mut value = [0u8; 4];
        value[2] = (code.0 / 100) as u8;
        value[3] = (code.0 % 100) as u8;
        self.attr(AttrType::ERROR_CODE, &value)
    }

    /// Adds ADDRESS-ERROR-CODE (RFC 8656 §18.12) as `kind`: ERROR-CODE's layout with the
    /// failed address family (0x01 IPv4, 0x02 IPv6) in the first byte.
    pub fn address_error_code(&mut self, kind: AttrType, family: u8, code: ErrorCode) -> &mut Self {
        let reason = code.reason().as_bytes();
        let mut value = [0u8; 64];
        value[0] = family;
        value[2] = (code.0 / 100) as u8;
        value[3] = (code.0 % 100) as u8;
        let len = 4 + reason.len().min(60);
        value[4..len].copy_from_slice(&reason[..len - 4]);
        self.attr(kind, &value[..len])
    }

    /// Adds UNKNOWN-ATTRIBUTES listing `types` (RFC 8489 §14.13).
    pub fn unknown_attributes(&mut self, types: &[AttrType]) -> &mut Self {
        let mut value = [0u8; 64];
        let count = types.len().min(32);
        for (chunk, kind) in value.chunks_exact_mut(2).zip(&types[..count]) {
            chunk.copy_from_slice(&kind.0.to_be_bytes());
        }
        self.attr(AttrType::UNKNOWN_ATTRIBUTES, &value[..count * 2])
    }

    /// Adds MESSAGE-INTEGRITY (HMAC-SHA1 with `key`); call after every other attribute
    /// but FINGERPRINT.
    pub fn integrity(&mut self, key: &[u8]) -> &mut Self {
        let at = self.buf.len();
        self.attr(AttrType::MESSAGE_INTEGRITY, &[0u8; 20]);
        let mut mac = hmac_sha1(key);
        mac.update(&self.buf[self.start..at]);
        let tag = mac.finalize().into_bytes();
        self.buf[at + 4..at + 24].copy_from_slice(&tag);
        self
    }

    /// Adds MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256 with `key`, RFC 8489 §14.6); call after
    /// every other attribute but FINGERPRINT.
    pub fn integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        let at = self.buf.len();
        self.attr(AttrType::MESSAGE_INTEGRITY_SHA256, &[0u8; 32]);
        let mut mac = hmac_sha256(key);
        mac.update(&self.buf[self.start..at]);
        let tag = mac.finalize().into_bytes();
        self.buf[at + 4..at + 36].copy_from_slice(&tag);
        self
    }

    /// Adds FINGERPRINT; must be last.
    pub fn fingerprint(&mut self) -> &mut Self {
        match fingerprint(&self.buf[self.start..]) {
            Some(crc) => self.attr(AttrType::FINGERPRINT, &crc.to_be_bytes()),
            None => self,
        }
    }

    /// Length of the message written so far.
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True before any byte is written (never: the header is written at once).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn update_length(&mut self) {
        // `attr` keeps the message within MAX_MESSAGE_LEN, so there is always a value.
        if let Some(length) = length_field(self.buf.len() - self.start) {
            self.buf[self.start + 2..self.start + 4].copy_from_slice(&length.to_be_bytes());
        }
    }
}
