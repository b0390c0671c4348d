//! One sync at a time: an operating-system lock on a file in the `state`
//! folder, held for the whole run. The operating system releases it when the
//! process ends, however it ends, so a killed run never blocks the next.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use super::StoreError;
use super::state_dir::{StateDir, StateFile};

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another wpkgsync sync holds the lock {}", .0.display())]
    Busy(PathBuf),
    /// The lock file cannot be created or locked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RunLock {
    /// Takes the lock in `dir` without waiting.
    pub(crate) fn acquire(dir: &StateDir) -> Result<RunLock, LockError> {
        std::fs::create_dir_all(dir.path()).map_err(|e| StoreError::io("create", dir.path(), e))?;
        let path = dir.file(StateFile::Lock);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        // Readable by no one else: a user able to open it could hold a
        // shared lock and block every sync.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(|e| StoreError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(LockError::Busy(path)),
            Err(TryLockError::Error(e)) => Err(StoreError::io("lock", &path, e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::StateDir;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(&StateDir::new(dir.path())).unwrap();
        assert!(matches!(
            RunLock::acquire(&StateDir::new(dir.path())),
            Err(LockError::Busy(_))
        ));
        drop(first);
        assert!(RunLock::acquire(&StateDir::new(dir.path())).is_ok());
    }
}
