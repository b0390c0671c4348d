//! What the store held after the last run: path, size, mtime and sha256 of
//! every file this client verified and put in place. With it a file moved or
//! copied on the server is copied locally instead of downloaded: a local file
//! whose size and mtime still match its entry still has that content.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{StoreError, write_atomically};

/// Name of the index file in the `state` folder.
pub const INDEX_FILE: &str = "store-index.json";

/// One verified file of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// The store's verified files by `/`-separated path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreIndex {
    /// Entries by path.
    pub files: BTreeMap<String, IndexEntry>,
}

impl StoreIndex {
    /// Reads the index; a missing or damaged one is empty (it only saves
    /// downloads, and every file is verified again anyway).
    pub fn load(dir: &Path) -> StoreIndex {
        std::fs::read(dir.join(INDEX_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Writes the index through a temporary file and a rename.
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        write_atomically(dir, INDEX_FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_damage_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StoreIndex::load(dir.path()), StoreIndex::default());
        let mut index = StoreIndex::default();
        index.files.insert(
            "a/b.msi".into(),
            IndexEntry {
                size: 3,
                mtime: 4,
                sha256: "ab".repeat(32),
            },
        );
        index.save(dir.path()).unwrap();
        assert_eq!(StoreIndex::load(dir.path()), index);
        std::fs::write(dir.path().join(INDEX_FILE), b"{").unwrap();
        assert_eq!(StoreIndex::load(dir.path()), StoreIndex::default());
    }
}
