//! The last verified manifest and its signature, and the last verified part
//! of each package folder, kept in the `state` folder: a run whose records did
//! not change downloads none of them, and one whose records changed fetches
//! patches against these copies. The cached bytes are trusted for nothing:
//! they are used only when their sha256 is the one the freshly verified
//! record names, and are then verified like downloaded ones; otherwise they
//! are only the base of a patch whose result is checked the same way.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::state_dir::{StateDir, StateFile};
use super::{StoreError, write_atomically};

/// The cached manifest and its signature, whichever version they are.
pub(crate) fn load(dir: &StateDir) -> Option<(Vec<u8>, Vec<u8>)> {
    let manifest = std::fs::read(dir.file(StateFile::Manifest)).ok()?;
    let signature = std::fs::read(dir.file(StateFile::ManifestSignature)).ok()?;
    Some((manifest, signature))
}

/// Keeps a verified manifest and its signature.
pub(crate) fn save(dir: &StateDir, manifest: &[u8], signature: &[u8]) -> Result<(), StoreError> {
    dir.write(StateFile::ManifestSignature, signature)?;
    dir.write(StateFile::Manifest, manifest)
}

/// The part last verified for `folder` (`None`: the part of every other file).
pub(crate) fn part(dir: &StateDir, folder: Option<&str>) -> Option<Vec<u8>> {
    std::fs::read(dir.parts().join(part_name(folder))).ok()
}

/// Keeps the verified part of `folder`.
pub(crate) fn save_part(
    dir: &StateDir,
    folder: Option<&str>,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let parts = dir.parts();
    std::fs::create_dir_all(&parts).map_err(|e| StoreError::io("create folder", &parts, e))?;
    write_atomically(&parts, &part_name(folder), bytes)
}

/// Removes the cached parts of every folder but `folders`; a file that cannot
/// be removed only costs disk space.
pub(crate) fn prune_parts<'a>(dir: &StateDir, folders: impl Iterator<Item = Option<&'a str>>) {
    let keep: HashSet<String> = folders.map(part_name).collect();
    let Ok(entries) = std::fs::read_dir(dir.parts()) else {
        return;
    };
    for entry in entries.flatten() {
        if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A folder's cache file: named by a digest of the folder's name, so any name
/// the manifest may hold makes a plain file name.
fn part_name(folder: Option<&str>) -> String {
    let key = match folder {
        None => String::new(),
        Some(folder) => format!("packages/{folder}"),
    };
    format!("{}.json", hex::encode(Sha256::digest(key.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::StateDir;

    #[test]
    fn the_manifest_and_each_folders_part_are_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert_eq!(load(&state), None);
        save(&state, b"manifest", b"sig").unwrap();
        assert_eq!(load(&state), Some((b"manifest".to_vec(), b"sig".to_vec())));

        save_part(&state, None, b"rest").unwrap();
        save_part(&state, Some("7zip"), b"7zip").unwrap();
        save_part(&state, Some("../x"), b"odd name").unwrap();
        assert_eq!(part(&state, None).as_deref(), Some(&b"rest"[..]));
        assert_eq!(part(&state, Some("7zip")).as_deref(), Some(&b"7zip"[..]));
        assert_eq!(
            part(&state, Some("../x")).as_deref(),
            Some(&b"odd name"[..])
        );
        assert!(!dir.path().join("x").exists());

        prune_parts(&state, [None, Some("7zip")].into_iter());
        assert!(part(&state, None).is_some());
        assert!(part(&state, Some("7zip")).is_some());
        assert_eq!(part(&state, Some("../x")), None);
    }
}
