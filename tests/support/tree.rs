//! Snapshots of folder trees and the assertions tests make about them: a store
//! mirrors a repository, a store did not change, no temporary file remains.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use wpkgsync::manifest::format::META_DIR;

/// Prefix of the client's temporary files, which must never outlive a run.
pub(crate) const TEMP_PREFIX: &str = ".wpkgsync-tmp-";

/// One entry of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    /// A folder.
    Dir,
    /// A file: its bytes, mtime in whole seconds, and inode (a rewrite through
    /// a temporary file and a rename changes the inode even when nothing else does).
    File {
        /// The content.
        bytes: Vec<u8>,
        /// Modification time, Unix seconds.
        mtime: i64,
        /// Inode number.
        inode: u64,
    },
}

/// Every entry below a folder, by `/`-separated relative path.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Tree(pub BTreeMap<String, Node>);

impl Tree {
    /// Reads `root` recursively; a missing folder gives an empty tree. Anything
    /// but files and folders (a symlink, say) fails the test: a store never holds
    /// one.
    pub(crate) fn read(root: &Path) -> Tree {
        let mut tree = Tree::default();
        if root.exists() {
            walk(root, "", &mut tree.0);
        }
        tree
    }

    /// Whether there is nothing at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The file paths only.
    pub(crate) fn files(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, node)| matches!(node, Node::File { .. }))
            .map(|(path, _)| path.as_str())
            .collect()
    }

    /// The content of the file `rel`, if there is one.
    pub(crate) fn bytes(&self, rel: &str) -> Option<&[u8]> {
        match self.0.get(rel) {
            Some(Node::File { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }

    /// Paths of temporary files left behind.
    pub(crate) fn temp_files(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter(|path| {
                path.rsplit('/')
                    .next()
                    .unwrap_or("")
                    .starts_with(TEMP_PREFIX)
            })
            .map(String::as_str)
            .collect()
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Node>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {dir:?}: {e}"));
    for entry in entries {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("stat {path:?}: {e}"));
        if meta.is_dir() {
            out.insert(rel.clone(), Node::Dir);
            walk(&path, &rel, out);
        } else if meta.is_file() {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
            out.insert(
                rel,
                Node::File {
                    bytes,
                    mtime: meta.mtime(),
                    inode: meta.ino(),
                },
            );
        } else {
            panic!("unexpected file type at {path:?}: {:?}", meta.file_type());
        }
    }
}

/// Asserts that `store` holds exactly the files of `repo` (leaving out the
/// signed records and any folder in `excluded`), byte for byte and with the same
/// mtimes, and no folder that holds no file.
pub(crate) fn assert_mirrors(store: &Path, repo: &Path, excluded: &[&str]) {
    let source = Tree::read(repo);
    let local = Tree::read(store);
    let skip = |path: &str| {
        path == META_DIR
            || path.starts_with(&format!("{META_DIR}/"))
            || excluded
                .iter()
                .any(|x| path == *x || path.starts_with(&format!("{x}/")))
    };
    let mut problems = Vec::new();
    for (path, node) in &source.0 {
        let Node::File { bytes, mtime, .. } = node else {
            continue;
        };
        if skip(path) {
            continue;
        }
        match local.0.get(path) {
            Some(Node::File {
                bytes: got,
                mtime: got_mtime,
                ..
            }) => {
                if got != bytes {
                    problems.push(format!("{path}: content differs"));
                }
                if got_mtime != mtime {
                    problems.push(format!("{path}: mtime {got_mtime}, source has {mtime}"));
                }
            }
            Some(Node::Dir) => problems.push(format!("{path}: a folder in the store")),
            None => problems.push(format!("{path}: missing from the store")),
        }
    }
    for (path, node) in &local.0 {
        match node {
            Node::File { .. } => {
                let listed = matches!(source.0.get(path), Some(Node::File { .. }));
                if !listed || skip(path) {
                    problems.push(format!("{path}: in the store but not published"));
                }
            }
            Node::Dir => {
                let inner = format!("{path}/");
                if !local.files().iter().any(|f| f.starts_with(&inner)) {
                    problems.push(format!("{path}/: a folder with no file left in the store"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the store {store:?} does not mirror {repo:?}:\n  {}",
        problems.join("\n  ")
    );
}

/// Asserts that `after` is `before`: same paths, bytes, mtimes and inodes.
pub(crate) fn assert_unchanged(before: &Tree, after: &Tree, what: &str) {
    if before == after {
        return;
    }
    let mut problems = Vec::new();
    for (path, node) in &before.0 {
        match after.0.get(path) {
            None => problems.push(format!("{path}: removed")),
            Some(other) if other != node => problems.push(format!("{path}: changed")),
            Some(_) => {}
        }
    }
    for path in after.0.keys() {
        if !before.0.contains_key(path) {
            problems.push(format!("{path}: added"));
        }
    }
    panic!("{what} changed:\n  {}", problems.join("\n  "));
}
