//! What the store held after the last run: path, size, mtime and sha256 of
//! every file this client verified and put in place. With it a file moved or
//! copied on the server is copied locally instead of downloaded: a local file
//! whose size, mtime and identity (inode or file id, and change time) still
//! match its entry still has that content: a file put in its place by someone
//! else, even with the same size and mtime, has another identity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::state_dir::{StateDir, StateFile};
use crate::manifest::path::RelPath;

/// One verified file of the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexEntry {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Lowercase hex sha256.
    pub sha256: String,
    /// Which file was verified; absent in an index of an older release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FileId>,
}

/// What tells a file apart from another put in its place: on Unix the inode
/// and the change time, which every write, rename, chmod and chown moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct FileId {
    /// Inode or file index.
    pub ino: u64,
    /// Change time (Unix) or creation time (Windows), in nanoseconds.
    pub changed: i64,
}

impl FileId {
    /// The identity of the file `meta` describes.
    #[cfg(unix)]
    pub(crate) fn of(meta: &cap_std::fs::Metadata) -> FileId {
        use cap_std::fs::MetadataExt;
        FileId {
            ino: meta.ino(),
            changed: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
        }
    }

    /// The identity of the file `meta` describes. A listing on Windows
    /// carries no file index, so the creation time stands in: a file put in
    /// another's place is created anew (NTFS keeps the old one's creation time
    /// only for a name reused within seconds).
    #[cfg(windows)]
    pub(crate) fn of(meta: &cap_std::fs::Metadata) -> FileId {
        let created = meta
            .created()
            .ok()
            .map(|t| t.into_std())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        FileId {
            ino: 0,
            changed: created,
        }
    }
}

/// The store's verified files by `/`-separated path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreIndex {
    /// Entries by path: manifest paths, each put in place by this client,
    /// and read back through the manifest's path rules.
    pub files: BTreeMap<RelPath, IndexEntry>,
}

/// Indexes being read ahead on threads of their own, by state folder.
static READ_AHEAD: Mutex<Vec<(PathBuf, JoinHandle<StoreIndex>)>> = Mutex::new(Vec::new());

impl StoreIndex {
    /// Starts reading the index of `dir` on a thread of its own while the
    /// run connects, for [`StoreIndex::load`] to take. Only a run holding
    /// the lock of `dir` calls it, and that run writes the index only after
    /// loading it, so what is read ahead is what `load` would read.
    pub(crate) fn read_ahead(dir: &StateDir) {
        let path = dir.file(StateFile::StoreIndex);
        let Ok(reading) = std::thread::Builder::new()
            .name("store index".into())
            .spawn(move || read(&path))
        else {
            return;
        };
        if let Ok(mut ahead) = READ_AHEAD.lock() {
            ahead.push((dir.path().to_path_buf(), reading));
        }
    }

    /// Reads the index, or takes the one read ahead; a missing or damaged
    /// one is empty (it only saves downloads, and every file is verified
    /// again anyway).
    pub(crate) fn load(dir: &StateDir) -> StoreIndex {
        let ahead = READ_AHEAD.lock().ok().and_then(|mut ahead| {
            let at = ahead.iter().position(|(path, _)| path == dir.path())?;
            Some(ahead.swap_remove(at).1)
        });
        match ahead.map(JoinHandle::join) {
            Some(Ok(index)) => index,
            _ => read(&dir.file(StateFile::StoreIndex)),
        }
    }

    /// Writes the index through a temporary file and a rename.
    pub(crate) fn save(&self, dir: &StateDir) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        dir.write(StateFile::StoreIndex, &bytes)
    }
}

/// The index in the file `path`; empty when missing or damaged.
fn read(path: &Path) -> StoreIndex {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state_dir::{StateDir, StateFile};

    #[test]
    fn index_round_trips_and_damage_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            StoreIndex::load(&StateDir::new(dir.path())),
            StoreIndex::default()
        );
        let mut index = StoreIndex::default();
        index.files.insert(
            RelPath::new("a/b.msi").unwrap(),
            IndexEntry {
                size: 3,
                mtime: 4,
                sha256: "ab".repeat(32),
                id: Some(FileId { ino: 7, changed: 8 }),
            },
        );
        index.save(&StateDir::new(dir.path())).unwrap();
        assert_eq!(StoreIndex::load(&StateDir::new(dir.path())), index);
        std::fs::write(dir.path().join(StateFile::StoreIndex.name()), b"{").unwrap();
        assert_eq!(
            StoreIndex::load(&StateDir::new(dir.path())),
            StoreIndex::default()
        );
    }

    #[test]
    fn an_index_read_ahead_is_taken_once_by_its_own_folder() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (StateDir::new(one.path()), StateDir::new(two.path()));
        let mut index = StoreIndex::default();
        index.files.insert(
            RelPath::new("a.msi").unwrap(),
            IndexEntry {
                size: 1,
                mtime: 2,
                sha256: "cd".repeat(32),
                id: None,
            },
        );
        index.save(&one).unwrap();
        StoreIndex::read_ahead(&one);
        assert_eq!(StoreIndex::load(&two), StoreIndex::default());
        assert_eq!(StoreIndex::load(&one), index);
        // Taken: the next load reads the file as it is then.
        StoreIndex::default().save(&one).unwrap();
        assert_eq!(StoreIndex::load(&one), StoreIndex::default());
    }

    #[test]
    fn an_index_naming_a_path_outside_the_store_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let entry = format!(r#"{{"size":3,"mtime":4,"sha256":"{}"}}"#, "ab".repeat(32));
        for hostile in ["../outside", "/etc/passwd", "a//b", ".wpkgsync-tmp-x"] {
            let text = format!(r#"{{"files":{{"{hostile}":{entry},"ok.msi":{entry}}}}}"#);
            std::fs::write(dir.path().join(StateFile::StoreIndex.name()), &text).unwrap();
            assert_eq!(
                StoreIndex::load(&StateDir::new(dir.path())),
                StoreIndex::default(),
                "{hostile}"
            );
        }
        // The same file with only the good key loads, so the key is what was refused.
        let text = format!(r#"{{"files":{{"ok.msi":{entry}}}}}"#);
        std::fs::write(dir.path().join(StateFile::StoreIndex.name()), &text).unwrap();
        assert_eq!(StoreIndex::load(&StateDir::new(dir.path())).files.len(), 1);
    }
}
