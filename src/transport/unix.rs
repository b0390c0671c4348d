//! Unix side of opening files of a folder source and a local reports folder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens a repository file for reading without waiting: a FIFO opens at once
/// (instead of hanging until a writer appears) and is then refused by the
/// caller's regular-file check. O_NOCTTY keeps a terminal device from
/// becoming the process's controlling terminal.
pub(super) fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// Creates `path` for writing, failing if anything exists there, a link
/// included (O_EXCL, and O_NOFOLLOW so even a dangling link is refused).
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .mode(0o644)
        .open(path)
}

/// Opens `path` for appending, created if missing, refusing a link there.
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .mode(0o644)
        .open(path)
}
