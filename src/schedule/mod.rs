//! `wpkgsync schedule install | show | remove`: the periodic run, as the
//! system's own scheduler runs it. Every 2 hours with a random delay, as
//! SYSTEM or root, never two at once, started late after a missed run, and
//! stopped after 2 hours.
//!
//! Windows: a Task Scheduler task registered from XML with `schtasks`.
//! Unix: a systemd service and timer. Both texts are built here on every OS so
//! that both are tested; only registering them is per OS.

// Each is used by one OS's registration only; both are built on every OS so
// that their tests run here.
#[cfg_attr(windows, allow(dead_code))]
mod systemd;
#[cfg_attr(not(windows), allow(dead_code))]
mod task;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

use std::path::{Path, PathBuf};

pub(crate) use imp::{install, remove, show};

/// Hours between two runs.
pub(crate) const INTERVAL_HOURS: u32 = 2;
/// Largest random delay of a start, in minutes: spreads hundreds of clients
/// over half an hour.
pub(crate) const RANDOM_DELAY_MINUTES: u32 = 30;
/// A run still going after this long is stopped.
pub(crate) const TIME_LIMIT_HOURS: u32 = 2;

/// Why the scheduler could not be set up (exit 208).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// What the scheduled run starts: this executable with the INI.
pub(crate) struct Job {
    /// The executable, as installed.
    pub exe: PathBuf,
    /// The INI file it reads.
    pub ini: PathBuf,
}

impl Job {
    /// This executable with `ini`, made absolute.
    pub(crate) fn current(ini: &Path) -> Result<Job, ScheduleError> {
        let exe = std::env::current_exe()
            .map_err(|e| ScheduleError(format!("cannot locate this executable: {e}")))?;
        // The scheduler starts the run in another folder than this one.
        let ini = std::path::absolute(ini)
            .map_err(|e| ScheduleError(format!("cannot resolve {}: {e}", ini.display())))?;
        Ok(Job { exe, ini })
    }
}

/// Runs one of the system's tools; its own words become the error.
fn run_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), ScheduleError> {
    let shown = || {
        let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        format!("{program} {}", words.join(" "))
    };
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| ScheduleError(format!("cannot run `{}`: {e}", shown())))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = if said.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout)
    } else {
        said
    };
    Err(ScheduleError(format!(
        "`{}` failed ({}): {}",
        shown(),
        output.status,
        said.trim()
    )))
}
