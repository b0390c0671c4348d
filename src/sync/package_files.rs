//! The package definitions the selection reads: `packages/*.xml`, or a single
//! top-level `packages.xml`, exactly as the verified manifest lists them.
//!
//! A store copy that matches the manifest by size and mtime is read locally,
//! as the sync itself would keep it; any other is read from the source and
//! checked against the manifest's sha256 before the XML parser sees it.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::inventory::{Inventory, LocalKind};
use crate::manifest::path::RelPath;
use crate::manifest::verify::{VerifiedFile, VerifiedManifest};
use crate::store::dir::StoreDir;
use crate::transport::{Source, TransportError, TransportErrorKind};

/// The package definitions of one manifest version.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackageFiles {
    /// Repository path and content of each readable definition.
    pub files: Vec<(String, Vec<u8>)>,
    /// Definitions that could not be read or verified, with the reason.
    pub unreadable: Vec<String>,
}

/// Whether `path` is a WPKG package definition file.
pub(crate) fn is_package_definition(path: &str) -> bool {
    let lower = path.to_lowercase();
    if lower == "packages.xml" {
        return true;
    }
    lower
        .strip_prefix("packages/")
        .is_some_and(|name| !name.contains('/') && name.ends_with(".xml"))
}

/// Reads every package definition of `manifest`; only a lost source is an error.
pub(crate) async fn read<S: Source>(
    source: &S,
    manifest: &VerifiedManifest,
    store: Option<&StoreDir>,
    inventory: &Inventory,
) -> Result<PackageFiles, TransportError> {
    let mut result = PackageFiles::default();
    for file in manifest
        .files()
        .iter()
        .filter(|f| is_package_definition(f.path().as_str()))
    {
        let path = file.path().as_str();
        let local = inventory
            .entries
            .get(path)
            .filter(|e| {
                matches!(e.kind, LocalKind::File { size, mtime, .. } if size == file.size() && mtime == file.mtime())
            })
            .and_then(|_| read_local(store?, file.path(), file.size()))
            .filter(|bytes| verified(file, bytes));
        let bytes = match local {
            Some(bytes) => bytes,
            None => match source.read_limited(file.path().as_str(), file.size()).await {
                Ok(bytes) => bytes,
                Err(e)
                    if matches!(
                        e.kind(),
                        TransportErrorKind::Unreachable | TransportErrorKind::Timeout
                    ) =>
                {
                    return Err(e);
                }
                Err(e) => {
                    result.unreadable.push(format!("{}: {e}", file.path()));
                    continue;
                }
            },
        };
        if verified(file, &bytes) {
            result.files.push((file.path().to_string(), bytes));
        } else {
            result.unreadable.push(format!(
                "{}: does not match its manifest sha256",
                file.path()
            ));
        }
    }
    Ok(result)
}

/// The store's copy of `path`, at most `size` bytes, read through the store's
/// handle.
fn read_local(store: &StoreDir, path: &RelPath, size: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    store
        .open_regular(path)
        .ok()?
        .take(size)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

fn verified(file: &VerifiedFile, bytes: &[u8]) -> bool {
    bytes.len() as u64 == file.size() && <[u8; 32]>::from(Sha256::digest(bytes)) == *file.sha256()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_definitions_are_recognised() {
        for yes in ["packages/7zip.xml", "Packages/Firefox.XML", "packages.xml"] {
            assert!(is_package_definition(yes), "{yes}");
        }
        for no in [
            "packages/7zip/x.xml",
            "config.xml",
            "packages/readme.txt",
            "sub/packages.xml",
        ] {
            assert!(!is_package_definition(no), "{no}");
        }
    }
}
