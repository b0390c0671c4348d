//! Windows side of opening files of a folder source and a local reports folder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Opens the link itself, not what it points to.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// A symbolic link, junction or other reparse point.
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0000_0400;

/// Opens a repository file for reading. A folder holds no FIFOs on Windows;
/// the caller's regular-file check refuses anything else.
pub(super) fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

/// Creates `path` for writing, failing if anything exists there, a link
/// included (CREATE_NEW fails on any existing name).
pub(super) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// Opens `path` for appending, created if missing, refusing a link there.
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    if file.metadata()?.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to write through a link",
        ));
    }
    Ok(file)
}
