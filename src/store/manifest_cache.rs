//! The last verified manifest and its signature, kept in the `state` folder so
//! a run whose timestamp names the same manifest need not download it again
//! (for 20 000 files it is megabytes). The cached bytes are used only when
//! their sha256 is the one the freshly verified timestamp names, and are then
//! verified like downloaded ones.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{StoreError, write_atomically};

const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.json.sig";

/// The cached manifest and signature, if the manifest is the one `sha256` names.
pub fn load(dir: &Path, sha256: &[u8; 32]) -> Option<(Vec<u8>, Vec<u8>)> {
    let manifest = std::fs::read(dir.join(MANIFEST)).ok()?;
    if <[u8; 32]>::from(Sha256::digest(&manifest)) != *sha256 {
        return None;
    }
    let signature = std::fs::read(dir.join(SIGNATURE)).ok()?;
    Some((manifest, signature))
}

/// Keeps a verified manifest and its signature.
pub fn save(dir: &Path, manifest: &[u8], signature: &[u8]) -> Result<(), StoreError> {
    write_atomically(dir, SIGNATURE, signature)?;
    write_atomically(dir, MANIFEST, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_manifest_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), b"manifest", b"sig").unwrap();
        let named: [u8; 32] = Sha256::digest(b"manifest").into();
        assert_eq!(
            load(dir.path(), &named),
            Some((b"manifest".to_vec(), b"sig".to_vec()))
        );
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert_eq!(load(dir.path(), &other), None);
    }
}
