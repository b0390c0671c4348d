//! Unix twin of the scheduler set-up: a systemd service and timer.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::systemd::{SERVICE_NAME, TIMER_NAME, service_unit, timer_unit};
use super::{Job, ScheduleError, run_tool};

/// Where units of the administrator go.
const SYSTEM_UNITS: &str = "/etc/systemd/system";

/// Both units, each after a comment naming its file.
pub(crate) fn show(job: &Job) -> String {
    format!(
        "# {SYSTEM_UNITS}/{SERVICE_NAME}\n{}\n# {SYSTEM_UNITS}/{TIMER_NAME}\n{}",
        service_unit(job),
        timer_unit()
    )
}

/// Writes both units into `unit_dir` (default: the system's), and, for the
/// system's folder, reloads systemd and enables and starts the timer.
pub(crate) fn install(job: &Job, unit_dir: Option<&Path>) -> Result<String, ScheduleError> {
    let dir = unit_dir.map_or_else(|| PathBuf::from(SYSTEM_UNITS), Path::to_path_buf);
    for (name, text) in [
        (SERVICE_NAME, service_unit(job)),
        (TIMER_NAME, timer_unit()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| ScheduleError(format!("failed to write {}: {e}", path.display())))?;
    }
    let written = format!(
        "wrote {} and {}",
        dir.join(SERVICE_NAME).display(),
        dir.join(TIMER_NAME).display()
    );
    if unit_dir.is_some() {
        return Ok(format!("{written}; not enabled (--unit-dir)"));
    }
    require_systemd(&written)?;
    run_tool("systemctl", &[OsStr::new("daemon-reload")])?;
    run_tool(
        "systemctl",
        &[
            OsStr::new("enable"),
            OsStr::new("--now"),
            OsStr::new(TIMER_NAME),
        ],
    )?;
    Ok(format!("{written}; {TIMER_NAME} enabled and started"))
}

/// Stops and disables the timer and deletes both units.
pub(crate) fn remove(unit_dir: Option<&Path>) -> Result<String, ScheduleError> {
    let dir = unit_dir.map_or_else(|| PathBuf::from(SYSTEM_UNITS), Path::to_path_buf);
    if unit_dir.is_none() {
        require_systemd("nothing removed")?;
        run_tool(
            "systemctl",
            &[
                OsStr::new("disable"),
                OsStr::new("--now"),
                OsStr::new(TIMER_NAME),
            ],
        )?;
    }
    for name in [TIMER_NAME, SERVICE_NAME] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ScheduleError(format!(
                    "failed to remove {}: {e}",
                    path.display()
                )));
            }
        }
    }
    if unit_dir.is_none() {
        run_tool("systemctl", &[OsStr::new("daemon-reload")])?;
    }
    Ok(format!(
        "removed {TIMER_NAME} and {SERVICE_NAME} from {}",
        dir.display()
    ))
}

fn require_systemd(done: &str) -> Result<(), ScheduleError> {
    if Path::new("/run/systemd/system").is_dir() {
        Ok(())
    } else {
        Err(ScheduleError(format!(
            "systemd is not running on this machine ({done}); once it runs: systemctl enable --now {TIMER_NAME}"
        )))
    }
}
