//! Unix side of the publisher's file modes and file identities.
//!
//! The private key is created 0600 in the same call that creates it, so it is
//! never readable by others, not even for an instant. Records under `.wpkgsync`
//! are made world-readable explicitly, whatever the umask, because the chrooted
//! SFTP account that serves them to clients is not the publisher.

use std::fs::{self, File, FileType, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates a new file readable and writable by its owner only; fails if `path` exists.
pub(super) fn create_owner_only(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only have removed bits; this makes the mode exactly 0600.
    file.set_permissions(Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Makes a file the publisher wrote readable by everyone (0644).
pub(super) fn share_file(file: &File) -> io::Result<()> {
    file.set_permissions(Permissions::from_mode(0o644))
}

/// Adds read and search for everyone to a folder, keeping its other bits; does
/// nothing when they are already there, so a folder owned by another account
/// that is already fine is no error.
pub(super) fn share_dir(path: &Path) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
    if mode & 0o755 == 0o755 {
        return Ok(());
    }
    fs::set_permissions(path, Permissions::from_mode(mode | 0o755))
}

/// Device and inode of a file: a file replaced by a rename (as rsync and most
/// editors do) gets a new one even when it keeps its size and mtime.
pub(super) fn file_identity(meta: &Metadata) -> Option<String> {
    Some(format!("{}:{}", meta.dev(), meta.ino()))
}

/// Flushes a folder's entries, so the renames just made survive a crash.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Names a file that is neither a regular file, a folder nor a link, for warnings.
pub(super) fn special_kind(file_type: &FileType) -> &'static str {
    if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}
