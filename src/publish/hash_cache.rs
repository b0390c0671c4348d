//! `.wpkgsync/cache.json`: a publisher-only cache of the hash of every file the
//! last publish listed, so unchanged files are not read again. Clients never
//! read it and the manifest never lists it; a missing or broken cache only
//! costs the time to hash everything.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::PublishError;
use super::imp;
use super::parts::CachedPart;
use super::walk::Candidate;
use crate::clock::{checked_now_unix, unix_time};

/// The hash cache's name inside [`META_DIR`](crate::manifest::format::META_DIR).
pub(super) const CACHE_FILE: &str = "cache.json";
/// The only hash cache format this build reads and writes.
const CACHE_FORMAT: u32 = 1;
/// A cached hash is reused only for a file whose mtime was at least this much
/// older than the moment it was hashed. A write in the same clock tick as the
/// hashing (FAT stores mtimes in 2-second steps) would leave size and mtime
/// unchanged and a wrong hash trusted forever; such a file is read again instead.
const SETTLED_SECONDS: i64 = 2;

/// `.wpkgsync/cache.json`: the hash of every file the last publish listed.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HashCache {
    /// [`CACHE_FORMAT`].
    format: u32,
    /// Manifest path to what was known about the file when it was hashed.
    files: BTreeMap<String, CachedHash>,
    /// Folder below `packages/` (empty: every other file) to the part its
    /// listing made.
    #[serde(default)]
    pub(super) parts: BTreeMap<String, CachedPart>,
}

impl HashCache {
    /// An empty cache of this build's format, to fill as files are listed.
    pub(super) fn new() -> HashCache {
        HashCache {
            format: CACHE_FORMAT,
            files: BTreeMap::new(),
            parts: BTreeMap::new(),
        }
    }

    /// Records the hash of the file listed under `path`.
    pub(super) fn insert(&mut self, path: String, hash: CachedHash) {
        self.files.insert(path, hash);
    }
}

/// One file's hash and the metadata that must still match for it to be reused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CachedHash {
    /// Size in bytes.
    pub(super) size: u64,
    /// Modification time, Unix seconds.
    pub(super) mtime: i64,
    /// Nanoseconds part of the modification time.
    mtime_nanos: u32,
    /// Device and inode where the OS offers them cheaply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    /// Unix seconds just before the file was read.
    hashed_at: i64,
    /// Lowercase hex sha256 of the content.
    pub(super) sha256: String,
}

/// Reads the previous hash cache; a missing one is empty, a broken one is
/// ignored with a warning (it only saves time).
pub(super) fn read_cache(meta_dir: &Path, warnings: &mut Vec<String>) -> HashCache {
    let path = meta_dir.join(CACHE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return HashCache::default(),
        Err(err) => {
            warnings.push(format!("ignored hash cache {}: {err}", path.display()));
            return HashCache::default();
        }
    };
    match serde_json::from_slice::<HashCache>(&bytes) {
        Ok(cache) if cache.format == CACHE_FORMAT => cache,
        Ok(cache) => {
            warnings.push(format!(
                "ignored hash cache {} of format {}",
                path.display(),
                cache.format
            ));
            HashCache::default()
        }
        Err(err) => {
            warnings.push(format!("ignored hash cache {}: {err}", path.display()));
            HashCache::default()
        }
    }
}

/// The cached hash of `candidate`, if its size, mtime and identity still match
/// and it had settled when it was hashed.
pub(super) fn reusable(
    cache: &HashCache,
    candidate: &Candidate,
) -> Result<Option<CachedHash>, PublishError> {
    let Some(cached) = cache.files.get(candidate.path.as_str()) else {
        return Ok(None);
    };
    let (mtime, mtime_nanos) = modified(candidate)?;
    let matches = cached.size == candidate.meta.len()
        && cached.mtime == mtime
        && cached.mtime_nanos == mtime_nanos
        && cached.identity == imp::file_identity(&candidate.meta)
        && cached.hashed_at.saturating_sub(mtime) >= SETTLED_SECONDS
        && is_sha256_hex(&cached.sha256);
    Ok(matches.then(|| cached.clone()))
}

/// The candidate's mtime as Unix seconds and nanoseconds.
fn modified(candidate: &Candidate) -> Result<(i64, u32), PublishError> {
    let time = candidate
        .meta
        .modified()
        .map_err(|source| PublishError::Metadata {
            path: candidate.source.clone(),
            source,
        })?;
    Ok(unix_time(time))
}

/// A cache can be edited by hand; a malformed hash must not reach the manifest.
fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads and hashes one file.
pub(super) fn hash_candidate(
    candidate: &Candidate,
    warnings: &mut Vec<String>,
) -> Result<CachedHash, PublishError> {
    let (mtime, mtime_nanos) = modified(candidate)?;
    let hashed_at =
        i64::try_from(checked_now_unix().ok_or(PublishError::Clock)?).unwrap_or(i64::MAX);
    let (sha256, size) = hash_file(&candidate.source).map_err(|source| PublishError::Read {
        path: candidate.source.clone(),
        source,
    })?;
    if size != candidate.meta.len() {
        // The manifest gets what was hashed, which is consistent; the mtime is
        // the older one, so the next publish reads the file again.
        warnings.push(format!(
            "{} changed while it was read; publish again once it is complete",
            candidate.path
        ));
    }
    Ok(CachedHash {
        size,
        mtime,
        mtime_nanos,
        identity: imp::file_identity(&candidate.meta),
        hashed_at,
        sha256,
    })
}

/// Lowercase hex sha256 and length of a file's content.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}
