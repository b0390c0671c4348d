//! What the local store holds now: one walk through the store's handle, no
//! link followed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::manifest::format::TEMP_PREFIX;
use crate::manifest::path::RelPath;
use crate::manifest::verify::VerifiedManifest;
use crate::store::StoreError;
use crate::store::acl::Repaired;
use crate::store::dir::{StoreDir, temp_target};
use crate::store::index::{FileId, StoreIndex};
use crate::store::path::StorePath;
use crate::store::walk::{self, Found, FoundKind};

/// One thing found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LocalKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time, Unix seconds.
        mtime: i64,
        /// Which file it is, so one put in its place is told apart.
        id: FileId,
    },
    /// A folder.
    Dir,
    /// A link or special file; never followed, replaced when in scope.
    Other,
}

/// One entry of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalEntry {
    /// What it is.
    pub kind: LocalKind,
}

/// A partial download left by an interrupted run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Temp {
    /// Its path in the store.
    pub path: StorePath,
    /// The store path of the file it was written for, when its name says.
    pub target: Option<StorePath>,
}

/// The store's contents by relative path: whatever the walk found, names
/// the manifest would refuse too.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inventory {
    /// Every entry but the temporary files.
    pub entries: BTreeMap<StorePath, LocalEntry>,
    /// Temporary files left by an interrupted run.
    pub temps: Vec<Temp>,
    /// Files whose content is not to be trusted until it is hashed again:
    /// the repair had to fix them, so someone else could write them. They
    /// are never unchanged by size and mtime, a delta basis or a copy source.
    pub suspect: BTreeSet<StorePath>,
    /// Files of an administrator's that are not the ones verified (a restore,
    /// an edit): hashed again before they count as unchanged, but fine as a
    /// delta basis, since whatever is built from them is verified. Paths of
    /// the store index, so manifest paths.
    pub unverified: BTreeSet<RelPath>,
    /// Suspect or unverified files hashed this run and found to hold their
    /// manifest content.
    pub rehashed: BTreeSet<RelPath>,
}

impl Inventory {
    /// What the store holds: `listing`, what the repair before the sync
    /// found, when there is one (it walked the store just before, and only
    /// this run writes there), else a walk of its own
    /// ([`walk::store_entries`]), each folder opened through the store's
    /// handle without following a link.
    pub(crate) fn scan(
        store: &StoreDir,
        listing: Option<Vec<Found>>,
    ) -> Result<Inventory, StoreError> {
        let found = match listing {
            Some(found) => found,
            None => walk::store_entries(
                store,
                |_, _, _, meta| Ok(Some(meta)),
                |e| StoreError::io(e.op, &e.path, e.error),
            )?,
        };
        Ok(Inventory::of(found))
    }

    /// The inventory of the entries a walk found.
    fn of(found: Vec<Found>) -> Inventory {
        let mut temps = Vec::new();
        let entries = found
            .into_iter()
            .filter_map(|Found { path, kind }| {
                let kind = match kind {
                    FoundKind::File { .. } if is_temp(&path) => {
                        let name = path.as_str().rsplit('/').next().unwrap_or_default();
                        let target =
                            temp_target(name).and_then(|target| StorePath::beside(&path, target));
                        temps.push(Temp { path, target });
                        return None;
                    }
                    FoundKind::File { size, mtime, id } => LocalKind::File { size, mtime, id },
                    FoundKind::Dir => LocalKind::Dir,
                    FoundKind::Other => LocalKind::Other,
                };
                Some((path, LocalEntry { kind }))
            })
            .collect();
        Inventory {
            entries,
            temps,
            ..Inventory::default()
        }
    }

    /// Marks as suspect every file the repair changed or that lies in a folder
    /// it changed (someone else could have swapped files there), or every
    /// file when the repair did not finish.
    pub(crate) fn distrust(&mut self, repaired: &Repaired) {
        let folders: Vec<&str> = repaired
            .paths
            .iter()
            .map(StorePath::as_str)
            .filter(|p| matches!(self.entries.get(*p).map(|e| &e.kind), Some(LocalKind::Dir)))
            .collect();
        for (path, entry) in &self.entries {
            let below_changed = || {
                folders.iter().any(|folder| {
                    path.as_str()
                        .strip_prefix(folder)
                        .is_some_and(|rest| rest.starts_with('/'))
                })
            };
            if matches!(entry.kind, LocalKind::File { .. })
                && (repaired.everything
                    || repaired.paths.binary_search(path).is_ok()
                    || below_changed())
            {
                self.suspect.insert(path.clone());
            }
        }
    }

    /// Marks as suspect every file that is not the one `index` says was
    /// verified there: same size and mtime, another inode or change time.
    /// Both maps are ordered by the text of their paths, so one pass over
    /// the two finds the pairs.
    pub(crate) fn distrust_other_files(&mut self, index: &StoreIndex) {
        let mut local = self.entries.iter().peekable();
        for (path, entry) in &index.files {
            let Some(known) = entry.id else { continue };
            while local
                .next_if(|(found, _)| found.as_str() < path.as_str())
                .is_some()
            {}
            if let Some((
                found,
                LocalEntry {
                    kind: LocalKind::File { size, mtime, id },
                },
            )) = local.peek()
                && found.as_str() == path.as_str()
                && *size == entry.size
                && *mtime == entry.mtime
                && *id != known
            {
                self.unverified.insert(path.clone());
            }
        }
    }

