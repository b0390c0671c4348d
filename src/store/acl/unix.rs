//! Unix twin of the ACL repair: everything owned by root:root, no group or
//! world write, no setuid or setgid bits; folders 0755, files 0644, or 0755
//! where they were executable. Only what differs is changed, so a second run
//! on a repaired store only reads metadata.
//!
//! Every entry is reached through its folder's handle and changed through a
//! handle of its own, opened without following a link and checked to be the
//! entry that was inspected: links are neither followed nor changed. A file
//! with other hard links that needs a change is unlinked from the store
//! instead (the sync fetches it again), so the repair never changes a file
//! outside the store that someone linked in. Special files that need a change
//! are unlinked too: opening a device has effects of its own.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::sync::Mutex;

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, Metadata};

use super::{AclError, Repaired};
use crate::store::dir::StoreDir;
use crate::store::walk::{self, Found};

/// Repairs the store and everything in it; returns what it changed.
pub(crate) fn repair(store: &StoreDir) -> Result<Repaired, AclError> {
    walk_and_repair(store).map(|(repaired, _)| repaired)
}

/// [`repair`], which also returns every entry of the store as the repair
/// left it, ordered by path: each entry's metadata is read once, for both.
pub(crate) fn repair_listing(store: &StoreDir) -> Result<(Repaired, Option<Vec<Found>>), AclError> {
    let (repaired, mut found) = walk_and_repair(store)?;
    found.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok((repaired, Some(found)))
}

/// Repairs the store; returns what it changed and every entry it left.
fn walk_and_repair(store: &StoreDir) -> Result<(Repaired, Vec<Found>), AclError> {
    let root = store.dir();
    let fail = |e: std::io::Error| AclError {
        path: store.path().to_path_buf(),
        why: e.to_string(),
    };
    // The root's owner was checked when it was opened; its mode is ours to set.
    let meta = root.dir_metadata().map_err(fail)?;
    let mode = cap_std::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
    if mode & 0o7022 != 0 {
        fchmod(root.as_raw_fd(), (mode & 0o755) | 0o700).map_err(fail)?;
    }
    let changed = Mutex::new(Vec::new());
    let found = walk::store_entries(
        store,
        |dir, name, path, meta| {
            let fail = |e: std::io::Error| AclError {
                path: store.full(path),
                why: e.to_string(),
            };
            let fixed = repair_entry(dir, name, &meta).map_err(fail)?;
            if matches!(fixed, Fixed::Nothing) {
                return Ok(Some(meta));
            }
            changed
                .lock()
                .map_err(|_| fail(std::io::Error::other("a repair thread panicked")))?
                .push(path.clone());
            match fixed {
                // Its change time moved: the listing tells it as it is now.
                Fixed::Changed => dir.symlink_metadata(name).map(Some).map_err(fail),
                Fixed::Nothing | Fixed::Unlinked => Ok(None),
            }
        },
        |e| AclError {
            path: e.path,
            why: e.error.to_string(),
        },
    )?;
    let mut repaired = Repaired {
        paths: changed.into_inner().unwrap_or_default(),
        everything: false,
    };
    repaired.paths.sort();
    Ok((repaired, found))
}

/// What [`repair_entry`] did.
enum Fixed {
    /// The entry was as it should be.
    Nothing,
    /// Its owner or mode was changed.
    Changed,
    /// It was unlinked from the store.
    Unlinked,
}

/// The mode an entry of this kind and mode should have.
fn wanted_mode(is_dir: bool, mode: u32) -> u32 {
    if is_dir || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Repairs the entry `name` of `dir`, whose metadata (a link not followed)
/// is `meta`; returns what it did.
fn repair_entry(dir: &Dir, name: &str, meta: &Metadata) -> std::io::Result<Fixed> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Ok(Fixed::Nothing);
    }
    let mode = cap_std::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
    let (uid, gid, nlink, ino) = {
        use cap_std::fs::MetadataExt;
        (meta.uid(), meta.gid(), meta.nlink(), meta.ino())
    };
    let wanted = wanted_mode(kind.is_dir(), mode);
    if uid == 0 && gid == 0 && mode == wanted {
        return Ok(Fixed::Nothing);
    }
    let special = !kind.is_dir() && !kind.is_file();
    if special || (kind.is_file() && nlink > 1) {
        dir.remove_file_or_symlink(name)?;
        return Ok(Fixed::Unlinked);
    }
    let file = open_nofollow(dir, name, kind.is_dir())?;
    let now = file.metadata()?;
    if now.ino() != ino {
        return Err(std::io::Error::other("replaced while being repaired"));
    }
    if now.uid() != 0 || now.gid() != 0 {
        std::os::unix::fs::fchown(&file, Some(0), Some(0))?;
    }
    // chown clears setuid and setgid on its own; set the mode after it.
    file.set_permissions(std::fs::Permissions::from_mode(wanted))?;
    Ok(Fixed::Changed)
}

