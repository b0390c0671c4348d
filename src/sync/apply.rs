//! Carrying out a plan: clear what is in the way, download, then delete.
//!
//! Every download goes to a temporary file beside its target, is checked against
//! the manifest's sha256, gets the manifest's mtime, is flushed to disk, and only
//! then renamed over the target; the files verified meanwhile are flushed
//! together, so the disk commits them at once. Every file operation goes through the store's
//! handle ([`StoreDir`]): nothing is followed out of the store, temporary files
//! are new and unpredictable, and only the very file verified is renamed. A file is assembled from the cheapest source
//! that has it: a verified local file with the same content (moved or copied on
//! the server), else the blocks of the old copy and of a partial download that a
//! block signature points to plus the missing ranges, else the whole file. A
//! wrong result falls back to the whole file once; a second failure keeps the
//! old copy and is recorded, and the run goes on. Losing the server or the local
//! disk ends the run.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use futures::stream::{self, StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::events::Events;
use super::inventory::{Inventory, LocalKind};
use super::plan::Plan;
use super::signatures::BundledSignatures;
use super::writeback::Writeback;
use crate::delta::matching::BlockMap;
use crate::delta::plan::{Piece, plan as plan_pieces, remote_bytes};
use crate::delta::signature;
use crate::manifest::path::RelPath;
use crate::manifest::verify::{SignatureLocation, VerifiedFile, parse_sha256};
use crate::store::StoreError;
use crate::store::dir::StoreDir;
use crate::store::index::StoreIndex;
use crate::store::path::StorePath;
use crate::transport::{Source, Throttled, TransportError, TransportErrorKind};

/// Read requests kept in flight for one file.
const REQUESTS_IN_FLIGHT: usize = 32;
/// Files downloaded at once, so small files do not wait on each other's round trips.
const FILES_IN_FLIGHT: usize = 16;
/// Verified files flushed and renamed at once, at most; as many again wait.
const PLACED_AT_ONCE: usize = 64;

/// What a run did to the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    /// Files verified and put in place.
    pub fetched: usize,
    /// Their store paths.
    pub placed: std::collections::HashSet<RelPath>,
    /// Store paths deleted.
    pub deleted: usize,
    /// Bytes read from the source: content ranges and block signatures.
    pub bytes: u64,
    /// Paths that could not be fetched, verified or deleted, with the reason:
    /// manifest paths and whatever else was found in the store.
    pub failures: Vec<(StorePath, String)>,
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
    /// The bytes were wrong, the sources that served them are out of the
    /// run, and another may serve the file.
    Rejected(String),
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

/// Local files whose content is known: verified by an earlier run and
/// unchanged since (same size, mtime and identity), by sha256.
pub(crate) struct KnownContent(HashMap<[u8; 32], RelPath>);

impl KnownContent {
    /// Files of `index` that still match it in `inventory`, except those this
    /// run replaces (their content is about to change) and those the repair
    /// had to fix.
    pub(crate) fn new(index: &StoreIndex, inventory: &Inventory, plan: &Plan<'_>) -> KnownContent {
        let replaced: std::collections::HashSet<&str> =
            plan.fetch.iter().map(|f| f.path().as_str()).collect();
        let mut known = HashMap::new();
        for (path, entry) in &index.files {
            let Some(local) = inventory.entries.get(path.as_str()) else {
                continue;
            };
            let unchanged = matches!(local.kind, LocalKind::File { size, mtime, id }
                if size == entry.size && mtime == entry.mtime && entry.id.is_none_or(|known| known == id));
            if unchanged
                && !replaced.contains(path.as_str())
                && !inventory.suspect.contains(path.as_str())
                && let Some(sha) = parse_sha256(&entry.sha256)
            {
                known.entry(sha).or_insert_with(|| path.clone());
            }
        }
        KnownContent(known)
    }

    /// A local file that holds content `sha256`.
    pub(crate) fn local_copy(&self, sha256: &[u8; 32]) -> Option<&RelPath> {
        self.0.get(sha256)
    }
}

