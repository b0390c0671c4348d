//! Windows side of the publisher's file modes and file identities.
//!
//! The server is normally Unix, but an administrator may publish from a Windows
//! share. Access there comes from the folder's inherited ACL: the private key is
//! created with a plain `create_new`, and the ProgramData ACL repair (a later
//! issue, `store/` windows module) is what narrows it to administrators. The
//! signatures are identical to `unix.rs`.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// Creates a new file; fails if `path` exists. It inherits the folder's ACL,
/// which the ProgramData ACL repair restricts to administrators.
pub(super) fn create_owner_only(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Nothing to do: the folder's inherited ACL decides who may read the file.
pub(super) fn share_file(_file: &File) -> io::Result<()> {
    Ok(())
}

/// Nothing to do: the folder's inherited ACL decides who may read it.
pub(super) fn share_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// None: the NTFS file index is not in stable `std`, so size and mtime alone
/// decide whether a cached hash is reused.
pub(super) fn file_identity(_meta: &Metadata) -> Option<String> {
    None
}

/// Nothing to do: a folder cannot be opened as a `File` without extra flags, and
/// NTFS journals renames.
pub(super) fn sync_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Names a file that is neither a regular file, a folder nor a link, for warnings.
pub(super) fn special_kind(_file_type: &FileType) -> &'static str {
    "special file"
}
