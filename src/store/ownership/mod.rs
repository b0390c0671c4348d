//! Who can change a file or folder: the check behind every trust anchor (the
//! INI, the keys, known_hosts), the state folder and the store root. Only
//! administrators (root; Administrators, SYSTEM or TrustedInstaller on
//! Windows) may own or write them, as OpenSSH's StrictModes has it for its own
//! files. One file per OS with the same functions, chosen here.

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

#[cfg(windows)]
pub(crate) use imp::is_admin_account;
pub(crate) use imp::{
    check_open, check_open_owner, check_path, check_path_owner, create_private_dir,
    create_store_dir, make_private, open_regular_nofollow, protect_dir,
};

/// Why a path is not under administrators' sole control.
#[derive(Debug, thiserror::Error)]
#[error("{} {why}", path.display())]
pub struct NotAdminOnly {
    /// The file or folder at fault (an ancestor of the one asked about, perhaps).
    pub path: std::path::PathBuf,
    /// What makes it unsafe: its owner, who may write it, that it is a link.
    pub why: String,
}