    /// Hashes the suspect and unverified files of the manifest's size; those that hold the
    /// manifest's content count as unchanged again. Returns a line for the
    /// log when there were any.
    pub(crate) fn rehash_suspects(
        &mut self,
        store: &StoreDir,
        manifest: &VerifiedManifest,
    ) -> Option<String> {
        if self.suspect.is_empty() && self.unverified.is_empty() {
            return None;
        }
        let mut matched = 0;
        for file in manifest.files() {
            let path = file.path().as_str();
            let same_size = matches!(self.entries.get(path).map(|e| &e.kind),
                Some(LocalKind::File { size, .. }) if *size == file.size());
            if same_size
                && (self.suspect.contains(path) || self.unverified.contains(path))
                && hash(store, file.path(), file.size())
                    .is_some_and(|digest| digest == *file.sha256())
            {
                self.suspect.remove(path);
                self.unverified.remove(path);
                self.rehashed.insert(file.path().clone());
                matched += 1;
            }
        }
        Some(format!(
            "files the repair fixed or that are not the ones verified: {matched} of {} hashed again hold their manifest content",
            matched + self.suspect.len() + self.unverified.len()
        ))
    }

    /// The partial download of `path` an interrupted run left, if any.
    pub(crate) fn temp_of(&self, path: &RelPath) -> Option<&StorePath> {
        self.temps
            .iter()
            .find(|t| {
                t.target
                    .as_ref()
                    .is_some_and(|target| target == path.as_str())
            })
            .map(|t| &t.path)
    }
}

/// Whether the store file `path` is a partial download, by its name.
fn is_temp(path: &StorePath) -> bool {
    let name = path.as_str().rsplit('/').next().unwrap_or_default();
    name.starts_with(TEMP_PREFIX)
}

/// The sha256 of the first `size` bytes of the store file `path`.
fn hash(store: &StoreDir, path: &RelPath, size: u64) -> Option<[u8; 32]> {
    use sha2::Digest;
    let mut file = store.open_regular(path).ok()?.take(size);
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).ok()?;
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_listing_is_taken_once_and_a_walk_finds_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/setup.msi"), "x").unwrap();
        let temp = format!("{TEMP_PREFIX}0123456789abcdef-setup.msi");
        std::fs::write(root.join("a/b").join(&temp), "partial").unwrap();
        let store = StoreDir::open(&root).unwrap();

        let walked = Inventory::scan(&store, None).unwrap();
        assert_eq!(
            walked
                .entries
                .keys()
                .map(StorePath::as_str)
                .collect::<Vec<_>>(),
            ["a", "a/b", "a/b/setup.msi"]
        );
        assert_eq!(walked.temps.len(), 1);
        assert_eq!(walked.temps[0].path, format!("a/b/{temp}"));
        assert_eq!(walked.temps[0].target.as_ref().unwrap(), "a/b/setup.msi");

        let found = walk::store_entries(&store, |_, _, _, m| Ok(Some(m)), |e| e.error).unwrap();
        std::fs::write(root.join("later.txt"), "x").unwrap();
        // The kept listing, not the store as it is now.
        let kept = Inventory::scan(&store, Some(found)).unwrap();
        assert_eq!(kept.entries, walked.entries);
        assert_eq!(kept.temps, walked.temps);
        // Taken once: the next scan walks again.
        assert!(
            Inventory::scan(&store, None)
                .unwrap()
                .entries
                .contains_key("later.txt")
        );
    }

    #[test]
    fn only_files_the_index_knows_by_size_and_mtime_but_not_by_identity_are_unverified() {
        use crate::store::index::IndexEntry;
        let id = |ino| FileId { ino, changed: 5 };
        let file = |ino| LocalEntry {
            kind: LocalKind::File {
                size: 3,
                mtime: 4,
                id: id(ino),
            },
        };
        let mut inventory = Inventory::default();
        for (path, entry) in [
            ("a", file(1)),
            ("a/b", file(2)),
            ("a.msi", file(9)),
            (
                "b",
                LocalEntry {
                    kind: LocalKind::Dir,
                },
            ),
            ("c.msi", file(3)),
            ("d.msi", file(8)),
            ("z.msi", file(7)),
        ] {
            inventory.entries.insert(store_path(path), entry);
        }
        let mut index = StoreIndex::default();
        for (path, ino, size) in [
            ("a.msi", Some(1), 3),
            ("a/b", Some(2), 3),
            ("b", Some(1), 3),
            ("c.msi", None, 3),
            ("d.msi", Some(1), 2),
            ("e.msi", Some(1), 3),
            ("z.msi", Some(1), 3),
        ] {
            index.files.insert(
                RelPath::new(path).unwrap(),
                IndexEntry {
                    size,
                    mtime: 4,
                    sha256: "ab".repeat(32),
                    id: ino.map(id),
                },
            );
        }
        inventory.distrust_other_files(&index);
        // a/b is the same file, b a folder, c.msi has no identity recorded,
        // d.msi another size, e.msi is missing.
        let unverified: Vec<&str> = inventory.unverified.iter().map(RelPath::as_str).collect();
        assert_eq!(unverified, ["a.msi", "z.msi"]);
    }

    fn store_path(path: &str) -> StorePath {
        path.split('/')
            .fold(None, |parent: Option<StorePath>, name| {
                StorePath::child(parent.as_ref(), name)
            })
            .unwrap()
    }
}
