//! What differs between Windows and Unix outside the store: default paths, the
//! computer name and the administrator check. One file per OS with the same functions, chosen here.

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

pub use imp::{computer_name, default_ini_path, defaults, is_administrator};

/// Per-OS default values of the INI keys that name paths. They may hold `%VAR%`
/// references, expanded like any value the administrator writes.
#[derive(Clone, Copy, Debug)]
pub struct PathDefaults {
    /// `server.identity`.
    pub identity: &'static str,
    /// `server.known_hosts`.
    pub known_hosts: &'static str,
    /// `sync.local`.
    pub local: &'static str,
    /// `sync.wpkg_log`.
    pub wpkg_log: &'static str,
    /// `sync.state`.
    pub state: &'static str,
    /// `trust.publisher_key`.
    pub publisher_key: &'static str,
}
