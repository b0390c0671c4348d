//! What to fetch and what to delete: a pure comparison of the verified manifest
//! with the store's inventory under the run's scope.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::inventory::{Inventory, LocalKind};
use super::scope::{Scope, Verdict};
use crate::manifest::verify::{VerifiedFile, VerifiedManifest, parse_sha256};
use crate::store::index::{FileId, StoreIndex};
use crate::store::path::StorePath;

/// The work of one run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan<'m> {
    /// Files to download, in manifest order.
    pub fetch: Vec<&'m VerifiedFile>,
    /// Store paths in the way of a download (a folder where a file goes, a file
    /// where a folder goes, another letter case of the same name): removed first.
    pub clear: Vec<StorePath>,
    /// Store paths to remove after the downloads, outermost only (a folder
    /// takes its contents along). Later, so a moved file can be copied from
    /// its old place. Whatever the store holds, names the manifest would
    /// refuse too.
    pub delete: Vec<StorePath>,
    /// Files in scope already identical by size and modification time.
    pub unchanged: usize,
}

impl Plan<'_> {
    /// Bytes the fetch list adds up to.
    pub(crate) fn fetch_bytes(&self) -> u64 {
        self.fetch.iter().map(|f| f.size()).sum()
    }
}

/// Compares `manifest` with `inventory` under `scope`. A local file is
/// unchanged when its size and mtime match the manifest's, as rsync's quick
/// check has it, unless `index` knows that file (same size and mtime) to hold
/// other content: a file the publisher changed within the same second and
/// without changing its size is fetched all the same.
pub(crate) fn plan<'m>(
    manifest: &'m VerifiedManifest,
    scope: &Scope,
    inventory: &Inventory,
    index: Option<&StoreIndex>,
) -> Plan<'m> {
    let mut result = Plan::default();
    let wanted: HashMap<&str, &VerifiedFile> = manifest
        .files()
        .iter()
        .filter(|f| scope.judge(f.path().as_str()) == Verdict::Mirrored)
        .map(|f| (f.path().as_str(), f))
        .collect();
    let needed_dirs: HashSet<&str> = wanted.keys().flat_map(|p| folders_above(p)).collect();

    for file in manifest.files() {
        let Some(wanted_file) = wanted.get(file.path().as_str()) else {
            continue;
        };
        // Known to hold other content, or to be another file than the one
        // verified (replaced with the same size and mtime).
        let known_other = |size: u64, mtime: i64, id: FileId| {
            index
                .and_then(|index| index.files.get(file.path().as_str()))
                .is_some_and(|entry| {
                    entry.size == size
                        && entry.mtime == mtime
                        && (parse_sha256(&entry.sha256) != Some(*file.sha256())
                            || entry.id.is_some_and(|known| known != id))
                })
        };
        match inventory.entries.get(file.path().as_str()).map(|e| &e.kind) {
            Some(LocalKind::File { size, mtime, id })
                if *size == wanted_file.size()
                    && *mtime == wanted_file.mtime()
                    && (inventory.rehashed.contains(file.path().as_str())
                        || (!known_other(*size, *mtime, *id)
                            && !inventory.suspect.contains(file.path().as_str()))) =>
            {
                result.unchanged += 1;
            }
            _ => result.fetch.push(file),
        }
    }

    // Folders that hold something the run must leave alone.
    let untouched_dirs: HashSet<&str> = inventory
        .entries
        .keys()
        .map(StorePath::as_str)
        .filter(|p| scope.judge(p) == Verdict::Untouched)
        .flat_map(folders_above)
        .collect();
    let mut candidates = BTreeMap::new();
    for (path, entry) in &inventory.entries {
        if scope.judge(path.as_str()) == Verdict::Untouched {
            continue;
        }
        let keep = match entry.kind {
            LocalKind::File { .. } => wanted.contains_key(path.as_str()),
            LocalKind::Dir => {
                needed_dirs.contains(path.as_str()) || untouched_dirs.contains(path.as_str())
            }
            LocalKind::Other => false,
        };
        if !keep {
            candidates.insert(path.as_str(), path);
        }
    }
    // NTFS folds letter case, so compare as it would: the fetched files and
    // the folders they need.
    let fetched: Vec<String> = result.fetch.iter().map(|f| f.path().fold_key()).collect();
    let fetched_files: HashSet<&str> = fetched.iter().map(String::as_str).collect();
    let fetched_dirs: HashSet<&str> = fetched.iter().flat_map(|f| folders_above(f)).collect();
    for (text, path) in candidates
        .iter()
        .filter(|(text, _)| !folders_above(text).any(|dir| candidates.contains_key(dir)))
    {
        let folded = text.to_lowercase();
        // The same name, a folder a fetched file needs, or a file where a
        // fetched file's folder goes.
        let in_the_way = fetched_files.contains(folded.as_str())
            || fetched_dirs.contains(folded.as_str())
            || folders_above(&folded).any(|dir| fetched_files.contains(dir));
        if in_the_way {
            result.clear.push((*path).clone());
        } else {
            result.delete.push((*path).clone());
        }
    }
    result
}

