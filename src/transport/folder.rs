//! A published repository in a local folder: a USB drive, a share, the demo's
//! fallback. The same verification applies as for a server.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::reports::ReportFolder;
use super::source::{Source, TransportError, TransportErrorKind};

/// A repository folder on this machine.
#[derive(Clone, Debug)]
pub struct FolderSource {
    root: PathBuf,
}

impl FolderSource {
    /// Reads the repository at `root`, which must be a folder.
    pub fn new(root: &Path) -> Result<FolderSource, TransportError> {
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

impl Source for FolderSource {
    type File = (PathBuf, Mutex<File>);

    async fn open(&self, path: &str) -> Result<Self::File, TransportError> {
        let full = self.resolve(path);
        let file = File::open(&full).map_err(|e| file_error(&full, &e))?;
        Ok((full, Mutex::new(file)))
    }

    async fn read_at(
        &self,
        (path, file): &Self::File,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        let mut file = file
            .lock()
            .map_err(|_| TransportError::new(TransportErrorKind::Other, "file lock poisoned"))?;
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
    }

    async fn close(&self, _file: Self::File) {}
}

fn write_error(path: &Path, e: &std::io::Error) -> TransportError {
    io_error("write", path, e)
}

/// A reports folder on this machine or a share: plain file writes.
impl ReportFolder for FolderSource {
    type Writer = (PathBuf, Mutex<File>);

    async fn create(&self, path: &str, append: bool) -> Result<Self::Writer, TransportError> {
        let full = PathBuf::from(path);
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file = options.open(&full).map_err(|e| write_error(&full, &e))?;
        Ok((full, Mutex::new(file)))
    }

    async fn write_at(
        &self,
        (path, file): &Self::Writer,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        let mut file = file
            .lock()
            .map_err(|_| TransportError::new(TransportErrorKind::Other, "file lock poisoned"))?;
        // An append handle writes at the end whatever the position says.
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.write_all(data))
            .map_err(|e| write_error(path, &e))
    }

    async fn finish(&self, (path, file): Self::Writer) -> Result<(), TransportError> {
        let file = file
            .into_inner()
            .map_err(|_| TransportError::new(TransportErrorKind::Other, "file lock poisoned"))?;
        file.sync_all().map_err(|e| write_error(&path, &e))
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        std::fs::rename(from, to).map_err(|e| write_error(Path::new(to), &e))
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        std::fs::remove_file(path).map_err(|e| write_error(Path::new(path), &e))
    }
}
