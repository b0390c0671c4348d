//! The publisher's readings of the clock. Unlike `crate::clock`, a clock before
//! 1970 stops a publish (no version or expiry can be set from it), and file
//! times keep their nanoseconds for the hash cache.

use std::time::{SystemTime, UNIX_EPOCH};

use super::error::PublishError;

/// The current time in Unix seconds.
pub(super) fn unix_now() -> Result<u64, PublishError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| PublishError::Clock)
}

/// A time as Unix seconds (rounded down, also before 1970) and nanoseconds.
pub(super) fn unix_time(time: SystemTime) -> (i64, u32) {
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
