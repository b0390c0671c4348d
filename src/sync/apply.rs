//! Carrying out a plan: deletions first, then downloads with atomic writes.
//!
//! Every download goes to a temporary file beside its target, is checked against
//! the manifest's sha256, gets the manifest's mtime, is flushed to disk, and only
//! then renamed over the target. A file that fails keeps its old copy and is
//! recorded; the run goes on. Losing the server or the local disk ends the run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use futures::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::events::Events;
use super::inventory::TEMP_PREFIX;
use super::plan::Plan;
use crate::manifest::verify::VerifiedFile;
use crate::store::StoreError;
use crate::transport::{Source, Throttled, TransportError, TransportErrorKind};

/// Read requests kept in flight for one file.
const REQUESTS_IN_FLIGHT: usize = 32;
/// Files downloaded at once, so small files do not wait on each other's round trips.
const FILES_IN_FLIGHT: usize = 4;

/// What a run did to the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files downloaded, verified and put in place.
    pub fetched: usize,
    /// Store paths deleted.
    pub deleted: usize,
    /// Bytes read from the source for content.
    pub bytes: u64,
    /// Paths that could not be fetched, verified or deleted, with the reason.
    pub failures: Vec<(String, String)>,
}

/// A failure that ends the run.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The local disk refused a write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source went away.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// How one file's download ended, when it did not succeed.
enum FileError {
    /// Only this file is affected.
    Failed(String),
    /// The whole run is.
    Fatal(ApplyError),
}

impl From<TransportError> for FileError {
    fn from(e: TransportError) -> FileError {
        match e.kind() {
            TransportErrorKind::Unreachable | TransportErrorKind::Timeout => {
                FileError::Fatal(ApplyError::Transport(e))
            }
            _ => FileError::Failed(e.to_string()),
        }
    }
}

impl From<StoreError> for FileError {
    fn from(e: StoreError) -> FileError {
        FileError::Fatal(ApplyError::Store(e))
    }
}

/// Applies `plan` to the store at `root`.
pub async fn apply<S: Source>(
    source: &Throttled<S>,
    root: &Path,
    plan: &Plan<'_>,
    events: &dyn Events,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    std::fs::create_dir_all(root).map_err(|e| StoreError::io("create the store", root, e))?;

    for path in &plan.delete {
        let full = local_path(root, path);
        match remove(&full) {
            Ok(()) => {
                applied.deleted += 1;
                events.deleted(path);
            }
            Err(e) => {
                let why = format!("failed to delete {}: {e}", full.display());
                events.file_failed(path, &why);
                applied.failures.push((path.clone(), why));
            }
        }
    }

    let results: Vec<(&VerifiedFile, Result<u64, FileError>)> = stream::iter(plan.fetch.iter())
        .map(|file| async move { (*file, fetch(source, root, file, events).await) })
        .buffer_unordered(FILES_IN_FLIGHT)
        .collect()
        .await;
    for (file, result) in results {
        match result {
            Ok(bytes) => {
                applied.fetched += 1;
                applied.bytes += bytes;
                events.file_done(file.path.as_str());
            }
            Err(FileError::Failed(why)) => {
                events.file_failed(file.path.as_str(), &why);
                applied.failures.push((file.path.to_string(), why));
            }
            Err(FileError::Fatal(e)) => return Err(e),
        }
    }
    applied.failures.sort();
    Ok(applied)
}

/// Removes temporary files an interrupted run left behind.
pub fn remove_temps(temps: &[PathBuf]) -> Result<(), StoreError> {
    for temp in temps {
        match std::fs::remove_file(temp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", temp, e)),
        }
    }
    Ok(())
}

/// The store path of a `/`-separated relative path from the inventory.
fn local_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/')
        .fold(root.to_path_buf(), |acc, part| acc.join(part))
}

fn remove(full: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(full)?;
    if meta.is_dir() {
        std::fs::remove_dir_all(full)
    } else {
        std::fs::remove_file(full)
    }
}

