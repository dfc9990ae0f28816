//! Auth building blocks shared by `turn-server`, `lk-jwt-service` and `loadtest`.
//!
//! Both services hand out or check credentials derived from shared secrets, and both
//! must refuse to talk to addresses an attacker picks. Keeping that code in one crate
//! means one implementation to test against the vectors in the specs:
//!
//! - [`rest`]: TURN REST API credentials (`<expiry>:<user>` + base64 HMAC-SHA1), the scheme
//!   Synapse, conduwuit and LiveKit use with coturn.
//! - [`long_term`]: the STUN long-term key `MD5(user:realm:password)`.
//! - [`secret`]: secrets from a value, a file or the environment that never print.
//! - [`ip_range`]: coturn-style address ranges, CIDR, IPv4-in-IPv6 canonical forms and the
//!   default list of special-purpose ranges a relay must not reach.
//! - [`constant_time`]: comparisons that do not leak where two secrets differ.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod constant_time;
pub mod ip_range;
pub mod long_term;
pub mod rest;
pub mod secret;
