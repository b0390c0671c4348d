//! The manifest's parts: the listed files split by package folder, each part
//! written zstd-compressed under the sha256 of its exact bytes
//! (`parts/<sha256>.json.zst`), with a patch from the same folder's part of
//! the previous version (`deltas/<new>-<old>.zst`) so that clients holding
//! that one fetch only what changed. The block signatures of a part's small
//! files are gathered into one bundle (`sigs/<sha256>.sigs`), which a client
//! reads with ranges instead of opening a file per signature.
//!
//! A folder whose listing did not change keeps its part (the hash cache
//! remembers which listing made which part), so the part is neither encoded,
//! rewritten nor fetched again. A changed folder's small signatures come from
//! its previous bundle where the content is the same, and are computed from
//! the file otherwise. What the previous version named stays on the server
//! for one more version, so a client that read the previous manifest just
//! before this publish can still fetch its parts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::PublishError;
use super::parallel::in_parallel;
use super::staged::Staged;
use crate::delta::signature::{self, BUNDLED_BELOW, MIN_SIGNED, signature_len};
use crate::manifest::compress;
use crate::manifest::format::{
    BUNDLE_SUFFIX, DELTAS_DIR, FORMAT, FileEntry, MANIFEST_FILE, META_DIR, Manifest, PARTS_DIR,
    Part, PartRef, SIGNATURE_SUFFIX, SIGS_DIR, SignatureAt, bundle_path, delta_path,
    group_into_parts, part_path,
};

/// The manifest of the previous publish, as far as this one can use it: its
/// exact bytes (the base of the manifest's patch) and its parts by folder.
/// Unsigned data from the publisher's own folder, used only to make patches
/// that clients check against the new sha256s.
pub(super) struct Previous {
    manifest: Option<Vec<u8>>,
    parts: HashMap<Option<String>, PartRef>,
}

impl Previous {
    /// Reads the previous `manifest.json`, if there is one this build reads.
    pub(super) fn read(meta_dir: &Path) -> Previous {
        let manifest = fs::read(meta_dir.join(MANIFEST_FILE)).ok();
        let parts = manifest
            .as_deref()
            .and_then(|bytes| serde_json::from_slice::<Manifest>(bytes).ok())
            .filter(|m| m.format == FORMAT)
            .map(|m| m.parts.into_iter().map(|p| (p.folder.clone(), p)).collect())
            .unwrap_or_default();
        Previous { manifest, parts }
    }

    /// The previous part of `folder`, when it is still there.
    fn part(&self, meta_dir: &Path, folder: &Option<String>) -> Option<OldPart> {
        let part = self.parts.get(folder)?;
        let data = fs::read(repo_path(meta_dir, &part_path(&part.sha256))).ok()?;
        let bytes = compress::decompress(&data, part.size).ok()?;
        if hex::encode(Sha256::digest(&bytes)) != part.sha256 {
            return None;
        }
        let record: Part = serde_json::from_slice(&bytes).ok()?;
        let bundle = record
            .bundle
            .as_deref()
            .and_then(|sha| fs::read(repo_path(meta_dir, &bundle_path(sha))).ok())
            .unwrap_or_default();
        let signatures = record
            .files
            .into_iter()
            .filter_map(|f| match f.signature {
                Some(SignatureAt::Bundle(offset)) => Some((f.sha256, offset)),
                _ => None,
            })
            .collect();
        Some(OldPart {
            sha256: part.sha256.clone(),
            bytes,
            bundle,
            signatures,
        })
    }
}

/// A folder's part of the previous version: the base of its patch, and the
/// signatures in its bundle by content.
struct OldPart {
    sha256: String,
    bytes: Vec<u8>,
    bundle: Vec<u8>,
    /// Content sha256 to the offset of its signature in `bundle`.
    signatures: HashMap<String, u64>,
}

impl OldPart {
    /// The bundled signature of content `sha256`, `len` bytes, if it had one.
    fn signature(&self, sha256: &str, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(*self.signatures.get(sha256)?).ok()?;
        self.bundle
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }
}

/// The parts of one publish, written, and every file under `.wpkgsync/` that
/// they and the previous version need kept.
pub(super) struct Written {
    /// The manifest's list of parts.
    pub(super) refs: Vec<PartRef>,
    /// Repository-relative paths of the parts, patches and bundles to keep.
    pub(super) keep: HashSet<String>,
}

