//! What the token endpoints do, without HTTP: each flow takes a validated request and
//! the services, and returns what to answer or a [`FlowError`]. Handlers in
//! [`crate::routes`] only translate (the wire form of each error is in
//! [`crate::error`]), so every rule here is testable without a router.

pub mod appservice;
pub mod error;
pub mod standalone;

pub use error::FlowError;
