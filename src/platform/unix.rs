//! Unix defaults: configuration in `/etc/wpkgsync`, data in `/var/lib`.

use super::PathDefaults;
use std::path::PathBuf;

/// The INI file read when `--config` is not given.
pub fn default_ini_path() -> PathBuf {
    PathBuf::from("/etc/wpkgsync/wpkgsync.ini")
}

/// Default paths of DESIGN's INI table, in their Unix places.
pub fn defaults() -> PathDefaults {
    PathDefaults {
        identity: "/etc/wpkgsync/ssh/wpkgsyncuser.id",
        known_hosts: "/etc/wpkgsync/ssh/known_hosts",
        local: "/var/lib/wpkg",
        wpkg_log: "/var/log/wpkg-%COMPUTERNAME%.log",
        state: "/var/lib/wpkgsync",
        publisher_key: "/etc/wpkgsync/publisher.pem",
    }
}

/// `%COMPUTERNAME%` when set (tests, Wine), otherwise the kernel's host name.
pub fn computer_name() -> String {
    if let Ok(name) = std::env::var("COMPUTERNAME") {
        return name;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether the process runs as root (effective uid 0), which the store's
/// ownership repair needs.
pub fn is_administrator() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
