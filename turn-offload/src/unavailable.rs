//! Why the fast path cannot run here.

use thiserror::Error;

/// The fast path cannot run here; the driver relays in userspace and logs `reason`
/// once.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("kernel fast path unavailable: {reason}")]
pub struct Unavailable {
    /// What is missing, in words an operator can act on.
    pub reason: String,
}
