//! The systemd service and timer of the periodic run on Unix.

use super::{INTERVAL_HOURS, Job, RANDOM_DELAY_MINUTES, TIME_LIMIT_HOURS};

/// The service's file name.
pub(crate) const SERVICE_NAME: &str = "wpkgsync.service";
/// The timer's file name; the timer starts the service of the same name.
pub(crate) const TIMER_NAME: &str = "wpkgsync.timer";

/// A oneshot service as root: systemd never starts a second copy of a
/// service still running, and stops one that runs past the time limit.
pub(crate) fn service_unit(job: &Job) -> String {
    format!(
        "[Unit]
Description=Keep the WPKG software repository in sync (wpkgsync)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User=root
ExecStart={} --config {} --quiet
TimeoutStartSec={TIME_LIMIT_HOURS}h
",
        quote(&job.exe.display().to_string()),
        quote(&job.ini.display().to_string())
    )
}

/// Every two hours with a random delay; `Persistent` runs a start missed while
/// the machine was off as soon as it is up.
pub(crate) fn timer_unit() -> String {
    format!(
        "[Unit]
Description=Run wpkgsync every {INTERVAL_HOURS} hours

[Timer]
OnCalendar=0/{INTERVAL_HOURS}:00
RandomizedDelaySec={RANDOM_DELAY_MINUTES}min
Persistent=true

[Install]
WantedBy=timers.target
"
    )
}

/// systemd's quoting for one word of ExecStart.
fn quote(word: &str) -> String {
    if word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        word.to_string()
    } else {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_service_runs_the_sync_once_as_root_within_the_limit() {
        let job = Job {
            exe: PathBuf::from("/usr/local/bin/wpkgsync"),
            ini: PathBuf::from("/etc/wpkgsync/my sites.ini"),
        };
        let unit = service_unit(&job);
        assert!(unit.contains("Type=oneshot\n"), "{unit}");
        assert!(unit.contains("User=root\n"), "{unit}");
        assert!(
            unit.contains("ExecStart=/usr/local/bin/wpkgsync --config \"/etc/wpkgsync/my sites.ini\" --quiet\n"),
            "{unit}"
        );
        assert!(unit.contains("TimeoutStartSec=2h\n"), "{unit}");
    }

    #[test]
    fn the_timer_fires_every_two_hours_spread_and_catches_up() {
        let unit = timer_unit();
        assert!(unit.contains("OnCalendar=0/2:00\n"), "{unit}");
        assert!(unit.contains("RandomizedDelaySec=30min\n"), "{unit}");
        assert!(unit.contains("Persistent=true\n"), "{unit}");
        assert!(unit.contains("WantedBy=timers.target\n"), "{unit}");
    }
}
