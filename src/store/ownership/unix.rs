//! Unix twin: owned by root, writable by no one else (group write only for
//! group root), and for a path every folder above it the same, except that a
//! sticky world-writable folder such as `/tmp` is fine: the sticky bit keeps
//! others from replacing the root-owned entry below it, which is checked next.

use std::fs::{File, Metadata};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::NotAdminOnly;

const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// Checks `path` (its target, if it is a link that root placed) and every
/// folder above it.
pub(crate) fn check_path(path: &Path) -> Result<(), NotAdminOnly> {
    let fail = |at: &Path, why: String| NotAdminOnly {
        path: at.to_path_buf(),
        why,
    };
    let real =
        std::fs::canonicalize(path).map_err(|e| fail(path, format!("cannot be checked: {e}")))?;
    let meta = std::fs::symlink_metadata(&real)
        .map_err(|e| fail(&real, format!("cannot be checked: {e}")))?;
    if let Some(why) = foreign_control(&meta, false) {
        return Err(fail(&real, why));
    }
    for folder in real.ancestors().skip(1) {
        let meta = std::fs::symlink_metadata(folder)
            .map_err(|e| fail(folder, format!("cannot be checked: {e}")))?;
        if let Some(why) = foreign_control(&meta, true) {
            return Err(fail(folder, why));
        }
    }
    Ok(())
}

/// Checks the object `file` is open on (no ancestors: the handle is what the
/// caller goes on using).
pub(crate) fn check_open(file: &File, path: &Path) -> Result<(), NotAdminOnly> {
    let meta = file.metadata().map_err(|e| NotAdminOnly {
        path: path.to_path_buf(),
        why: format!("cannot be checked: {e}"),
    })?;
    match foreign_control(&meta, false) {
        None => Ok(()),
        Some(why) => Err(NotAdminOnly {
            path: path.to_path_buf(),
            why,
        }),
    }
}

/// Checks only that root owns the object `file` is open on.
pub(crate) fn check_open_owner(file: &File, path: &Path) -> Result<(), NotAdminOnly> {
    match file.metadata() {
        Ok(meta) if meta.uid() == 0 => Ok(()),
        Ok(meta) => Err(NotAdminOnly {
            path: path.to_path_buf(),
            why: format!("is owned by uid {}, not root", meta.uid()),
        }),
        Err(e) => Err(NotAdminOnly {
            path: path.to_path_buf(),
            why: format!("cannot be checked: {e}"),
        }),
    }
}

/// Opens the regular file `path` for reading without following a link at
/// its last component and without blocking on a FIFO.
pub(crate) fn open_regular_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::other("is a link, which is not followed"),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("is not a regular file"));
    }
    Ok(file)
}

/// Whether root owns `path` itself (owner only, a link not followed).
pub(crate) fn check_path_owner(path: &Path) -> Result<(), NotAdminOnly> {
    let fail = |why: String| NotAdminOnly {
        path: path.to_path_buf(),
        why,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.uid() == 0 => Ok(()),
        Ok(meta) => Err(fail(format!("is owned by uid {}, not root", meta.uid()))),
        Err(e) => Err(fail(format!("cannot be checked: {e}"))),
    }
}

/// Creates the store root `path` (not its parents): root's, 0755, as the
/// repair keeps it.
pub(crate) fn create_store_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o755).create(path)?;
    // The umask may have cut the mode; the root's owner is the creator.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Gives the existing folder `path` owner root and mode 0700, or with
/// `store`, 0755; a link is not followed.
pub(crate) fn protect_dir(path: &Path, store: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)?;
    std::os::unix::fs::fchown(&folder, Some(0), Some(0))?;
    folder.set_permissions(std::fs::Permissions::from_mode(if store {
        0o755
    } else {
        0o700
    }))
}

/// Creates the folder `path` (not its parents) readable by root alone.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Takes group and other access away from the folder `dir`, so no other
/// account can even open the files in it (a lock held by a user would block
/// every sync). The folder is opened without following a link.
pub(crate) fn make_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let folder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)?;
    let mode = folder.metadata()?.mode() & 0o7777;
    if mode & 0o077 != 0 {
        folder.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

/// What lets an account other than root change the object, if anything.
/// `folder_above` allows the sticky world-writable folders of a path.
fn foreign_control(meta: &Metadata, folder_above: bool) -> Option<String> {
    let mode = meta.mode();
    if meta.uid() != 0 {
        return Some(format!("is owned by uid {}, not root", meta.uid()));
    }
    if mode & OTHER_WRITE != 0 && !(folder_above && meta.is_dir() && mode & STICKY != 0) {
        return Some("is writable by every account".into());
    }
    if mode & GROUP_WRITE != 0 && meta.gid() != 0 {
        return Some(format!("is writable by group {}", meta.gid()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::chown;

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn a_root_owned_file_below_tmp_passes_and_foreign_ones_fail() {
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wpkgsync.ini");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_path(&file).unwrap();

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_path(&file).unwrap_err();
        assert!(
            err.to_string().ends_with("is writable by every account"),
            "{err}"
        );

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        chown(&file, Some(0), Some(65534)).unwrap();
        assert!(check_path(&file).unwrap_err().why.contains("group 65534"));

        chown(&file, Some(65534), Some(0)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_path(&file).unwrap_err().why.contains("uid 65534"));
    }

    #[test]
    fn a_foreign_folder_above_fails_the_file_below_it() {
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("conf");
        std::fs::create_dir(&folder).unwrap();
        let file = folder.join("publisher.pem");
        std::fs::write(&file, "x").unwrap();
        check_path(&file).unwrap();
        // World-writable and sticky is fine only above; this one is not sticky.
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_path(&file).unwrap_err();
        assert_eq!(err.path, folder);
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_path(&file).unwrap();
    }

    #[test]
    fn a_link_is_judged_by_its_target_and_the_folders_above_that() {
        if !root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.ini");
        std::fs::write(&target, "x").unwrap();
        chown(&target, Some(65534), None).unwrap();
        let link = dir.path().join("wpkgsync.ini");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(check_path(&link).unwrap_err().path, target);
    }

    #[test]
    fn a_private_folder_loses_group_and_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        create_private_dir(&state).unwrap();
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        make_private(&state).unwrap();
        assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    }
}