/// Applies `plan` to `store`, whose contents were `inventory`.
pub(crate) async fn apply<S: Source>(
    source: &Throttled<S>,
    store: &StoreDir,
    inventory: &Inventory,
    plan: &Plan<'_>,
    known: &KnownContent,
    signatures: &BundledSignatures,
    events: &dyn Events,
) -> Result<Applied, ApplyError> {
    let mut applied = Applied::default();
    delete(store, &plan.clear, &mut applied, events);
    // A verified file leaves its download slot at once; the placing side takes
    // whatever has arrived, flushes it all together (the disk commits the
    // flushes at once) and renames each file once its own flush is done.
    let (verified, mut arrived) = tokio::sync::mpsc::channel(PLACED_AT_ONCE);
    let downloading = async move {
        let mut failed = Vec::new();
        let mut downloads = std::pin::pin!(
            stream::iter(plan.fetch.iter())
                .map(|file| async move {
                    let result =
                        fetch(source, store, inventory, file, known, signatures, events).await;
                    (*file, result)
                })
                .buffer_unordered(FILES_IN_FLIGHT)
        );
        while let Some((file, result)) = downloads.next().await {
            match result {
                // The placing side receives until this side is done.
                Ok(ready) => _ = verified.send((file, ready)).await,
                Err(e) => failed.push((file, Err(e))),
            }
        }
        failed
    };
    let placing = async {
        let mut placed = Vec::new();
        let mut batch = Vec::with_capacity(PLACED_AT_ONCE);
        while arrived.recv_many(&mut batch, PLACED_AT_ONCE).await > 0 {
            let batch = batch.drain(..).map(|(file, ready)| async move {
                (file, place(store, inventory, file, ready).await)
            });
            placed.extend(futures::future::join_all(batch).await);
        }
        placed
    };
    let (failed, placed): (Vec<(&VerifiedFile, Result<u64, FileError>)>, _) =
        tokio::join!(downloading, placing);
    for (file, result) in placed.into_iter().chain(failed) {
        match result {
            Ok(bytes) => {
                applied.fetched += 1;
                applied.placed.insert(file.path().clone());
                applied.bytes += bytes;
                events.file_done(file.path().as_str());
            }
            Err(FileError::Failed(why) | FileError::Rejected(why)) => {
                events.file_failed(file.path().as_str(), &why);
                applied.failures.push((file.path().into(), why));
            }
            Err(FileError::Fatal(e)) => return Err(e),
        }
    }
    delete(store, &plan.delete, &mut applied, events);
    applied.failures.sort();
    Ok(applied)
}

fn delete(store: &StoreDir, paths: &[StorePath], applied: &mut Applied, events: &dyn Events) {
    for path in paths {
        match store.remove(path) {
            Ok(()) => {
                applied.deleted += 1;
                events.deleted(path.as_str());
            }
            Err(e) => {
                let why = format!("failed to delete {}: {e}", store.full(path).display());
                events.file_failed(path.as_str(), &why);
                applied.failures.push((path.clone(), why));
            }
        }
    }
}

/// Removes the temporary files an interrupted run left behind.
pub(crate) fn remove_temps(store: &StoreDir, inventory: &Inventory) -> Result<(), StoreError> {
    for temp in &inventory.temps {
        match store.remove(&temp.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", &store.full(&temp.path), e)),
        }
    }
    Ok(())
}

/// A download's temporary file, created new beside its target. A wrong
/// result is discarded at once; a download cut short (timeout, lost server)
/// stays as a basis for the next run.
struct TempFile {
    /// Its store path.
    rel: StorePath,
    out: std::fs::File,
}

impl TempFile {
    fn create(store: &StoreDir, target: &RelPath) -> Result<TempFile, StoreError> {
        let (rel, out) = store.create_temp(target).map_err(|e| {
            StoreError::io("create a temporary file beside", &store.full(target), e)
        })?;
        Ok(TempFile { rel, out })
    }

    fn discard(self, store: &StoreDir) {
        drop(self.out);
        let _ = store.remove(&self.rel);
    }
}

