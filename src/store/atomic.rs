//! Small files of the `state` folder written so a crash leaves the old or the
//! new content, never a mix.

use std::io::Write;
use std::path::Path;

use super::StoreError;

/// Writes `bytes` to `dir/name` through a temporary file, flushed, then renamed.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    write().map_err(|e| StoreError::io("write", &temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| StoreError::io("rename into place", &path, e))
}
