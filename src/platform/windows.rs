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

/// Whether the process token is elevated: an administrator past UAC, or SYSTEM
/// as Task Scheduler runs the task.
pub fn is_administrator() -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::Security::{
        GetTokenInformation, TOKEN_ELEVATION, TOKEN_QUERY, TokenElevation,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no closing;
    // `token` is a valid out pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return false;
    }
    let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
    let mut written = 0u32;
    // SAFETY: `token` was opened above with TOKEN_QUERY; the buffer is a
    // TOKEN_ELEVATION of the size passed.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenElevation,
            (&mut elevation as *mut TOKEN_ELEVATION).cast(),
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut written,
        )
    };
    // SAFETY: `token` is an open handle owned here.
    unsafe { CloseHandle(token) };
    ok != 0 && elevation.TokenIsElevated != 0
}
