//! The manifest's parts: the listed files split by package folder, each part
//! written zstd-compressed under the sha256 of its exact bytes
//! (`parts/<sha256>.json.zst`), with a patch from the same folder's part of
//! the previous version (`deltas/<new>-<old>.zst`) so that clients holding
//! that one fetch only what changed. The block signatures of a part's small
//! files are gathered into one bundle (`sigs/<sha256>.sigs`), which a client
//! reads with ranges instead of opening a file per signature.
//!
//! A part that did not change keeps its name, so it is neither rewritten nor
//! fetched again. What the previous version named stays on the server for one
//! more version, so a client that read the previous manifest just before this
//! publish can still fetch its parts.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::PublishError;
use super::staged::Staged;
use crate::delta::signature::BUNDLED_BELOW;
use crate::manifest::compress;
use crate::manifest::format::{
    DELTAS_DIR, FORMAT, FileEntry, MANIFEST_FILE, META_DIR, Manifest, PARTS_DIR, Part, PartRef,
    SIGS_DIR, SignatureAt, bundle_path, delta_path, group_into_parts, part_path, signature_of,
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

    /// The previous part of `folder` (its sha256 and exact bytes) when it
    /// differs from `sha256` and is still there.
    fn changed_part(
        &self,
        meta_dir: &Path,
        folder: &Option<String>,
        sha256: &str,
    ) -> Option<(String, Vec<u8>)> {
        let part = self.parts.get(folder).filter(|p| p.sha256 != sha256)?;
        let data = fs::read(repo_path(meta_dir, &part_path(&part.sha256))).ok()?;
        let bytes = compress::decompress(&data, part.size).ok()?;
        (hex::encode(Sha256::digest(&bytes)) == part.sha256).then(|| (part.sha256.clone(), bytes))
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

/// Splits `files` into parts and writes each part (and its patch and bundle)
/// that is not on the server yet.
pub(super) fn write(
    meta_dir: &Path,
    files: Vec<FileEntry>,
    previous: &Previous,
) -> Result<Written, PublishError> {
    let mut written = Written {
        refs: Vec::new(),
        keep: previous
            .parts
            .values()
            .map(|p| part_path(&p.sha256))
            .collect(),
    };
    for (folder, mut files) in group_into_parts(files) {
        let bundle = bundle_signatures(meta_dir, &mut files)?;
        if let Some(bundle) = &bundle {
            written.keep.insert(bundle_path(bundle));
        }
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
        written.keep.insert(path);
        if let Some((old, base)) = previous.changed_part(meta_dir, &folder, &sha256)
            && let Some(patch) = write_patch(meta_dir, &old, &base, &sha256, &bytes)?
        {
            written.keep.insert(patch);
        }
        written.refs.push(PartRef {
            folder,
            sha256,
            size: bytes.len() as u64,
        });
    }
    Ok(written)
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

/// Removes the parts, patches and bundles that `keep` does not name; a failure
/// only costs disk space, so it is a warning.
pub(super) fn prune(meta_dir: &Path, keep: &HashSet<String>, warnings: &mut Vec<String>) {
    for (dir, suffix) in [
        (PARTS_DIR, ".json.zst"),
        (DELTAS_DIR, ".zst"),
        (SIGS_DIR, ".sigs"),
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

/// Moves the signatures of `files` below [`BUNDLED_BELOW`] into one bundle
/// and returns its sha256, or `None` when the part has no such file.
fn bundle_signatures(
    meta_dir: &Path,
    files: &mut [FileEntry],
) -> Result<Option<String>, PublishError> {
    let mut bundle = Vec::new();
    for file in files
        .iter_mut()
        .filter(|f| f.signature == Some(SignatureAt::Own) && f.size < BUNDLED_BELOW)
    {
        let own = meta_dir.join(SIGS_DIR).join(signature_of(&file.sha256));
        let signature =
            fs::read(&own).map_err(|source| PublishError::Read { path: own, source })?;
        file.signature = Some(SignatureAt::Bundle(bundle.len() as u64));
        bundle.extend_from_slice(&signature);
    }
    if bundle.is_empty() {
        return Ok(None);
    }
    let sha256 = hex::encode(Sha256::digest(&bundle));
    let path = bundle_path(&sha256);
    if !is_written(meta_dir, &path) {
        write_record(meta_dir, &path, &bundle)?;
    }
    Ok(Some(sha256))
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
