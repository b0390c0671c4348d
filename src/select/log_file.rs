//! Reading the WPKG log: the file WPKG writes as SYSTEM, which decides what
//! this machine mirrors and which goes to the reports folder that every
//! client reads. It is opened without following a link, used only when an
//! administrator owns it, and only its last part is read, by seeking.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::store::ownership;

/// The most of the log that is read: its end, where the last run is.
pub const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// Why the log could not be used.
#[derive(Debug, thiserror::Error)]
#[error("failed to read the WPKG log {}: {why}", path.display())]
pub struct LogError {
    /// The log's path.
    pub path: PathBuf,
    /// What was wrong.
    pub why: String,
}

/// The last `max` bytes of the log at `path`, starting after a line break
/// when the cut falls inside a line; `None` when there is no log yet.
pub(crate) fn read_tail(path: &Path, max: u64) -> Result<Option<Vec<u8>>, LogError> {
    let fail = |why: String| LogError {
        path: path.to_path_buf(),
        why,
    };
    let mut file = match ownership::open_regular_nofollow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    ownership::check_open_owner(&file, path).map_err(|e| fail(e.why))?;
    let len = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    // One byte before the cut too: a line break there means the cut falls
    // on a line start and nothing needs dropping.
    let start = len.saturating_sub(max).saturating_sub(1);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| fail(e.to_string()))?;
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| fail(e.to_string()))?;
    if len > max {
        match data.iter().position(|&b| b == b'\n') {
            Some(newline) => drop(data.drain(..=newline)),
            None => drop(data.drain(..1)),
        }
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_end_from_a_line_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wpkg.log");
        std::fs::write(&path, b"first\nsecond\nthird\n").unwrap();
        assert_eq!(
            read_tail(&path, 100).unwrap().unwrap(),
            b"first\nsecond\nthird\n"
        );
        assert_eq!(read_tail(&path, 15).unwrap().unwrap(), b"second\nthird\n");
        assert_eq!(read_tail(&path, 13).unwrap().unwrap(), b"second\nthird\n");
        assert_eq!(read_tail(&path, 12).unwrap().unwrap(), b"third\n");
        std::fs::write(&path, b"no breaks at all").unwrap();
        assert_eq!(read_tail(&path, 5).unwrap().unwrap(), b"t all");
        assert_eq!(read_tail(&dir.path().join("none.log"), 5).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_or_foreign_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("shadow");
        std::fs::write(&secret, b"root only").unwrap();
        let link = dir.path().join("wpkg.log");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = read_tail(&link, 100).unwrap_err();
        assert!(err.why.contains("link"), "{err}");

        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let foreign = dir.path().join("foreign.log");
            std::fs::write(&foreign, b"x").unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
            let err = read_tail(&foreign, 100).unwrap_err();
            assert!(err.why.contains("uid 65534"), "{err}");
        }
    }
}
