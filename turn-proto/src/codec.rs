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

/// STUN header length (RFC 8489 §5).
pub const HEADER_LEN: usize = 20;