/// Where one download may take its bytes from besides the source.
struct Bases {
    /// Open local files whose blocks may be reused: the old copy, a partial
    /// download; by store path.
    files: Vec<(StorePath, Mutex<std::fs::File>, u64)>,
}

impl Bases {
    /// The old copy of `file`, unless the repair had to fix it, and the
    /// partial download an interrupted run left of it, if any.
    fn gather(store: Option<&StoreDir>, inventory: &Inventory, file: &VerifiedFile) -> Bases {
        let Some(store) = store else {
            return Bases { files: Vec::new() };
        };
        let target = file.path();
        let old = (!inventory.suspect.contains(target.as_str())).then(|| target.into());
        let mut files = Vec::new();
        for rel in old.into_iter().chain(inventory.temp_of(target).cloned()) {
            if let Ok(opened) = store.open_regular(&rel) {
                let len = opened.metadata().map_or(0, |m| m.len());
                files.push((rel, Mutex::new(opened), len));
            }
        }
        Bases { files }
    }

    /// Fills `buffer` from basis `basis` at `offset`.
    fn read(&self, basis: usize, offset: u64, buffer: &mut [u8]) -> std::io::Result<()> {
        let (_, file, _) = self
            .files
            .get(basis)
            .ok_or_else(|| std::io::Error::other("no such basis"))?;
        let mut file = file
            .lock()
            .map_err(|_| std::io::Error::other("basis lock poisoned"))?;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buffer)
    }

    /// Closes the local files before the target is replaced: Windows refuses
    /// to rename over a file that is still open.
    fn close(self) {}
}

/// Removes the partial download a finished file no longer needs.
fn remove_partial(store: &StoreDir, inventory: &Inventory, file: &VerifiedFile) {
    if let Some(partial) = inventory.temp_of(file.path()) {
        let _ = store.remove(partial);
    }
}

/// A download verified in its temporary file, not yet in place.
struct Ready {
    temp: TempFile,
    /// Bytes read from the source for it.
    bytes: u64,
}

/// Downloads and verifies one file.
async fn fetch<S: Source>(
    source: &Throttled<S>,
    store: &StoreDir,
    inventory: &Inventory,
    file: &VerifiedFile,
    known: &KnownContent,
    signatures: &BundledSignatures,
    events: &dyn Events,
) -> Result<Ready, FileError> {
    events.file_started(file.path().as_str(), file.size());
    let target = file.path();
    if let Some(parent) = target.parent() {
        store
            .create_dir_all(&parent)
            .map_err(|e| StoreError::io("create folder", &store.full(&parent), e))?;
    }

    // The same content elsewhere in the store: a local copy, no download.
    if let Some(local) = known.local_copy(file.sha256()) {
        let temp = TempFile::create(store, target)?;
        if let Ok(temp) = copy_local(store, local, file, temp, events) {
            return Ok(Ready { temp, bytes: 0 });
        }
    }

    let bases = Bases::gather(Some(store), inventory, file);
    let mut fetched = 0;
    if let Some(signature) = file.block_signature()
        && !bases.files.is_empty()
    {
        let temp = TempFile::create(store, target)?;
        match download_delta(
            source,
            store,
            file,
            (signature, signatures),
            &bases,
            temp,
            events,
        )
        .await
        {
            Ok((bytes, temp)) => {
                bases.close();
                return Ok(Ready { temp, bytes });
            }
            // A lying signature or a basis that changed: fetch the whole file.
            Err((bytes, FileError::Failed(_) | FileError::Rejected(_))) => fetched += bytes,
            Err((_, fatal)) => return Err(fatal),
        }
    }
    bases.close();
    // Wrong bytes from one source: the next one serves the whole file.
    loop {
        let temp = TempFile::create(store, target)?;
        match download_whole(source, store, file, temp, events).await {
            Ok((bytes, temp)) => {
                return Ok(Ready {
                    temp,
                    bytes: fetched + bytes,
                });
            }
            Err(FileError::Rejected(_)) => fetched += file.size(),
            Err(e) => return Err(e),
        }
    }
}

