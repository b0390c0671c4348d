//! The wall clock, as the records, the state file and the gossip count time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970; a clock set before 1970 reads as 0.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
