//! `.wpkgsync/sigs/<sha256>.sig`: one fast_rsync block signature per content,
//! so a client holding an older copy fetches only the blocks it lacks.
//!
//! A signature is named by the sha256 of the content it describes, so
//! republishing reuses it and a renamed file keeps it. Signatures no manifest
//! names any more are removed after the new records are in place
//! (`parts::prune`).

use std::fs::{self, File};
use std::io::BufReader;
use std::path::Path;

use super::error::PublishError;
use super::staged::Staged;
use crate::delta::signature;
use crate::manifest::format::{META_DIR, SIGS_DIR, signature_of};

/// Makes sure the signature of content `sha256` (read from `source`, `size`
/// bytes) exists, and returns its path relative to the repository.
pub(super) fn ensure(
    meta_dir: &Path,
    source: &Path,
    size: u64,
    sha256: &str,
) -> Result<String, PublishError> {
    let dir = meta_dir.join(SIGS_DIR);
    let name = signature_of(sha256);
    let relative = relative_path(&name);
    let target = dir.join(&name);
    // Computed once per content: a signature of the right length is reused.
    if fs::metadata(&target).is_ok_and(|m| m.len() == signature::signature_len(size)) {
        return Ok(relative);
    }
    fs::create_dir_all(&dir).map_err(|source| PublishError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    super::imp::share_dir(&dir).map_err(|source| PublishError::Permissions {
        path: dir.clone(),
        source,
    })?;
    let read_error = |e| PublishError::Read {
        path: source.to_path_buf(),
        source: e,
    };
    let file = File::open(source).map_err(read_error)?;
    let bytes = signature::calculate(BufReader::new(file), size).map_err(read_error)?;
    Staged::new(&dir, &name, &bytes)?.persist()?;
    Ok(relative)
}

/// The repository-relative path of the signature file `name`, as the manifest
/// names it.
fn relative_path(name: &str) -> String {
    format!("{META_DIR}/{SIGS_DIR}/{name}")
}
