//! What the local store holds now: one walk, no links followed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::store::StoreError;

/// Prefix of the temporary files a sync writes beside their targets.
pub const TEMP_PREFIX: &str = ".wpkgsync-tmp-";

/// One thing found in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time, Unix seconds.
        mtime: i64,
    },
    /// A folder.
    Dir,
    /// A link or special file; never followed, replaced when in scope.
    Other,
}

/// One entry of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEntry {
    /// The path on disk.
    pub full: PathBuf,
    /// What it is.
    pub kind: LocalKind,
}

/// The store's contents by `/`-separated relative path.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Every entry but the temporary files.
    pub entries: BTreeMap<String, LocalEntry>,
    /// Temporary files left by an interrupted run.
    pub temps: Vec<PathBuf>,
}

impl Inventory {
    /// Walks `root`; a missing root is an empty store. Each level of folders is
    /// listed on several threads: on a cold cache the walk waits on the disk,
    /// and a disk answers several requests at once.
    pub fn scan(root: &Path) -> Result<Inventory, StoreError> {
        let mut inventory = Inventory::default();
        if !root.exists() {
            return Ok(inventory);
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get() * 2);
        let mut level = vec![(root.to_path_buf(), String::new())];
        while !level.is_empty() {
            let per_thread = level.len().div_ceil(threads);
            let listed: Vec<Result<Listing, StoreError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = level
                    .chunks(per_thread)
                    .map(|dirs| scope.spawn(move || list(dirs)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            let panicked = std::io::Error::other("listing thread panicked");
                            Err(StoreError::io("list", root, panicked))
                        })
                    })
                    .collect()
            });
            level = Vec::new();
            for listing in listed {
                let listing = listing?;
                inventory.temps.extend(listing.temps);
                level.extend(listing.dirs);
                inventory.entries.extend(listing.entries);
            }
        }
        Ok(inventory)
    }
}

/// What listing some folders found.
#[derive(Default)]
struct Listing {
    entries: Vec<(String, LocalEntry)>,
    temps: Vec<PathBuf>,
    dirs: Vec<(PathBuf, String)>,
}

/// Lists `dirs` (path and relative prefix), one level deep.
fn list(dirs: &[(PathBuf, String)]) -> Result<Listing, StoreError> {
    let mut listing = Listing::default();
    for (dir, prefix) in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| StoreError::io("list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
            let full = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let meta =
                std::fs::symlink_metadata(&full).map_err(|e| StoreError::io("stat", &full, e))?;
            let kind = if meta.is_dir() {
                listing.dirs.push((full.clone(), rel.clone()));
                LocalKind::Dir
            } else if meta.is_file() {
                if name.starts_with(TEMP_PREFIX) {
                    listing.temps.push(full);
                    continue;
                }
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                LocalKind::File {
                    size: meta.len(),
                    mtime,
                }
            } else {
                LocalKind::Other
            };
            listing.entries.push((rel, LocalEntry { full, kind }));
        }
    }
    Ok(listing)
}
