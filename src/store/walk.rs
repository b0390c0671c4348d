//! A folder tree walked level by level, each level's folders shared among a
//! few threads: on a cold cache a walk waits on the disk, which answers several
//! requests at once, and on a warm one the per-entry system calls of a single
//! thread wait on each other. The ACL repair walks the store with
//! [`store_entries`], and the inventory is built from what that walk found
//! (or walks with it itself where no repair ran before it).

use std::io;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use cap_std::fs::{Dir, Metadata};

use super::dir::StoreDir;
use super::index::FileId;
use super::path::StorePath;

/// One entry of the store as a walk left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// Its path below the root.
    pub path: StorePath,
    /// What it is.
    pub kind: FoundKind,
}

/// What an entry is, from its own metadata (a link not followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FoundKind {
    /// A folder, entered by the walk.
    Dir,
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time, Unix seconds.
        mtime: i64,
        /// Which file it is.
        id: FileId,
    },
    /// A link or a special file; never followed.
    Other,
}

impl FoundKind {
    /// What the entry `meta` describes is.
    pub(crate) fn of(meta: &Metadata) -> FoundKind {
        let kind = meta.file_type();
        if kind.is_symlink() {
            FoundKind::Other
        } else if kind.is_dir() {
            FoundKind::Dir
        } else if kind.is_file() {
            let mtime = meta
                .modified()
                .ok()
                .map(|t| t.into_std())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            FoundKind::File {
                size: meta.len(),
                mtime,
                id: FileId::of(meta),
            }
        } else {
            FoundKind::Other
        }
    }
}

/// What failed in a walk of the store: the operation, on which path, why.
pub(crate) struct WalkError {
    /// `open`, `list` or `stat`.
    pub op: &'static str,
    /// The folder or entry, joined onto the root for messages.
    pub path: PathBuf,
    /// What the system said.
    pub error: io::Error,
}

/// Walks everything below the store root, level by level ([`by_levels`]).
/// Each folder is opened through the root's handle without following a link
/// and listed once; each entry's metadata is read once, a link not followed,
/// and handed to `visit` with its folder's handle, its name and its path.
/// `visit` returns the entry's metadata as it left it (read again if it
/// changed the entry, `None` if it removed it) and fails the walk with
/// `Err`. Folders are entered after `visit` is done with them. Returns every
/// entry left, level by level.
pub(crate) fn store_entries<E: Send>(
    store: &StoreDir,
    visit: impl Fn(&Dir, &str, &StorePath, Metadata) -> Result<Option<Metadata>, E> + Sync,
    failed: impl Fn(WalkError) -> E + Sync,
) -> Result<Vec<Found>, E> {
    let levels = by_levels(
        vec![None],
        |dirs| list_folders(store, dirs, &visit, &failed),
        || {
            failed(WalkError {
                op: "list",
                path: store.path().to_path_buf(),
                error: io::Error::other("a walking thread panicked"),
            })
        },
    )?;
    Ok(levels.into_iter().flatten().collect())
}

/// Lists the folders `dirs` (`None` for the root) one level deep for
/// [`store_entries`]; returns what is left of their entries and the folders
/// among them.
fn list_folders<E>(
    store: &StoreDir,
    dirs: &[Option<StorePath>],
    visit: &(impl Fn(&Dir, &str, &StorePath, Metadata) -> Result<Option<Metadata>, E> + Sync),
    failed: &(impl Fn(WalkError) -> E + Sync),
) -> Result<(Vec<Found>, Vec<Option<StorePath>>), E> {
    let mut found = Vec::new();
    let mut next = Vec::new();
    for prefix in dirs {
        let prefix = prefix.as_ref();
        let shown = || prefix.map_or_else(|| store.path().to_path_buf(), |p| store.full(p));
        let fail = |op, error| {
            failed(WalkError {
                op,
                path: shown(),
                error,
            })
        };
        let dir = store.open_folder(prefix).map_err(|e| fail("open", e))?;
        for entry in dir.entries().map_err(|e| fail("list", e))? {
            let entry = entry.map_err(|e| fail("list", e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = StorePath::child(prefix, &name).ok_or_else(|| {
                fail(
                    "list",
                    io::Error::other(format!("{name:?} is not a file name")),
                )
            })?;
            let meta = dir.symlink_metadata(&*name).map_err(|error| {
                failed(WalkError {
                    op: "stat",
                    path: store.full(&path),
                    error,
                })
            })?;
            let Some(meta) = visit(&dir, &name, &path, meta)? else {
                continue;
            };
            let kind = FoundKind::of(&meta);
            if kind == FoundKind::Dir {
                next.push(Some(path.clone()));
            }
            found.push(Found { path, kind });
        }
    }
    Ok((found, next))
}

/// Runs `visit` on the folders of each level, starting with `first`; a level's
/// folders are split among threads. `visit` returns what it found and the
/// folders of the next level. Returns every result, level by level, or the
/// first error; `panicked` makes the error for a thread that panicked.
pub(crate) fn by_levels<T, R, E>(
    first: Vec<T>,
    visit: impl Fn(&[T]) -> Result<(R, Vec<T>), E> + Sync,
    panicked: impl Fn() -> E,
) -> Result<Vec<R>, E>
where
    T: Send + Sync,
    R: Send,
    E: Send,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() * 2);
    let visit = &visit;
    let mut found = Vec::new();
    let mut level = first;
    while !level.is_empty() {
        let per_thread = level.len().div_ceil(threads);
        let results: Vec<Result<(R, Vec<T>), E>> = std::thread::scope(|scope| {
            let workers: Vec<_> = level
                .chunks(per_thread)
                .map(|dirs| scope.spawn(move || visit(dirs)))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap_or_else(|_| Err(panicked())))
                .collect()
        });
        level = Vec::new();
        for result in results {
            let (result, next) = result?;
            found.push(result);
            level.extend(next);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_is_visited_once_and_errors_stop_the_walk() {
        // A binary tree of numbers 1..64: node n has children 2n and 2n+1.
        let children = |nodes: &[u32]| -> Result<(Vec<u32>, Vec<u32>), String> {
            let next = nodes
                .iter()
                .flat_map(|n| [2 * n, 2 * n + 1])
                .filter(|n| *n < 64)
                .collect();
            Ok((nodes.to_vec(), next))
        };
        let mut seen: Vec<u32> = by_levels(vec![1], children, || "panicked".to_string())
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..64).collect::<Vec<_>>());

        let failing = |nodes: &[u32]| -> Result<((), Vec<u32>), String> {
            if nodes.iter().any(|n| *n >= 8) {
                return Err("too deep".into());
            }
            Ok(((), nodes.iter().flat_map(|n| [2 * n, 2 * n + 1]).collect()))
        };
        assert_eq!(
            by_levels(vec![1], failing, || "panicked".to_string()),
            Err("too deep".to_string())
        );
    }
}
