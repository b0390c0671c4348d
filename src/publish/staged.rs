//! A record written and flushed under a temporary name in its final folder, then
//! renamed into place: what every file the publisher writes under `.wpkgsync/`
//! goes through, so a reader never sees half a record.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::PublishError;
use super::imp;

/// A record written and flushed under a temporary name in its final folder,
/// waiting to be renamed into place; removed if dropped before that.
pub(super) struct Staged {
    /// The temporary file, deleted on drop unless persisted.
    file: tempfile::NamedTempFile,
    /// The record's final path.
    target: PathBuf,
}

impl Staged {
    /// Writes `bytes` to a world-readable temporary file beside `dir/name`.
    pub(super) fn new(dir: &Path, name: &str, bytes: &[u8]) -> Result<Staged, PublishError> {
        let target = dir.join(name);
        let write_error = |source| PublishError::Write {
            path: target.clone(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(&format!(".{name}.tmp-{}-", std::process::id()))
            .tempfile_in(dir)
            .map_err(write_error)?;
        imp::share_file(file.as_file()).map_err(|source| PublishError::Permissions {
            path: target.clone(),
            source,
        })?;
        file.write_all(bytes).map_err(write_error)?;
        file.as_file().sync_all().map_err(write_error)?;
        Ok(Staged { file, target })
    }

    /// Renames the file into place, replacing the previous one atomically.
    pub(super) fn persist(self) -> Result<(), PublishError> {
        let target = self.target;
        self.file
            .persist(&target)
            .map_err(|err| PublishError::Rename {
                path: target.clone(),
                source: err.error,
            })?;
        Ok(())
    }
}
