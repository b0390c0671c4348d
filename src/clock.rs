//! The wall clock, as the records, the state file, the gossip and the
//! publisher's hash cache count time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970; a clock set before 1970 reads as 0.
pub(crate) fn now_unix() -> u64 {
    checked_now_unix().unwrap_or(0)
}

/// Seconds since 1970, or `None` for a clock set before 1970, from which the
/// publisher can set no version or expiry.
pub(crate) fn checked_now_unix() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A time as Unix seconds (rounded down, also before 1970) and nanoseconds,
/// as the hash cache keeps file times.
pub(crate) fn unix_time(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_time_rounds_down_before_1970() {
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(unix_time(before), (-2, 500_000_000));
        assert_eq!(unix_time(UNIX_EPOCH + Duration::new(5, 7)), (5, 7));
    }
}