/// Copies a local file of the same content to `temp` and verifies it.
fn copy_local(
    store: &StoreDir,
    local: &RelPath,
    file: &VerifiedFile,
    mut temp: TempFile,
    events: &dyn Events,
) -> Result<TempFile, FileError> {
    let copied = (|| -> std::io::Result<[u8; 32]> {
        let mut input = store.open_regular(local)?.take(file.size());
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = input.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            temp.out.write_all(&buffer[..n])?;
            hasher.update(&buffer[..n]);
            events.bytes_moved(n as u64);
        }
        Ok(hasher.finalize().into())
    })();
    match copied {
        Ok(digest) if digest == *file.sha256() => Ok(temp),
        _ => {
            temp.discard(store);
            Err(FileError::Failed(format!(
                "local copy of {} differs",
                file.path()
            )))
        }
    }
}

/// One remote piece of the new file as it arrives, in order.
type Chunk = Result<Vec<u8>, FileError>;

/// Fetches the block signature and matches the bases against it: the pieces
/// of the new file and the signature's size. A signature that cannot be used
/// is a per-file failure, so the caller fetches the whole file.
async fn delta_pieces<S: Source>(
    source: &Throttled<S>,
    file: &VerifiedFile,
    location: &SignatureLocation,
    signatures: &BundledSignatures,
    bases: &Bases,
) -> Result<(Vec<Piece>, u64), (u64, FileError)> {
    let signature_path = location.path();
    let bytes = match signatures.get(file) {
        Some(bytes) => bytes.to_vec(),
        None => read_signature(source, file, location)
            .await
            .map_err(|e| (0, e.into()))?,
    };
    let signature_bytes = bytes.len() as u64;
    let failed = |why: String| (signature_bytes, FileError::Failed(why));
    let signature = signature::parse(bytes, file.size())
        .map_err(|e| failed(format!("{signature_path}: {e}")))?;
    let mut map = BlockMap::new(file.size(), signature::block_size_for(file.size()));
    for (index, (path, basis, len)) in bases.files.iter().enumerate() {
        basis
            .lock()
            .map_err(|_| std::io::Error::other("basis lock poisoned"))
            .and_then(|mut basis| {
                map.match_basis(&signature, index, &mut *basis, *len)?;
                map.match_short_tail(&signature, index, &mut *basis, *len)
            })
            .map_err(|e| failed(format!("failed to read {path}: {e}")))?;
    }
    Ok((
        plan_pieces(&map, u64::from(source.request_size())),
        signature_bytes,
    ))
}

/// Assembles the file from the bases and the missing ranges.
async fn download_delta<S: Source>(
    source: &Throttled<S>,
    store: &StoreDir,
    file: &VerifiedFile,
    (signature, signatures): (&SignatureLocation, &BundledSignatures),
    bases: &Bases,
    temp: TempFile,
    events: &dyn Events,
) -> Result<(u64, TempFile), (u64, FileError)> {
    let (pieces, signature_bytes) =
        match delta_pieces(source, file, signature, signatures, bases).await {
            Ok(found) => found,
            Err(e) => {
                temp.discard(store);
                return Err(e);
            }
        };
    let fetched = signature_bytes + remote_bytes(&pieces);
    match assemble(source, store, file, pieces, bases, temp, events).await {
        Ok(temp) => Ok((fetched, temp)),
        Err(e) => Err((fetched, e)),
    }
}

