//! The candidates of a publish: every file of the WPKG tree that a client could
//! store under its manifest path.
//!
//! The walk follows links that stay inside the repository and skips, with a
//! warning, names the path rules of `manifest::path` refuse, links that leave
//! the repository or reach `.wpkgsync/`, special files, and paths that would be
//! one file on Windows.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::path::{Path, PathBuf};

use super::error::PublishError;
use super::imp;
use super::parallel::in_parallel;
use crate::manifest::format::META_DIR;
use crate::manifest::path::RelPath;

/// A file the walk found and the path rules accepted.
pub(super) struct Candidate {
    /// Its manifest path.
    pub(super) path: RelPath,
    /// Where to read it: the file itself, or a link's canonical target.
    pub(super) source: PathBuf,
    /// Metadata of `source`.
    pub(super) meta: Metadata,
}

/// The files of the tree at `root` (canonical) that may be published, sorted by
/// path; what is skipped goes to `warnings`.
pub(super) fn candidates(
    root: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<Candidate>, PublishError> {
    let found = Walk::new(root, warnings).run()?;
    Ok(drop_case_collisions(found, warnings))
}

/// The walk over the repository: collects candidates and warnings.
struct Walk<'a> {
    /// Canonical repository root.
    root: &'a Path,
    /// Canonical `.wpkgsync` folder, which links must not reach either.
    meta_dir: PathBuf,
    /// Files accepted so far, in walk order.
    found: Vec<Candidate>,
    /// Regular files found by the listing, whose metadata is read after the
    /// walk on every core (the lookups, not the listing, cost the time).
    regular: Vec<(RelPath, PathBuf)>,
    /// Where skipped paths are reported.
    warnings: &'a mut Vec<String>,
}