/// Downloads one file into place; returns the bytes read.
async fn fetch<S: Source>(
    source: &Throttled<S>,
    root: &Path,
    file: &VerifiedFile,
    events: &dyn Events,
) -> Result<u64, FileError> {
    events.file_started(file.path.as_str(), file.size);
    let target = file.path.under(root);
    let parent = target.parent().unwrap_or(root);
    std::fs::create_dir_all(parent).map_err(|e| StoreError::io("create folder", parent, e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = TempFile {
        path: parent.join(format!("{TEMP_PREFIX}{name}")),
        placed: false,
    };
    let bytes = download(source, file, &temp.path, events).await?;
    finish(file, &temp.path, &target)?;
    temp.placed = true;
    Ok(bytes)
}

/// A download's temporary file, removed when dropped unless it was renamed into
/// place: on failure, and when the timeout cuts the run short mid-download,
/// nothing half-written stays in the store.
struct TempFile {
    path: PathBuf,
    placed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Reads the file with many requests in flight into `temp`, hashing in order.
async fn download<S: Source>(
    source: &Throttled<S>,
    file: &VerifiedFile,
    temp: &Path,
    events: &dyn Events,
) -> Result<u64, FileError> {
    let mut out = std::fs::File::create(temp).map_err(|e| StoreError::io("create", temp, e))?;
    let remote = source.open(file.path.as_str()).await?;
    let request = u64::from(source.request_size());
    let offsets = (0..file.size.div_ceil(request)).map(|i| i * request);
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut chunks = stream::iter(offsets)
        .map(|offset| {
            // Endless data: never ask for more than the manifest's size.
            let len = request.min(file.size - offset) as u32;
            read_exact_at(source, &remote, offset, len)
        })
        .buffered(REQUESTS_IN_FLIGHT);
    let outcome: Result<(), FileError> = async {
        while let Some(chunk) = chunks.try_next().await? {
            out.write_all(&chunk)
                .map_err(|e| StoreError::io("write", temp, e))?;
            hasher.update(&chunk);
            received += chunk.len() as u64;
            events.bytes_moved(chunk.len() as u64);
            if received < file.size && chunk.len() as u64 != request {
                return Err(FileError::Failed(format!(
                    "{} is shorter on the source than its manifest size {}",
                    file.path, file.size
                )));
            }
        }
        Ok(())
    }
    .await;
    drop(chunks);
    source.close(remote).await;
    outcome?;
    if received != file.size {
        return Err(FileError::Failed(format!(
            "{} is shorter on the source than its manifest size {}",
            file.path, file.size
        )));
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != file.sha256 {
        return Err(FileError::Failed(format!(
            "{} does not match its manifest sha256",
            file.path
        )));
    }
    let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(file.mtime).unwrap_or(0));
    out.set_modified(mtime)
        .map_err(|e| StoreError::io("set the time of", temp, e))?;
    out.sync_all()
        .map_err(|e| StoreError::io("flush", temp, e))?;
    Ok(received)
}

/// Reads `len` bytes at `offset`, asking again after a short answer; fewer only
/// at the end of the file.
async fn read_exact_at<S: Source>(
    source: &Throttled<S>,
    remote: &S::File,
    offset: u64,
    len: u32,
) -> Result<Vec<u8>, TransportError> {
    let mut data = source.read_at(remote, offset, len).await?;
    while !data.is_empty() && (data.len() as u32) < len {
        let more = source
            .read_at(remote, offset + data.len() as u64, len - data.len() as u32)
            .await?;
        if more.is_empty() {
            break;
        }
        data.extend_from_slice(&more);
    }
    Ok(data)
}

/// Puts a verified temporary file in place of its target.
fn finish(file: &VerifiedFile, temp: &Path, target: &Path) -> Result<(), FileError> {
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        return Err(FileError::Failed(format!(
            "{} is a folder in the store",
            file.path
        )));
    }
    std::fs::rename(temp, target)
        .map_err(|e| FileError::from(StoreError::io("rename into place", target, e)))
}
