//! The last verified manifest and its signature, kept in the `state` folder so
//! a run whose timestamp names the same manifest need not download it again
//! (for 20 000 files it is megabytes). The cached bytes are used only when
//! their sha256 is the one the freshly verified timestamp names, and are then
//! verified like downloaded ones.

use sha2::{Digest, Sha256};

use super::StoreError;
use super::state_dir::{StateDir, StateFile};

/// The cached manifest and signature, if the manifest is the one `sha256` names.
pub(crate) fn load(dir: &StateDir, sha256: &[u8; 32]) -> Option<(Vec<u8>, Vec<u8>)> {
    let manifest = std::fs::read(dir.file(StateFile::Manifest)).ok()?;
    if <[u8; 32]>::from(Sha256::digest(&manifest)) != *sha256 {
        return None;
    }
    let signature = std::fs::read(dir.file(StateFile::ManifestSignature)).ok()?;
    Some((manifest, signature))
}

/// Keeps a verified manifest and its signature.
pub(crate) fn save(dir: &StateDir, manifest: &[u8], signature: &[u8]) -> Result<(), StoreError> {
    dir.write(StateFile::ManifestSignature, signature)?;
    dir.write(StateFile::Manifest, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::StateDir;

    #[test]
    fn only_the_named_manifest_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        save(&StateDir::new(dir.path()), b"manifest", b"sig").unwrap();
        let named: [u8; 32] = Sha256::digest(b"manifest").into();
        assert_eq!(
            load(&StateDir::new(dir.path()), &named),
            Some((b"manifest".to_vec(), b"sig".to_vec()))
        );
        let other: [u8; 32] = Sha256::digest(b"other").into();
        assert_eq!(load(&StateDir::new(dir.path()), &other), None);
    }
}
