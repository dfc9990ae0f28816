//! The wall clock: the core reads no clock, and TURN REST usernames carry wall-clock
//! expiry times, so the driver hands it this reading.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; TURN REST expiry is wall-clock time.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