/// Writes the new file from its pieces, local ones from the bases and remote
/// ones read with many requests in flight, and verifies it.
async fn assemble<S: Source>(
    source: &Throttled<S>,
    store: &StoreDir,
    file: &VerifiedFile,
    pieces: Vec<Piece>,
    bases: &Bases,
    temp: TempFile,
    events: &dyn Events,
) -> Result<TempFile, FileError> {
    let remote = match source.open(file.path().as_str()).await {
        Ok(remote) => remote,
        Err(e) => {
            temp.discard(store);
            return Err(e.into());
        }
    };
    let remote_pieces = pieces.iter().filter_map(|piece| match *piece {
        Piece::Remote { offset, len } => Some((offset, len)),
        Piece::Local { .. } => None,
    });
    let fetched = stream::iter(remote_pieces).map(|(offset, len)| {
        let remote = &remote;
        async move {
            let data = read_exact_at(source, remote, offset, len as u32).await?;
            if data.len() as u64 == len {
                Ok(data)
            } else {
                Err(FileError::Failed(format!(
                    "{} is shorter on the source than its manifest size {}",
                    file.path(),
                    file.size()
                )))
            }
        }
    });
    let written = write_verified(
        &pieces,
        bases,
        fetched.buffered(REQUESTS_IN_FLIGHT),
        store,
        file,
        temp,
        events,
    )
    .await;
    let result = written.map(|(_, temp)| temp).map_err(|(_, e)| match e {
        FileError::Failed(why) if source.reject(&remote) => FileError::Rejected(why),
        e => e,
    });
    source.close(remote).await;
    result
}

/// How a dry run expects one file to arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Copied from the store file of the same content at this path.
    Copy(RelPath),
    /// Assembled from local blocks plus this many bytes from the source.
    Delta(u64),
    /// Fetched whole.
    Whole(u64),
}

/// What each download of `plan` would cost, changing nothing: block
/// signatures are read and matched, no file is written.
pub(crate) async fn estimate<'p, S: Source>(
    source: &Throttled<S>,
    store: Option<&StoreDir>,
    inventory: &Inventory,
    plan: &Plan<'p>,
    known: &KnownContent,
    signatures: &BundledSignatures,
) -> Result<Vec<(&'p VerifiedFile, Arrival)>, ApplyError> {
    let mut estimates = Vec::with_capacity(plan.fetch.len());
    for file in &plan.fetch {
        if let Some(local) = known.local_copy(file.sha256()) {
            estimates.push((*file, Arrival::Copy(local.clone())));
            continue;
        }
        let bases = Bases::gather(store, inventory, file);
        let arrival = match file.block_signature() {
            Some(signature) if !bases.files.is_empty() => {
                match delta_pieces(source, file, signature, signatures, &bases).await {
                    Ok((pieces, signature_bytes)) => {
                        Arrival::Delta(signature_bytes + remote_bytes(&pieces))
                    }
                    Err((_, FileError::Fatal(e))) => return Err(e),
                    Err((bytes, FileError::Failed(_) | FileError::Rejected(_))) => {
                        Arrival::Whole(bytes + file.size())
                    }
                }
            }
            _ => Arrival::Whole(file.size()),
        };
        estimates.push((*file, arrival));
    }
    Ok(estimates)
}

/// Reads the whole file with many requests in flight; never asks for more than
/// the manifest's size (endless data).
async fn download_whole<S: Source>(
    source: &Throttled<S>,
    store: &StoreDir,
    file: &VerifiedFile,
    temp: TempFile,
    events: &dyn Events,
) -> Result<(u64, TempFile), FileError> {
    let request = u64::from(source.request_size());
    let pieces = (0..file.size().div_ceil(request))
        .map(|i| Piece::Remote {
            offset: i * request,
            len: request.min(file.size() - i * request),
        })
        .collect();
    let none = Bases { files: Vec::new() };
    let temp = assemble(source, store, file, pieces, &none, temp, events).await?;
    Ok((file.size(), temp))
}

