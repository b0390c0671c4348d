//! Windows defaults: everything under `%ProgramData%`, as the old batch file kept it.

use super::PathDefaults;
use std::path::PathBuf;

/// The INI file read when `/config` is not given.
pub fn default_ini_path() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
    PathBuf::from(base).join("wpkgsync").join("wpkgsync.ini")
}

/// Default paths of DESIGN's INI table.
pub fn defaults() -> PathDefaults {
    PathDefaults {
        identity: r"%ProgramData%\wpkgsync\.ssh\wpkgsyncuser.id",
        known_hosts: r"%ProgramData%\wpkgsync\.ssh\known_hosts",
        local: r"%ProgramData%\wpkg",
        wpkg_log: r"%SystemDrive%\wpkg-%COMPUTERNAME%.log",
        state: r"%ProgramData%\wpkgsync",
        publisher_key: r"%ProgramData%\wpkgsync\publisher.pem",
    }
}

/// `%COMPUTERNAME%`, which Windows always sets.
pub fn computer_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "UNKNOWN".into())
}