/// Opens `name` in `dir` for reading without following a link, without
/// blocking on a FIFO and without becoming a terminal's owner.
fn open_nofollow(dir: &Dir, name: &str, folder: bool) -> std::io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    let mut flags =
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if folder {
        flags |= libc::O_DIRECTORY;
    }
    // SAFETY: `dir` is an open folder handle and `name` is NUL-terminated.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn fchmod(fd: i32, mode: u32) -> std::io::Result<()> {
    // SAFETY: `fd` is an open handle of the caller's.
    if unsafe { libc::fchmod(fd, mode) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn modes_are_repaired_and_a_second_pass_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("open.txt"), "x").unwrap();
        fs::write(root.join("tool.exe"), "x").unwrap();
        fs::write(root.join("sub/suid"), "x").unwrap();
        fs::set_permissions(root.join("open.txt"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(root.join("tool.exe"), fs::Permissions::from_mode(0o775)).unwrap();
        fs::set_permissions(root.join("sub/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o777)).unwrap();
        let store = StoreDir::open(&root).unwrap();

        let repaired = repair(&store).unwrap();
        assert_eq!(repaired.paths, ["open.txt", "sub", "sub/suid", "tool.exe"]);
        assert_eq!(mode(&root.join("open.txt")), 0o644);
        assert_eq!(mode(&root.join("tool.exe")), 0o755);
        assert_eq!(mode(&root.join("sub/suid")), 0o755);
        assert_eq!(mode(&root.join("sub")), 0o755);
        assert!(
            repair(&store).unwrap().paths.is_empty(),
            "a repaired store changed again"
        );
    }

    #[test]
    fn the_listing_tells_the_store_as_the_repair_left_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("open.txt"), "x").unwrap();
        fs::write(root.join("sub/kept.txt"), "x").unwrap();
        fs::set_permissions(root.join("open.txt"), fs::Permissions::from_mode(0o666)).unwrap();
        fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o777)).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "x").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        fs::hard_link(&outside, root.join("sub/linked")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let store = StoreDir::open(&root).unwrap();

        let (repaired, listing) = repair_listing(&store).unwrap();
        assert_eq!(repaired.paths, ["open.txt", "sub", "sub/linked"]);
        let mut listing = listing.unwrap();
        listing.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<&str> = listing.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["link", "open.txt", "sub", "sub/kept.txt"]);
        // Each entry as it is now: the change times the repair moved included.
        for found in &listing {
            let now = store.symlink_metadata(&found.path).unwrap();
            assert_eq!(found.kind, walk::FoundKind::of(&now), "{}", found.path);
        }
        assert_eq!(listing[0].kind, walk::FoundKind::Other);
        assert_eq!(listing[2].kind, walk::FoundKind::Dir);
    }

    #[test]
    fn a_hard_link_to_an_outside_file_is_unlinked_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::create_dir(&root).unwrap();
        let outside = dir.path().join("secret");
        fs::write(&outside, "x").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        fs::hard_link(&outside, root.join("linked")).unwrap();
        let store = StoreDir::open(&root).unwrap();

        assert_eq!(repair(&store).unwrap().paths, ["linked"]);
        assert!(!root.join("linked").exists());
        assert_eq!(mode(&outside), 0o600, "the file outside was changed");
    }

    #[test]
    fn links_are_neither_followed_nor_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::create_dir(&root).unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "x").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        let store = StoreDir::open(&root).unwrap();

        assert!(repair(&store).unwrap().paths.is_empty());
        assert_eq!(mode(&outside), 0o600);
    }
}