/// Writes the pieces in order, hashing them: local ones read from `bases`
/// through one buffer, remote ones as `fetched` yields them. Checks the result
/// against the manifest. Returns the bytes written; a wrong result is discarded.
async fn write_verified(
    pieces: &[Piece],
    bases: &Bases,
    fetched: impl futures::Stream<Item = Chunk>,
    store: &StoreDir,
    file: &VerifiedFile,
    mut temp: TempFile,
    events: &dyn Events,
) -> Result<(u64, TempFile), (u64, FileError)> {
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut writeback = Writeback::default();
    let mut fetched = std::pin::pin!(fetched);
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    let outcome: Result<(), FileError> = async {
        for piece in pieces {
            let chunk = match *piece {
                Piece::Local { basis, offset, len } => {
                    local.resize(len as usize, 0);
                    bases.read(basis, offset, &mut local).map_err(|e| {
                        FileError::Failed(format!("basis changed while reading: {e}"))
                    })?;
                    &local
                }
                // One item for each remote piece; a missing one fails the sha256 check.
                Piece::Remote { .. } => {
                    remote = fetched.try_next().await?.unwrap_or_default();
                    &remote
                }
            };
            temp.out
                .write_all(chunk)
                .map_err(|e| StoreError::io("write", &store.full(&temp.rel), e))?;
            hasher.update(chunk);
            written += chunk.len() as u64;
            writeback.written(&temp.out, written);
            events.bytes_moved(chunk.len() as u64);
        }
        Ok(())
    }
    .await;
    match outcome {
        Err(FileError::Failed(why)) => {
            temp.discard(store);
            return Err((written, FileError::Failed(why)));
        }
        // Interrupted: the partial file stays as a basis for the next run,
        // when there is something in it and a block signature can use it.
        Err(fatal) => {
            if written == 0 || file.block_signature().is_none() {
                temp.discard(store);
            }
            return Err((written, fatal));
        }
        Ok(()) => {}
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if written != file.size() || digest != *file.sha256() {
        temp.discard(store);
        return Err((
            written,
            FileError::Failed(format!(
                "{} does not match its manifest sha256",
                file.path()
            )),
        ));
    }
    Ok((written, temp))
}

/// The block signature of `file`: a file of its own, read bounded by the
/// length a genuine one has, or that many bytes of a part's bundle.
async fn read_signature<S: Source>(
    source: &Throttled<S>,
    file: &VerifiedFile,
    location: &SignatureLocation,
) -> Result<Vec<u8>, TransportError> {
    let len = signature::signature_len(file.size());
    let path = location.path().as_str();
    let Some(offset) = location.offset() else {
        return source.read_limited(path, len).await;
    };
    let bundle = source.open(path).await?;
    let read = read_exact_at(source, &bundle, offset, len as u32).await;
    source.close(bundle).await;
    read
}

/// Reads `len` bytes at `offset`, asking again after a short answer; fewer only
/// at the end of the file.
pub(super) async fn read_exact_at<S: Source>(
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

/// Gives a verified temporary file the manifest's mtime, flushes it and renames
/// it over its target, then removes the partial download it no longer needs;
/// returns the bytes read from the source for it. The flush waits for the
/// disk, so it runs on a blocking thread (with a handle of its own on the
/// store) while the other downloads and flushes go on.
async fn place(
    store: &StoreDir,
    inventory: &Inventory,
    file: &VerifiedFile,
    Ready { temp, bytes }: Ready,
) -> Result<u64, FileError> {
    let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(file.mtime()).unwrap_or(0));
    let target = file.path().clone();
    let own = match store.try_clone() {
        Ok(own) => own,
        Err(e) => {
            temp.discard(store);
            return Err(StoreError::io("open", store.path(), e).into());
        }
    };
    tokio::task::spawn_blocking(move || finish(&own, temp, &target, mtime))
        .await
        .unwrap_or_else(|e| Err(FileError::Failed(format!("placing the file failed: {e}"))))?;
    remove_partial(store, inventory, file);
    Ok(bytes)
}

fn finish(
    store: &StoreDir,
    temp: TempFile,
    target: &RelPath,
    mtime: std::time::SystemTime,
) -> Result<(), FileError> {
    let finished = temp
        .out
        .set_modified(mtime)
        .and_then(|()| temp.out.sync_all());
    if let Err(e) = finished {
        let path = store.full(&temp.rel);
        temp.discard(store);
        return Err(StoreError::io("flush", &path, e).into());
    }
    if store.symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        temp.discard(store);
        return Err(FileError::Failed(format!(
            "{target} is a folder in the store"
        )));
    }
    let TempFile { rel, out } = temp;
    store.rename_into_place(&rel, out, target).map_err(|e| {
        let _ = store.remove(&rel);
        FileError::from(StoreError::io("rename into place", &store.full(target), e))
    })
}
