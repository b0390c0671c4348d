//! Ownership and permission repair of the local store after every run: WPKG
//! runs the installers there as SYSTEM, so whoever can write there owns the
//! machine. One file per OS with the same function, chosen here.

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub(crate) mod before;

pub(crate) use imp::{repair, repair_listing};

use super::path::StorePath;

/// What a repair changed: store paths whose owner, mode or
/// DACL was not as it should be, or that it unlinked. Until they are hashed
/// again, such files are not taken as unchanged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Repaired {
    /// The paths, sorted.
    pub paths: Vec<StorePath>,
    /// The repair failed part way: nothing is known of what it did not reach.
    pub everything: bool,
}

/// Why the repair failed (exit 103 unless a download failure wins).
#[derive(Debug, thiserror::Error)]
#[error("failed to repair ownership and permissions of {path}: {why}")]
pub(crate) struct AclError {
    /// The file or folder at fault.
    pub path: std::path::PathBuf,
    /// What the system said.
    pub why: String,
}
