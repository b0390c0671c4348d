//! A published repository in a local folder: a USB drive, a share, the demo's
//! fallback. The same verification applies as for a server.
//!
//! A share may hang and a folder may hold a FIFO or a device, so every file
//! operation runs on a blocking thread, never on the runtime's own threads:
//! the session's watchdog ([`super::Progress`]) ends a request that does not
//! come back, as it does for a silent server. Only regular files are read.
//!
//! As a reports folder it writes without following links: temporary files
//! are created exclusively (never an existing name, never through a link),
//! the run log is appended to only if it is not a link, and a reports folder
//! that is itself a link is refused.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::imp;
use super::reports::ReportFolder;
use super::source::{Source, TransportError, TransportErrorKind};

/// A repository folder on this machine.
#[derive(Clone, Debug)]
pub(crate) struct FolderSource {
    root: PathBuf,
}

/// An open file of a folder, shared with the blocking thread that reads or
/// writes it.
pub(super) type FolderFile = Arc<(PathBuf, Mutex<File>)>;

impl FolderSource {
    /// Reads the repository at `root`, which must be a folder.
    pub(crate) fn new(root: &Path) -> Result<FolderSource, TransportError> {
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => Ok(FolderSource {
                root: root.to_owned(),
            }),
            Ok(_) => Err(TransportError::new(
                TransportErrorKind::Unreachable,
                format!("repository {} is not a folder", root.display()),
            )),
            Err(e) => Err(TransportError::new(
                TransportErrorKind::Unreachable,
                format!("repository folder {} cannot be read: {e}", root.display()),
            )),
        }
    }

    /// [`FolderSource::new`] on a blocking thread, given up after `timeout`:
    /// a share that hangs on its first look ends the run like a server that
    /// does not answer.
    pub(crate) async fn connect(
        root: &Path,
        timeout: std::time::Duration,
    ) -> Result<FolderSource, TransportError> {
        let owned = root.to_owned();
        let looking = blocking(move || FolderSource::new(&owned));
        match tokio::time::timeout(timeout, looking).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::new(
                TransportErrorKind::Timeout,
                format!(
                    "no progress: repository folder {} did not answer within {}s",
                    root.display(),
                    timeout.as_secs()
                ),
            )),
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        path.split('/')
            .fold(self.root.clone(), |acc, part| acc.join(part))
    }
}

/// `verb` is "read" or "write", for the message.
fn io_error(verb: &str, path: &Path, e: &std::io::Error) -> TransportError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => TransportErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => TransportErrorKind::PermissionDenied,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, format!("failed to {verb} {}: {e}", path.display()))
}

fn file_error(path: &Path, e: &std::io::Error) -> TransportError {
    io_error("read", path, e)
}

fn write_error(path: &Path, e: &std::io::Error) -> TransportError {
    io_error("write", path, e)
}

/// Runs `work` on a blocking thread. If the watchdog gives up on it, the
/// thread is left to finish or hang on its own; `main` does not wait for it.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TransportError> + Send + 'static,
) -> Result<T, TransportError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(TransportError::new(
            TransportErrorKind::Other,
            format!("a folder operation failed: {e}"),
        ))
    })
}

/// Opens a repository file: a regular file only, never a FIFO, device,
/// socket or folder.
fn open_regular(path: &Path) -> Result<File, TransportError> {
    let file = imp::open_for_reading(path).map_err(|e| file_error(path, &e))?;
    let meta = file.metadata().map_err(|e| file_error(path, &e))?;
    if !meta.is_file() {
        return Err(TransportError::new(
            TransportErrorKind::Other,
            format!("refusing to read {}: not a regular file", path.display()),
        ));
    }
    Ok(file)
}

fn locked(file: &Mutex<File>) -> Result<std::sync::MutexGuard<'_, File>, TransportError> {
    file.lock()
        .map_err(|_| TransportError::new(TransportErrorKind::Other, "file lock poisoned"))
}

impl Source for FolderSource {
    type File = FolderFile;

    async fn open(&self, path: &str) -> Result<FolderFile, TransportError> {
        let full = self.resolve(path);
        blocking(move || {
            let file = open_regular(&full)?;
            Ok(Arc::new((full, Mutex::new(file))))
        })
        .await
    }

