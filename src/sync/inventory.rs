//! What the local store holds now: one walk, no links followed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::store::{StoreError, walk};

pub use crate::manifest::format::TEMP_PREFIX;

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
    /// Walks `root` level by level on a few threads ([`walk::by_levels`]); a
    /// missing root is an empty store.
    pub fn scan(root: &Path) -> Result<Inventory, StoreError> {
        let mut inventory = Inventory::default();
        if !root.exists() {
            return Ok(inventory);
        }
        let listings = walk::by_levels(
            vec![(root.to_path_buf(), String::new())],
            |dirs| {
                list(dirs).map(|mut listing| {
                    let next = std::mem::take(&mut listing.dirs);
                    (listing, next)
                })
            },
            || {
                let panicked = std::io::Error::other("listing thread panicked");
                StoreError::io("list", root, panicked)
            },
        )?;
        for listing in listings {
            inventory.temps.extend(listing.temps);
            inventory.entries.extend(listing.entries);
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
