//! Windows scheduler set-up: the task XML registered with `schtasks`.

use std::ffi::OsStr;
use std::path::Path;

use super::task::{TASK_NAME, task_xml, utf16_with_bom};
use super::{Job, ScheduleError, run_tool};

/// The task definition.
pub(crate) fn show(job: &Job) -> String {
    task_xml(job)
}

/// Registers (or replaces) the task from its XML, written UTF-16 to a
/// temporary file for `schtasks /Create /XML`.
pub(crate) fn install(job: &Job, unit_dir: Option<&Path>) -> Result<String, ScheduleError> {
    if unit_dir.is_some() {
        return Err(ScheduleError(
            "--unit-dir names a systemd folder; Windows registers the task with schtasks".into(),
        ));
    }
    // Closed before schtasks reads it, which it refuses while another handle
    // may write; removed when `file` drops.
    let file = tempfile::Builder::new()
        .prefix("wpkgsync-task-")
        .suffix(".xml")
        .tempfile()
        .map_err(|e| ScheduleError(format!("cannot create the task file: {e}")))?
        .into_temp_path();
    std::fs::write(&file, utf16_with_bom(&task_xml(job)))
        .map_err(|e| ScheduleError(format!("failed to write {}: {e}", file.display())))?;
    run_tool(
        "schtasks",
        &[
            OsStr::new("/Create"),
            OsStr::new("/TN"),
            OsStr::new(TASK_NAME),
            OsStr::new("/XML"),
            file.as_os_str(),
            OsStr::new("/F"),
        ],
    )?;
    Ok(format!("registered the scheduled task {TASK_NAME}"))
}

/// Deletes the task.
pub(crate) fn remove(unit_dir: Option<&Path>) -> Result<String, ScheduleError> {
    if unit_dir.is_some() {
        return Err(ScheduleError(
            "--unit-dir names a systemd folder; Windows registers the task with schtasks".into(),
        ));
    }
    run_tool(
        "schtasks",
        &[
            OsStr::new("/Delete"),
            OsStr::new("/TN"),
            OsStr::new(TASK_NAME),
            OsStr::new("/F"),
        ],
    )?;
    Ok(format!("deleted the scheduled task {TASK_NAME}"))
}