    async fn read_at(
        &self,
        file: &FolderFile,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        let file = Arc::clone(file);
        blocking(move || {
            let (path, file) = &*file;
            let mut file = locked(file)?;
            let mut buffer = vec![0; len as usize];
            let result = file.seek(SeekFrom::Start(offset)).and_then(|_| {
                let mut filled = 0;
                while filled < buffer.len() {
                    match file.read(&mut buffer[filled..])? {
                        0 => break,
                        n => filled += n,
                    }
                }
                Ok(filled)
            });
            let filled = result.map_err(|e| file_error(path, &e))?;
            buffer.truncate(filled);
            Ok(buffer)
        })
        .await
    }

    async fn close(&self, _file: FolderFile) {}
}

/// Refuses a reports folder that is a link (or missing, or not a folder):
/// root must not be led to write somewhere else.
fn check_folder(path: &Path) -> Result<(), TransportError> {
    let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    match std::fs::symlink_metadata(folder) {
        Ok(meta) if meta.file_type().is_symlink() => Err(TransportError::new(
            TransportErrorKind::PermissionDenied,
            format!(
                "refusing the reports folder {}: it is a link",
                folder.display()
            ),
        )),
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(TransportError::new(
            TransportErrorKind::Other,
            format!("reports folder {} is not a folder", folder.display()),
        )),
        Err(e) => Err(write_error(folder, &e)),
    }
}

/// A reports folder on this machine or a share: plain file writes, none of
/// them through a link.
impl ReportFolder for FolderSource {
    type Writer = FolderFile;

    async fn create(&self, path: &str, append: bool) -> Result<FolderFile, TransportError> {
        let full = PathBuf::from(path);
        blocking(move || {
            check_folder(&full)?;
            let opened = if append {
                imp::open_append(&full)
            } else {
                imp::create_new(&full)
            };
            let file = opened.map_err(|e| write_error(&full, &e))?;
            // An append to a FIFO or device would block or go astray.
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    format!("refusing to write {}: not a regular file", full.display()),
                ));
            }
            Ok(Arc::new((full, Mutex::new(file))))
        })
        .await
    }

    async fn write_at(
        &self,
        file: &FolderFile,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let file = Arc::clone(file);
        let data = data.to_vec();
        blocking(move || {
            let (path, file) = &*file;
            let mut file = locked(file)?;
            // An append handle writes at the end whatever the position says.
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(&data))
                .map_err(|e| write_error(path, &e))
        })
        .await
    }

    async fn finish(&self, file: FolderFile) -> Result<(), TransportError> {
        blocking(move || {
            let (path, file) = &*file;
            locked(file)?.sync_all().map_err(|e| write_error(path, &e))
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        let (from, to) = (PathBuf::from(from), PathBuf::from(to));
        blocking(move || {
            check_folder(&to)?;
            // A rename replaces a link at `to` itself, never what it points to.
            std::fs::rename(&from, &to).map_err(|e| write_error(&to, &e))
        })
        .await
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        let path = PathBuf::from(path);
        blocking(move || std::fs::remove_file(&path).map_err(|e| write_error(&path, &e))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_the_repository_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `name` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        let source = FolderSource::new(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let error = runtime().block_on(source.open("pipe")).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(error.to_string().contains("not a regular file"), "{error}");
        assert!(error.to_string().contains("pipe"), "{error}");
    }

    #[test]
    fn a_regular_file_reads_in_ranges() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/b.txt"), b"0123456789").unwrap();
        let source = FolderSource::new(dir.path()).unwrap();
        let read = runtime().block_on(async {
            let file = source.open("a/b.txt").await?;
            let middle = source.read_at(&file, 3, 4).await?;
            let end = source.read_at(&file, 8, 10).await?;
            source.close(file).await;
            Ok::<_, TransportError>((middle, end))
        });
        assert_eq!(read.unwrap(), (b"3456".to_vec(), b"89".to_vec()));
    }

    #[test]
    fn a_folder_is_not_read_as_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let source = FolderSource::new(dir.path()).unwrap();
        let error = runtime().block_on(source.open("sub")).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