/// Splits `files` (each with the file it was read from) into parts and writes
/// each part (and its patch and bundle) that is not on the server yet. `cache`
/// holds what the previous publish made of each folder's listing and is
/// replaced by what this one made.
pub(super) fn write(
    meta_dir: &Path,
    files: Vec<(FileEntry, PathBuf)>,
    previous: &Previous,
    cache: &mut BTreeMap<String, CachedPart>,
) -> Result<Written, PublishError> {
    let mut written = Written {
        refs: Vec::new(),
        keep: previous
            .parts
            .values()
            .map(|p| part_path(&p.sha256))
            .collect(),
    };
    let before = std::mem::take(cache);
    for (folder, files) in group_into_parts(files, |(entry, _)| &entry.path) {
        let key = folder.clone().unwrap_or_default();
        let listing = listing_digest(&files);
        let made = match before.get(&key) {
            Some(made) if made.listing == listing && made.is_written(meta_dir) => made.clone(),
            _ => make_part(meta_dir, previous.part(meta_dir, &folder), files, listing)?,
        };
        written.keep.insert(part_path(&made.sha256));
        written.keep.extend(made.bundle.as_deref().map(bundle_path));
        written.keep.extend(made.patch.clone());
        written.refs.push(PartRef {
            folder,
            sha256: made.sha256.clone(),
            size: made.size,
        });
        cache.insert(key, made);
    }
    Ok(written)
}

/// What a publish made of one folder's listing, kept in the hash cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CachedPart {
    /// sha256 of the listing (paths, sizes, mtimes, contents).
    listing: String,
    /// The part's sha256 and size.
    sha256: String,
    size: u64,
    /// Its bundle's sha256, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    /// The patch from the part before it, if one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

impl CachedPart {
    /// Its part and bundle are still on the server.
    fn is_written(&self, meta_dir: &Path) -> bool {
        is_written(meta_dir, &part_path(&self.sha256))
            && self
                .bundle
                .as_deref()
                .is_none_or(|sha| is_written(meta_dir, &bundle_path(sha)))
    }
}

