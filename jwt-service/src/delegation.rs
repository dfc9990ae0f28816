//! Delayed-leave delegation (MSC4140, spec §5): the service keeps a user's delayed
//! "leave" event pending while LiveKit says they are in the call and sends it when they
//! leave, so a crashed client does not stay in the call forever.

pub mod backoff;
pub mod cs_api;
pub mod homeserver;
pub mod job;
pub mod manager;
pub mod store;
pub mod webhook;
