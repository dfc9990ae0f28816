//! STUN/TURN wire format: parsing without copies, writing into a reused buffer.
//!
//! Hand-written rather than taken from a crate because the server needs three things the
//! available codecs do not give together: MESSAGE-INTEGRITY checked against a raw 16-byte
//! key (coturn's `user=name:0x<key>` and cached session keys), no allocation per
//! message, and no logging from inside the parser (a flood of bad packets must not
//! become a flood of log lines).

pub mod address;
pub mod attribute;
pub mod channel_data;
pub mod error_code;
pub mod message;
pub mod writer;

#[cfg(test)]
mod rfc5769_tests;
#[cfg(test)]
mod rfc8489_tests;

pub use channel_data::ChannelData;
pub use error_code::ErrorCode;
pub use message::{Class, Message, Method, ParseError, TransactionId};
pub use writer::MessageWriter;

/// The fixed value in every STUN header since RFC 5389 (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

#[cfg(test)]
const _: () = assert!(MAGIC_COOKIE >> 16 == MAGIC_COOKIE_HIGH as u32);

/// STUN header length (RFC 8489 §5).
pub const HEADER_LEN: usize = 20;

/// The longest message, header included, the codec reads or writes: attribute offsets
/// and lengths are 16-bit, and a UDP datagram cannot be longer anyway. A STUN header's
/// length field alone could describe 20 + 65 535 bytes; such messages are refused, on
/// streams at framing ([`crate::framing`]).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// The upper 16 bits of [`MAGIC_COOKIE`], which XOR the port of address attributes.
pub const MAGIC_COOKIE_HIGH: u16 = 0x2112;