/// Encodes the part of `files`, with a bundle of its small files' signatures,
/// and writes what is missing on the server, with a patch from `old`.
fn make_part(
    meta_dir: &Path,
    old: Option<OldPart>,
    files: Vec<(FileEntry, PathBuf)>,
    listing: String,
) -> Result<CachedPart, PublishError> {
    let (files, bundle) = bundle_signatures(meta_dir, files, old.as_ref())?;
    let part = Part {
        format: FORMAT,
        bundle,
        files,
    };
    let bytes = serde_json::to_vec(&part).map_err(|source| PublishError::Encode {
        path: meta_dir.join(PARTS_DIR),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let path = part_path(&sha256);
    if !is_written(meta_dir, &path) {
        write_record(meta_dir, &path, &compressed(meta_dir, &path, &bytes)?)?;
    }
    let patch = match old {
        Some(old) if old.sha256 != sha256 => {
            write_patch(meta_dir, &old.sha256, &old.bytes, &sha256, &bytes)?
        }
        _ => None,
    };
    Ok(CachedPart {
        listing,
        sha256,
        size: bytes.len() as u64,
        bundle: part.bundle,
        patch,
    })
}

/// A digest of everything a part says about its files but the bundle.
fn listing_digest(files: &[(FileEntry, PathBuf)]) -> String {
    let mut hasher = Sha256::new();
    for (file, _) in files {
        let own = file.signature == Some(SignatureAt::Own);
        hasher.update(
            format!(
                "{}\0{}\0{}\0{}\0{own}\n",
                file.path, file.size, file.mtime, file.sha256
            )
            .as_bytes(),
        );
    }
    hex::encode(hasher.finalize())
}

/// Writes the patch from the previous manifest to `manifest`, if there was
/// one; returns its path.
pub(super) fn write_manifest_patch(
    meta_dir: &Path,
    previous: &Previous,
    manifest: &[u8],
) -> Result<Option<String>, PublishError> {
    let Some(old) = &previous.manifest else {
        return Ok(None);
    };
    let from = hex::encode(Sha256::digest(old));
    let to = hex::encode(Sha256::digest(manifest));
    if from == to {
        return Ok(None);
    }
    write_patch(meta_dir, &from, old, &to, manifest)
}

/// Removes the parts, patches, bundles and block signatures that `keep`
/// (repository-relative paths) does not name; a failure only costs disk
/// space, so it is a warning.
pub(super) fn prune(meta_dir: &Path, keep: &HashSet<String>, warnings: &mut Vec<String>) {
    for (dir, suffix) in [
        (PARTS_DIR, ".json.zst"),
        (DELTAS_DIR, ".zst"),
        (SIGS_DIR, BUNDLE_SUFFIX),
        (SIGS_DIR, SIGNATURE_SUFFIX),
    ] {
        let Ok(entries) = fs::read_dir(meta_dir.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{META_DIR}/{dir}/{name}");
            if name.ends_with(suffix)
                && !keep.contains(&relative)
                && let Err(e) = fs::remove_file(entry.path())
            {
                warnings.push(format!(
                    "failed to remove unused {}: {e}",
                    entry.path().display()
                ));
            }
        }
    }
}

/// Gives the files of [`MIN_SIGNED`] bytes up to [`BUNDLED_BELOW`] their
/// block signature in one bundle and returns the files and the bundle's
/// sha256, `None` when the part has no such file. The bundle grows from
/// `old`'s: content it had keeps its offset, so that the part's patch carries
/// only the entries that changed, and new signatures (computed on every core)
/// are appended. Once more than half of it serves no file it is written anew.
fn bundle_signatures(
    meta_dir: &Path,
    files: Vec<(FileEntry, PathBuf)>,
    old: Option<&OldPart>,
) -> Result<(Vec<FileEntry>, Option<String>), PublishError> {
    let bundled = |f: &FileEntry| (MIN_SIGNED..BUNDLED_BELOW).contains(&f.size);
    let live: u64 = files
        .iter()
        .filter(|(f, _)| bundled(f))
        .map(|(f, _)| signature_len(f.size))
        .sum();
    let old = old.filter(|old| old.bundle.len() as u64 <= 2 * live);
    let kept = |file: &FileEntry| {
        let old = old?;
        old.signature(&file.sha256, signature_len(file.size))?;
        old.signatures.get(&file.sha256).copied()
    };
    let computed = in_parallel(&files, |(file, source)| {
        if !bundled(file) || kept(file).is_some() {
            return Ok(None);
        }
        let read_error = |e| PublishError::Read {
            path: source.clone(),
            source: e,
        };
        let reader = BufReader::new(File::open(source).map_err(read_error)?);
        signature::calculate(reader, file.size)
            .map(Some)
            .map_err(read_error)
    })?;
    let mut bundle = old.map(|old| old.bundle.clone()).unwrap_or_default();
    let mut entries = Vec::with_capacity(files.len());
    for ((mut file, _), computed) in files.into_iter().zip(computed) {
        if bundled(&file) {
            let offset = match (kept(&file), computed) {
                (Some(offset), _) => offset,
                (None, computed) => {
                    let offset = bundle.len() as u64;
                    bundle.extend_from_slice(&computed.unwrap_or_default());
                    offset
                }
            };
            file.signature = Some(SignatureAt::Bundle(offset));
        }
        entries.push(file);
    }
    if live == 0 {
        return Ok((entries, None));
    }
    let sha256 = hex::encode(Sha256::digest(&bundle));
    let path = bundle_path(&sha256);
    if !is_written(meta_dir, &path) {
        write_record(meta_dir, &path, &bundle)?;
    }
    Ok((entries, Some(sha256)))
}

/// Writes the patch from the record `from` (sha256 `from_sha`) to `to` and
/// returns its path, unless it would be no smaller than the whole record
/// (clients then fetch that).
fn write_patch(
    meta_dir: &Path,
    from_sha: &str,
    from: &[u8],
    to_sha: &str,
    to: &[u8],
) -> Result<Option<String>, PublishError> {
    let path = delta_path(to_sha, from_sha);
    let patch = compress::patch(from, to).map_err(|source| PublishError::Write {
        path: repo_path(meta_dir, &path),
        source,
    })?;
    if patch.len() >= to.len() {
        return Ok(None);
    }
    write_record(meta_dir, &path, &patch)?;
    Ok(Some(path))
}

fn compressed(meta_dir: &Path, path: &str, bytes: &[u8]) -> Result<Vec<u8>, PublishError> {
    compress::compress(bytes).map_err(|source| PublishError::Write {
        path: repo_path(meta_dir, path),
        source,
    })
}

/// A content-addressed record already in place: its name is its sha256, and
/// it was renamed there only once complete.
fn is_written(meta_dir: &Path, path: &str) -> bool {
    fs::metadata(repo_path(meta_dir, path)).is_ok_and(|m| m.is_file())
}

/// Writes `bytes` at the repository-relative `path` through a staged file.
fn write_record(meta_dir: &Path, path: &str, bytes: &[u8]) -> Result<(), PublishError> {
    let full = repo_path(meta_dir, path);
    let (dir, name) = (
        full.parent().expect("a record path has a folder"),
        full.file_name().expect("a record path has a name"),
    );
    fs::create_dir_all(dir).map_err(|source| PublishError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    super::imp::share_dir(dir).map_err(|source| PublishError::Permissions {
        path: dir.to_path_buf(),
        source,
    })?;
    Staged::new(dir, &name.to_string_lossy(), bytes)?.persist()
}

/// The full path of a repository-relative record path (`.wpkgsync/...`).
fn repo_path(meta_dir: &Path, path: &str) -> std::path::PathBuf {
    let inside = path
        .split_once('/')
        .map(|(_, rest)| rest)
        .expect("record paths start with the records folder");
    meta_dir.join(inside)
}
