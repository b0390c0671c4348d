//! Small files of the `state` folder written so a crash leaves the old or the
//! new content, never a mix: through a temporary file created exclusively,
//! under an unpredictable name, readable by its owner alone.

use std::io::Write;
use std::path::Path;

use rand::Rng;

use super::StoreError;

/// Writes `bytes` to `dir/name` through a temporary file, flushed, then renamed.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let path = dir.join(name);
    let temp = dir.join(format!(
        ".{name}.{:016x}.tmp",
        rand::thread_rng().r#gen::<u64>()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = private_new_file(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&temp);
        return Err(StoreError::io("write", &temp, e));
    }
    std::fs::rename(&temp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        StoreError::io("rename into place", &path, e)
    })
}

/// Creates `path`, which must not exist yet (a link there is not followed).
fn private_new_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

// Its tests need Unix permissions and processes.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_not_written_through_and_files_are_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // The old fixed temporary name, planted as a link.
        std::os::unix::fs::symlink(&victim, dir.path().join(".state.json.tmp")).unwrap();
        write_atomically(dir.path(), "state.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(dir.path().join("state.json")).unwrap(), b"{}");
        let mode = std::fs::metadata(dir.path().join("state.json"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(private_new_file(&dir.path().join(".state.json.tmp")).is_err());
    }
}