/// The folders above `path`, outermost first: `a`, `a/b` for `a/b/c`.
fn folders_above(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(end, _)| &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::format::FileEntry;
    use crate::manifest::path::RelPath;
    use crate::sync::inventory::LocalEntry;
    use crate::sync::scope::PackageFolders;

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            mtime: 100,
            sha256: hex::encode([0u8; 32]),
            signature: None,
        }
    }

    /// A store path as the walk would find it.
    fn store_path(path: &str) -> StorePath {
        StorePath::from(&RelPath::new(path).unwrap())
    }

    fn inventory(entries: &[(&str, Option<u64>)]) -> Inventory {
        let mut inv = Inventory::default();
        for (path, size) in entries {
            let kind = match size {
                Some(size) => LocalKind::File {
                    size: *size,
                    mtime: 100,
                    id: FileId { ino: 1, changed: 2 },
                },
                None => LocalKind::Dir,
            };
            inv.entries.insert(store_path(path), LocalEntry { kind });
        }
        inv
    }

    fn manifest(files: Vec<FileEntry>) -> VerifiedManifest {
        VerifiedManifest::for_tests(1, files)
    }

    #[test]
    fn new_and_changed_files_are_fetched_and_identical_ones_kept() {
        let m = manifest(vec![
            file("a.xml", 1),
            file("packages/x/b.msi", 5),
            file("c.txt", 3),
        ]);
        let inv = inventory(&[("a.xml", Some(1)), ("c.txt", Some(4))]);
        let scope = Scope::new(PackageFolders::All, &[]);
        let plan = plan(&m, &scope, &inv, None);
        let fetched: Vec<_> = plan.fetch.iter().map(|f| f.path().as_str()).collect();
        assert_eq!(fetched, ["c.txt", "packages/x/b.msi"]);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.fetch_bytes(), 8);
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn a_file_changed_without_a_new_size_or_mtime_is_fetched_when_the_index_knows() {
        let mut changed = file("a.msi", 1);
        changed.sha256 = hex::encode([1u8; 32]);
        let m = manifest(vec![changed]);
        let inv = inventory(&[("a.msi", Some(1))]);
        let scope = Scope::new(PackageFolders::All, &[]);
        let mut index = StoreIndex::default();
        index.files.insert(
            RelPath::new("a.msi").unwrap(),
            crate::store::index::IndexEntry {
                size: 1,
                mtime: 100,
                sha256: hex::encode([0u8; 32]),
                id: None,
            },
        );
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).fetch.len(), 1);
        assert_eq!(plan(&m, &scope, &inv, None).unchanged, 1);
        index.files.get_mut("a.msi").unwrap().sha256 = hex::encode([1u8; 32]);
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).unchanged, 1);
    }

    #[test]
    fn a_file_put_in_place_of_the_verified_one_is_fetched_despite_size_and_mtime() {
        let m = manifest(vec![file("a.msi", 1)]);
        let mut inv = inventory(&[("a.msi", Some(1))]);
        let scope = Scope::new(PackageFolders::All, &[]);
        let mut index = StoreIndex::default();
        let verified = FileId { ino: 1, changed: 2 };
        index.files.insert(
            RelPath::new("a.msi").unwrap(),
            crate::store::index::IndexEntry {
                size: 1,
                mtime: 100,
                sha256: hex::encode([0u8; 32]),
                id: Some(verified),
            },
        );
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).unchanged, 1);
        index.files.get_mut("a.msi").unwrap().id = Some(FileId { ino: 9, changed: 2 });
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).fetch.len(), 1);
        index.files.get_mut("a.msi").unwrap().id = Some(FileId { ino: 1, changed: 3 });
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).fetch.len(), 1);
        // A file the repair fixed is never unchanged by its metadata alone.
        index.files.get_mut("a.msi").unwrap().id = Some(verified);
        inv.suspect.insert(store_path("a.msi"));
        assert_eq!(plan(&m, &scope, &inv, Some(&index)).fetch.len(), 1);
    }

    #[test]
    fn unlisted_files_and_folders_are_deleted_outermost_only() {
        let m = manifest(vec![file("keep/a.txt", 1)]);
        let inv = inventory(&[
            ("keep", None),
            ("keep/a.txt", Some(1)),
            ("keep/old.txt", Some(1)),
            ("gone", None),
            ("gone/sub", None),
            ("gone/sub/x", Some(1)),
            ("empty", None),
        ]);
        let plan = plan(&m, &Scope::new(PackageFolders::All, &[]), &inv, None);
        assert_eq!(plan.delete, ["empty", "gone", "keep/old.txt"]);
    }

    #[test]
    fn local_names_the_manifest_would_refuse_are_deleted_all_the_same() {
        let m = manifest(vec![file("keep.txt", 1)]);
        let mut inv = inventory(&[("keep.txt", Some(1))]);
        let dir = StorePath::child(None, "CON").unwrap();
        for (path, kind) in [
            (
                StorePath::child(Some(&dir), "x ").unwrap(),
                LocalKind::Other,
            ),
            (dir, LocalKind::Dir),
            (StorePath::child(None, "a.").unwrap(), LocalKind::Other),
        ] {
            inv.entries.insert(path, LocalEntry { kind });
        }
        let plan = plan(&m, &Scope::new(PackageFolders::All, &[]), &inv, None);
        assert_eq!(plan.delete, ["CON", "a."]);
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn excluded_paths_are_deleted_even_when_listed() {
        let m = manifest(vec![file("client/x.cmd", 1), file("config.xml", 1)]);
        let inv = inventory(&[("client", None), ("client/x.cmd", Some(1))]);
        let scope = Scope::new(PackageFolders::All, &["client".into()]);
        let plan = plan(&m, &scope, &inv, None);
        assert_eq!(plan.delete, ["client"]);
        let fetched: Vec<_> = plan.fetch.iter().map(|f| f.path().as_str()).collect();
        assert_eq!(fetched, ["config.xml"]);
    }

    #[test]
    fn setup_leaves_package_folders_alone() {
        let m = manifest(vec![
            file("packages/7zip.xml", 1),
            file("packages/7zip/7z.msi", 9),
        ]);
        let inv = inventory(&[
            ("packages", None),
            ("packages/old.xml", Some(1)),
            ("packages/firefox", None),
            ("packages/firefox/setup.exe", Some(1)),
        ]);
        let plan = plan(&m, &Scope::new(PackageFolders::setup(), &[]), &inv, None);
        let fetched: Vec<_> = plan.fetch.iter().map(|f| f.path().as_str()).collect();
        assert_eq!(fetched, ["packages/7zip.xml"]);
        assert_eq!(plan.delete, ["packages/old.xml"]);
    }

    #[test]
    fn a_folder_where_a_file_belongs_is_deleted() {
        let m = manifest(vec![file("a", 1)]);
        let inv = inventory(&[("a", None), ("a/b", Some(1))]);
        let plan = plan(&m, &Scope::new(PackageFolders::All, &[]), &inv, None);
        assert_eq!(plan.clear, ["a"]);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.fetch.len(), 1);
    }

    #[test]
    fn twenty_thousand_stale_entries_are_planned_outermost_first() {
        // The outermost and in-the-way checks
        // compared every stale entry with every other.
        let m = manifest(vec![
            file("config.xml", 1),
            file("packages/7zip.xml", 1),
            file("packages/7zip/7z.msi", 9),
            file("new/file.txt", 1),
            file("Moved/x", 1),
        ]);
        let mut entries: Vec<(String, Option<u64>)> = vec![
            ("config.xml".into(), Some(1)),
            ("packages".into(), None),
            ("packages/old.xml".into(), Some(1)),
            ("packages/firefox".into(), None),
            ("packages/firefox/setup.exe".into(), Some(1)),
            // In the way of downloads: a file where a folder goes, and a
            // folder of another letter case holding a stale file.
            ("new".into(), Some(1)),
            ("moved".into(), None),
            ("moved/y".into(), Some(1)),
        ];
        let mut expected_delete = vec!["packages/old.xml".to_string()];
        for dir in 0..100 {
            entries.push((format!("old{dir:03}"), None));
            entries.push((format!("old{dir:03}/sub"), None));
            expected_delete.push(format!("old{dir:03}"));
            for n in 0..100 {
                entries.push((format!("old{dir:03}/sub/f{n:03}"), Some(1)));
            }
        }
        for n in 0..9_800 {
            entries.push((format!("stale{n:05}.txt"), Some(1)));
            expected_delete.push(format!("stale{n:05}.txt"));
        }
        let stale = entries.len() - 5;
        assert!(stale >= 20_000, "{stale}");
        let refs: Vec<(&str, Option<u64>)> =
            entries.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let inv = inventory(&refs);

        let started = std::time::Instant::now();
        let plan = plan(&m, &Scope::new(PackageFolders::setup(), &[]), &inv, None);
        eprintln!("planned {stale} stale entries in {:?}", started.elapsed());

        expected_delete.sort();
        assert_eq!(plan.delete, expected_delete);
        assert_eq!(plan.clear, ["moved", "new"]);
        let fetched: Vec<_> = plan.fetch.iter().map(|f| f.path().as_str()).collect();
        assert_eq!(fetched, ["Moved/x", "new/file.txt", "packages/7zip.xml"]);
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn a_name_in_another_letter_case_is_cleared_before_the_download() {
        let m = manifest(vec![file("Setup.exe", 1), file("dir/x", 1)]);
        let inv = inventory(&[
            ("setup.exe", Some(1)),
            ("dir", Some(1)),
            ("old.txt", Some(1)),
        ]);
        let plan = plan(&m, &Scope::new(PackageFolders::All, &[]), &inv, None);
        assert_eq!(plan.clear, ["dir", "setup.exe"]);
        assert_eq!(plan.delete, ["old.txt"]);
    }
}