impl<'a> Walk<'a> {
    /// A walk of `root`, which must be canonical.
    fn new(root: &'a Path, warnings: &'a mut Vec<String>) -> Walk<'a> {
        Walk {
            root,
            meta_dir: root.join(META_DIR),
            found: Vec::new(),
            regular: Vec::new(),
            warnings,
        }
    }

    /// Walks the whole tree and returns the candidates sorted by path.
    fn run(mut self) -> Result<Vec<Candidate>, PublishError> {
        let mut ancestors = vec![self.root.to_path_buf()];
        self.walk_dir(self.root, None, &mut ancestors)?;
        let regular = std::mem::take(&mut self.regular);
        let metas = in_parallel(&regular, |(_, full)| {
            fs::symlink_metadata(full).map_err(|source| PublishError::Metadata {
                path: full.clone(),
                source,
            })
        })?;
        for ((path, source), meta) in regular.into_iter().zip(metas) {
            if meta.is_file() {
                self.found.push(Candidate { path, source, meta });
            } else {
                self.skip(path.as_str(), "changed from a file while it was listed");
            }
        }
        let mut found = self.found;
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }

    /// Walks one folder. `dir` is canonical; `prefix` is its manifest path
    /// (none for the root); `ancestors` are the canonical folders above and
    /// including it, so a link back to one of them is not walked in a loop.
    fn walk_dir(
        &mut self,
        dir: &Path,
        prefix: Option<&str>,
        ancestors: &mut Vec<PathBuf>,
    ) -> Result<(), PublishError> {
        let list_error = |source| PublishError::List {
            path: dir.to_path_buf(),
            source,
        };
        for entry in fs::read_dir(dir).map_err(list_error)? {
            let entry = entry.map_err(list_error)?;
            let name = entry.file_name();
            if prefix.is_none() && name == META_DIR {
                continue;
            }
            let full = entry.path();
            let Some(name) = name.to_str() else {
                self.skip(&full.display().to_string(), "name is not valid UTF-8");
                continue;
            };
            let text = match prefix {
                Some(prefix) => format!("{prefix}/{name}"),
                None => name.to_owned(),
            };
            // Checked for folders too, so a bad folder name costs one warning
            // rather than one per file below it.
            let path = match RelPath::new(&text) {
                Ok(path) => path,
                Err(err) => {
                    self.skip(&text, &err.to_string());
                    continue;
                }
            };
            let file_type = entry.file_type().map_err(|source| PublishError::Metadata {
                path: full.clone(),
                source,
            })?;
            if file_type.is_symlink() {
                self.follow_link(&full, path, ancestors)?;
            } else if file_type.is_dir() {
                // A real folder in a canonical folder has a canonical path.
                self.descend(full, path, ancestors)?;
            } else if file_type.is_file() {
                self.regular.push((path, full));
            } else {
                let reason = format!("not a regular file ({})", imp::special_kind(&file_type));
                self.skip(&text, &reason);
            }
        }
        Ok(())
    }

    /// Walks the canonical folder `dir` under the manifest path `path`.
    fn descend(
        &mut self,
        dir: PathBuf,
        path: RelPath,
        ancestors: &mut Vec<PathBuf>,
    ) -> Result<(), PublishError> {
        ancestors.push(dir.clone());
        let result = self.walk_dir(&dir, Some(path.as_str()), ancestors);
        ancestors.pop();
        result
    }

    /// Follows a link whose target stays inside the repository; skips others.
    fn follow_link(
        &mut self,
        link: &Path,
        path: RelPath,
        ancestors: &mut Vec<PathBuf>,
    ) -> Result<(), PublishError> {
        let target = match fs::canonicalize(link) {
            Ok(target) => target,
            Err(err) => {
                self.skip(
                    path.as_str(),
                    &format!("symbolic link does not resolve ({err})"),
                );
                return Ok(());
            }
        };
        if !target.starts_with(self.root) {
            self.skip(path.as_str(), "symbolic link leaves the repository");
            return Ok(());
        }
        if target.starts_with(&self.meta_dir) {
            self.skip(
                path.as_str(),
                &format!("symbolic link points into {META_DIR}"),
            );
            return Ok(());
        }
        let meta = fs::metadata(&target).map_err(|source| PublishError::Metadata {
            path: target.clone(),
            source,
        })?;
        if meta.is_dir() {
            if ancestors.contains(&target) {
                self.skip(
                    path.as_str(),
                    "symbolic link loops back to a folder above it",
                );
                return Ok(());
            }
            self.descend(target, path, ancestors)
        } else if meta.is_file() {
            self.found.push(Candidate {
                path,
                source: target,
                meta,
            });
            Ok(())
        } else {
            let reason = format!(
                "symbolic link to a {}",
                imp::special_kind(&meta.file_type())
            );
            self.skip(path.as_str(), &reason);
            Ok(())
        }
    }

    /// Records a skipped path and why.
    fn skip(&mut self, path: &str, reason: &str) {
        self.warnings.push(format!("skipped {path}: {reason}"));
    }
}

/// Drops paths that would be one file on Windows: a path equal to an earlier one
/// apart from letter case, and a file whose name is also a folder's (`a` beside
/// `A/b`). The later path in byte order is the one skipped.
fn drop_case_collisions(candidates: Vec<Candidate>, warnings: &mut Vec<String>) -> Vec<Candidate> {
    let mut files: HashMap<String, String> = HashMap::new();
    let mut folders: HashMap<String, String> = HashMap::new();
    let mut kept = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let path = candidate.path.to_string();
        let key = candidate.path.fold_key();
        let clash = files
            .get(&key)
            .map(|first| format!("same path as {first} apart from letter case"))
            .or_else(|| {
                folders.get(&key).map(|first| {
                    format!("a folder of {first} has this name apart from letter case")
                })
            })
            .or_else(|| {
                folder_keys(&key).find_map(|folder| {
                    files.get(folder).map(|first| {
                        format!(
                            "file {first} has the name of one of its folders apart from letter case"
                        )
                    })
                })
            });
        if let Some(reason) = clash {
            warnings.push(format!("skipped {path}: {reason}"));
            continue;
        }
        for folder in folder_keys(&key) {
            folders
                .entry(folder.to_owned())
                .or_insert_with(|| path.clone());
        }
        files.insert(key, path);
        kept.push(candidate);
    }
    kept
}

/// The folders above a path: `a`, `a/b` for `a/b/c`.
fn folder_keys(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('/').map(|(at, _)| &key[..at])
}
