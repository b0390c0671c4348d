//! Paths relative to the store root.
//!
//! A [`StorePath`] names something found in the store: its components are
//! names a listing returned, so none is empty, `.` or `..` or holds a
//! separator, and joined onto the root it stays below it. It need not pass the
//! manifest's rules ([`RelPath`]): a local file named `CON` or `a.` exists all
//! the same and may have to be deleted. [`StoreDir`](super::dir::StoreDir)
//! takes only these two kinds of path ([`InStore`]).

use std::borrow::Borrow;
use std::fmt;

use crate::manifest::path::RelPath;

/// A `/`-separated path below the store root, made from the names a walk of
/// the store listed or from a manifest path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StorePath(String);

impl StorePath {
    /// The entry `name` a listing of the folder `parent` (the root when
    /// `None`) returned; `None` when `name` is not a single component.
    pub(crate) fn child(parent: Option<&StorePath>, name: &str) -> Option<StorePath> {
        is_name(name).then(|| match parent {
            Some(parent) => StorePath(format!("{}/{name}", parent.0)),
            None => StorePath(name.to_owned()),
        })
    }

    /// The entry `name` in the folder that holds `path`; `None` when `name`
    /// is not a single component.
    pub(crate) fn beside(path: &impl InStore, name: &str) -> Option<StorePath> {
        is_name(name).then(|| match path.rel().rsplit_once('/') {
            Some((folder, _)) => StorePath(format!("{folder}/{name}")),
            None => StorePath(name.to_owned()),
        })
    }

    /// The path, `/`-separated.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is one component: not empty, `.` or `..`, and free of
/// this system's separators.
fn is_name(name: &str) -> bool {
    let separator = |c: char| c == '/' || (cfg!(windows) && c == '\\');
    !name.is_empty() && name != "." && name != ".." && !name.contains(separator)
}

impl From<&RelPath> for StorePath {
    /// A manifest path passed stricter rules than a store path needs.
    fn from(path: &RelPath) -> StorePath {
        StorePath(path.as_str().to_owned())
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps and sets of paths are looked up by the text of a path; `Eq`, `Ord`
/// and `Hash` are the string's, as `Borrow` requires.
impl Borrow<str> for StorePath {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for StorePath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StorePath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for StorePath {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

/// A path the store may be handed: relative, `/`-separated, with no
/// component that leads out of the root. Only [`StorePath`] and the
/// manifest's [`RelPath`] are one; the trait is the crate's own, so nothing
/// outside can add another.
pub(crate) trait InStore {
    /// The path, `/`-separated.
    fn rel(&self) -> &str;
}

impl InStore for StorePath {
    fn rel(&self) -> &str {
        &self.0
    }
}

impl InStore for RelPath {
    fn rel(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_names_make_a_path() {
        let dir = StorePath::child(None, "CON").unwrap();
        assert_eq!(dir, "CON");
        let file = StorePath::child(Some(&dir), "a.").unwrap();
        assert_eq!(file, "CON/a.");
        for bad in ["", ".", "..", "a/b"] {
            assert_eq!(StorePath::child(Some(&dir), bad), None, "{bad:?}");
        }
        #[cfg(windows)]
        assert_eq!(StorePath::child(None, "a\\b"), None);
        assert_eq!(StorePath::beside(&file, "b").unwrap(), "CON/b");
        assert_eq!(StorePath::beside(&dir, "b").unwrap(), "b");
        assert_eq!(StorePath::beside(&dir, ".."), None);
        let manifest = RelPath::new("x/y.msi").unwrap();
        assert_eq!(StorePath::from(&manifest), "x/y.msi");
    }
}
