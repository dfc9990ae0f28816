//! The quota counts every shard of the process shares.
//!
//! The core takes no lock, so the shared counts live here, in the driver: one
//! `Mutex<QuotaCounts>`, locked only when an allocation or an RFC 6062 peer connection
//! starts or ends (never on the relay path), handed to each shard's core as its
//! [`QuotaLedger`].

use std::sync::{Arc, Mutex, PoisonError};

use turn_proto::quota::{QuotaCounts, QuotaExceeded, QuotaLedger, QuotaLimits};

/// A handle on the process-wide counts; clones share them.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedQuotas(Arc<Mutex<QuotaCounts>>);

impl QuotaLedger for SharedQuotas {
    fn admit(&mut self, user: &str, limits: &QuotaLimits) -> Result<(), QuotaExceeded> {
        self.counts().admit(user, limits)
    }

    fn release(&mut self, user: &str) {
        self.counts().release(user);
    }

    fn admit_connection(&mut self, user: &str, limits: &QuotaLimits) -> bool {
        self.counts().admit_connection(user, limits)
    }

    fn release_connections(&mut self, user: &str, count: u32) {
        self.counts().release_connections(user, count);
    }
}

impl SharedQuotas {
    fn counts(&self) -> std::sync::MutexGuard<'_, QuotaCounts> {
        // The counts stay consistent whatever a panicking holder did: each update
        // completes before the guard is dropped.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_share_the_counts() {
        let limits = QuotaLimits {
            user: 1,
            total: 2,
            ..QuotaLimits::default()
        };
        let mut first = SharedQuotas::default();
        let mut second = first.clone();
        assert_eq!(first.admit("alice", &limits), Ok(()));
        assert_eq!(second.admit("alice", &limits), Err(QuotaExceeded::User));
        assert_eq!(second.admit("bob", &limits), Ok(()));
        assert_eq!(first.admit("carol", &limits), Err(QuotaExceeded::Total));
        second.release("alice");
        assert_eq!(first.counts().total(), 1);
    }
}
