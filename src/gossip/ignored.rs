//! How a listener tells about the datagrams it ignores without letting a
//! flood fill the disk: a budget of lines per period, after which ignored
//! datagrams are only counted, by reason, and summed up in one line at the
//! end of the period.
//!
//! The decisions themselves (why a datagram is ignored) are the node's; this
//! only decides what reaches the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Lines about single ignored datagrams per period.
pub(crate) const LINES_PER_PERIOD: u32 = 32;

/// The count of ignored datagrams in the current period.
#[derive(Debug)]
pub(crate) struct IgnoredLog {
    budget: u32,
    logged: u32,
    by_reason: BTreeMap<&'static str, u64>,
    since: Instant,
}

impl IgnoredLog {
    /// A log allowing `budget` lines per period.
    pub(crate) fn new(budget: u32) -> IgnoredLog {
        IgnoredLog {
            budget,
            logged: 0,
            by_reason: BTreeMap::new(),
            since: Instant::now(),
        }
    }

    /// Counts one ignored datagram; returns the line to log if the budget
    /// still allows one. `line` is only built then.
    pub(crate) fn note(
        &mut self,
        reason: &'static str,
        line: impl FnOnce() -> String,
    ) -> Option<String> {
        *self.by_reason.entry(reason).or_default() += 1;
        if self.logged >= self.budget {
            return None;
        }
        self.logged += 1;
        let mut line = line();
        if self.logged == self.budget {
            line.push_str(
                "; further ignored datagrams are counted, not logged, until the next summary",
            );
        }
        Some(line)
    }

    /// Counts one ignored datagram that is never logged on its own.
    pub(crate) fn count(&mut self, reason: &'static str) {
        *self.by_reason.entry(reason).or_default() += 1;
    }

    /// Ends the period: one line summing up what was ignored in it, if more
    /// was ignored than logged.
    pub(crate) fn summary(&mut self) -> Option<String> {
        let by_reason = std::mem::take(&mut self.by_reason);
        let logged = std::mem::replace(&mut self.logged, 0);
        let elapsed = std::mem::replace(&mut self.since, Instant::now()).elapsed();
        let total: u64 = by_reason.values().sum();
        if total <= u64::from(logged) {
            return None;
        }
        let reasons: Vec<String> = by_reason
            .iter()
            .map(|(reason, count)| format!("{count} {reason}"))
            .collect();
        Some(format!(
            "ignored {total} datagrams in the last {}s: {} ({logged} logged one by one)",
            round_seconds(elapsed),
            reasons.join(", ")
        ))
    }
}

fn round_seconds(elapsed: Duration) -> u64 {
    (elapsed.as_millis() as u64).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_the_budget_and_one_summary() {
        let mut log = IgnoredLog::new(4);
        let mut lines = Vec::new();
        for n in 0..16_000 {
            let reason = if n % 4 == 0 {
                "over the rate limit"
            } else {
                "malformed"
            };
            lines.extend(log.note(reason, || format!("from x: ignored: {n}")));
        }
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[3].contains("counted, not logged"), "{}", lines[3]);
        let summary = log.summary().expect("a summary");
        assert!(
            summary.starts_with("ignored 16000 datagrams in the last "),
            "{summary}"
        );
        assert!(
            summary.contains("12000 malformed, 4000 over the rate limit (4 logged one by one)"),
            "{summary}"
        );
        // A new period has its budget back and nothing to sum up.
        assert!(log.summary().is_none());
        assert!(log.note("malformed", || "again".into()).is_some());
    }

    #[test]
    fn a_quiet_period_needs_no_summary() {
        let mut log = IgnoredLog::new(4);
        assert!(log.note("malformed", || "one".into()).is_some());
        assert!(log.note("malformed", || "two".into()).is_some());
        assert!(log.summary().is_none());
    }
}
