//! The store root, opened once without following a link, and every file
//! operation of a sync relative to it. cap-std resolves each path beneath the
//! handle (openat2 with RESOLVE_BENEATH on Linux, handle-relative opens on
//! Windows), so no link or junction below the root, planted or swapped in
//! while a sync runs, leads outside the store; final components are never
//! followed. Temporary files are created exclusively under unpredictable
//! names, and a temporary file is renamed into place only while it is still
//! the file that was written and verified.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, Metadata, OpenOptions};
use rand::Rng;

use super::StoreError;
use super::ownership;
use super::path::{InStore, StorePath};
use crate::manifest::format::TEMP_PREFIX;

/// The open store root.
#[derive(Debug)]
pub(crate) struct StoreDir {
    dir: Dir,
    path: PathBuf,
}

/// Why the store root cannot be used (exit 208).
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// A link or junction, which is never followed.
    #[error("the store root {} is a link or junction: refusing to follow it", .0.display())]
    Link(PathBuf),
    /// Not a folder.
    #[error("the store root {} is not a folder", .0.display())]
    NotFolder(PathBuf),
    /// Owned or writable by someone other than an administrator.
    #[error("the store root is not under administrators' sole control: {0}")]
    NotAdminOnly(#[from] ownership::NotAdminOnly),
    /// The system refused.
    #[error(transparent)]
    Io(#[from] StoreError),
}

impl StoreDir {
    /// Opens the store root `path`, creating it (and its parents) when missing.
    /// Refuses a root that is a link or junction, or that anyone but an
    /// administrator owns or may write; on Unix the folders above it too.
    pub(crate) fn open(path: &Path) -> Result<StoreDir, RootError> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(RootError::Link(path.to_path_buf()));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::io("create", parent, e))?;
                }
                // New, it is the administrators' from the start: inherited
                // permissions (Users may write in `%ProgramData%`) would
                // make it one the next check refuses.
                match ownership::create_store_dir(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(StoreError::io("create the store", path, e).into()),
                }
            }
            Err(e) => return Err(StoreError::io("inspect", path, e).into()),
        }
        let handle = open_root_nofollow(path)?;
        let meta = handle
            .metadata()
            .map_err(|e| StoreError::io("inspect", path, e))?;
        if !meta.is_dir() {
            return Err(RootError::NotFolder(path.to_path_buf()));
        }
        ownership::check_open(&handle, path)?;
        #[cfg(unix)]
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            ownership::check_path(parent)?;
        }
        Ok(StoreDir {
            dir: Dir::from_std_file(handle),
            path: path.to_path_buf(),
        })
    }

    /// The root as the INI names it, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The handle, for the Unix repair of the root's own mode.
    #[cfg(unix)]
    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Where `rel` lies, for messages only: every operation goes through the
    /// handle. The one place a store path is joined onto the root.
    pub(crate) fn full(&self, rel: &impl InStore) -> PathBuf {
        self.path.join(native(rel))
    }

    /// Metadata of `rel` itself, a link not followed.
    pub(crate) fn symlink_metadata(&self, rel: &impl InStore) -> io::Result<Metadata> {
        self.dir.symlink_metadata(native(rel))
    }

    /// Creates the folder `rel` and the folders above it.
    pub(crate) fn create_dir_all(&self, rel: &impl InStore) -> io::Result<()> {
        self.dir.create_dir_all(native(rel))
    }

    /// Opens the folder `rel`, or the root when `None`, without following a
    /// link: the walks of the inventory and the repair list it.
    pub(crate) fn open_folder(&self, rel: Option<&StorePath>) -> io::Result<Dir> {
        match rel {
            Some(rel) => self.dir.open_dir_nofollow(native(rel)),
            None => self.dir.try_clone(),
        }
    }

    /// Opens the regular file `rel` for reading; a link, folder or special
    /// file is refused without being opened as one (a FIFO would block).
    pub(crate) fn open_regular(&self, rel: &impl InStore) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).follow(FollowSymlinks::No);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        let file = self.dir.open_with(native(rel), &options)?.into_std();
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                rel.rel()
            )));
        }
        Ok(file)
    }

    /// Creates a new temporary file beside `target`, exclusively and under
    /// an unpredictable name; returns its path and the open file.
    pub(crate) fn create_temp(&self, target: &impl InStore) -> io::Result<(StorePath, File)> {
        let name = target.rel().rsplit('/').next().unwrap_or_default();
        let mut options = OpenOptions::new();
        options.write(true).read(true).create_new(true);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o644);
        loop {
            let temp_name = temp_name(name, rand::thread_rng().r#gen());
            let rel = StorePath::beside(target, &temp_name)
                .ok_or_else(|| io::Error::other(format!("{temp_name:?} is not a file name")))?;
            match self.dir.open_with(native(&rel), &options) {
                Ok(file) => {
                    let file = file.into_std();
                    // The mode of a new file is cut by the umask; the repair
                    // would then change it and its change time.
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt;
                        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
                    }
                    return Ok((rel, file));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the temporary file `temp`, open as `file`, and renames it over
    /// `target` after checking that the name still leads to that very file.
    /// Closed first: Windows refuses to rename a file open without sharing.
    pub(crate) fn rename_into_place(
        &self,
        temp: &StorePath,
        file: File,
        target: &impl InStore,
    ) -> io::Result<()> {
        let written = file.metadata()?;
        drop(file);
        if !same_file(&written, &self.symlink_metadata(temp)?) {
            return Err(io::Error::other(format!(
                "{temp} was replaced after it was verified"
            )));
        }
        self.dir.rename(native(temp), &self.dir, native(target))
    }

    /// A second handle on the same root, for work on a blocking thread.
    pub(crate) fn try_clone(&self) -> io::Result<StoreDir> {
        Ok(StoreDir {
            dir: self.dir.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// Removes `rel`: a file or link itself, or a folder with everything in
    /// it, never following a link.
    pub(crate) fn remove(&self, rel: &impl InStore) -> io::Result<()> {
        let path = native(rel);
        if self.dir.symlink_metadata(&path)?.is_dir() {
            self.dir.remove_dir_all(&path)
        } else {
            self.dir.remove_file_or_symlink(&path)
        }
    }
}

/// `.wpkgsync-tmp-<16 hex digits>-<name>`: the name tells which file a
/// partial download belongs to, the digits make it unpredictable.
fn temp_name(target: &str, random: u64) -> String {
    format!("{TEMP_PREFIX}{random:016x}-{target}")
}

/// The name of the file a temporary file was written for, when it is one.
pub(crate) fn temp_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (digits, target) = rest.split_at_checked(16)?;
    let target = target.strip_prefix('-')?;
    (digits.bytes().all(|b| b.is_ascii_hexdigit()) && !target.is_empty()).then_some(target)
}

/// A store path as a relative native path.
fn native(rel: &impl InStore) -> PathBuf {
    rel.rel().split('/').collect()
}

#[cfg(unix)]
fn open_root_nofollow(path: &Path) -> Result<File, RootError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => RootError::Link(path.to_path_buf()),
            Some(libc::ENOTDIR) => RootError::NotFolder(path.to_path_buf()),
            _ => StoreError::io("open the store", path, e).into(),
        })
}

#[cfg(windows)]
fn open_root_nofollow(path: &Path) -> Result<File, RootError> {
    use std::os::windows::fs::{MetadataExt, OpenOptionsExt};
    const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
        .map_err(|e| StoreError::io("open the store", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io("inspect", path, e))?;
    if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(RootError::Link(path.to_path_buf()));
    }
    Ok(file)
}

#[cfg(unix)]
fn same_file(written: &std::fs::Metadata, named: &Metadata) -> bool {
    use cap_std::fs::MetadataExt as _;
    use std::os::unix::fs::MetadataExt;
    written.dev() == named.dev() && written.ino() == named.ino()
}

/// On Windows the name is checked to be a plain file still: the file id is
/// not in metadata read by name, and the folder it lies in is the
/// administrators' alone.
#[cfg(windows)]
fn same_file(written: &std::fs::Metadata, named: &Metadata) -> bool {
    named.is_file() && !named.file_type().is_symlink() && written.len() == named.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::path::RelPath;

    fn rel(path: &str) -> RelPath {
        RelPath::new(path).unwrap()
    }

    fn store() -> (tempfile::TempDir, StoreDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreDir::open(&dir.path().join("wpkg")).unwrap();
        (dir, store)
    }

    #[test]
    fn temp_names_are_unpredictable_and_name_their_target() {
        let a = temp_name("setup.msi", 1);
        let b = temp_name("setup.msi", 2);
        assert_ne!(a, b);
        assert_eq!(temp_target(&a), Some("setup.msi"));
        assert_eq!(temp_target(".wpkgsync-tmp-setup.msi"), None);
        assert_eq!(temp_target(".wpkgsync-tmp-0123456789abcdef-"), None);
        assert_eq!(temp_target("setup.msi"), None);
    }

    #[test]
    fn a_root_that_is_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let root = dir.path().join("wpkg");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&elsewhere, &root).unwrap();
        #[cfg(windows)]
        std::os::windows::fs::symlink_dir(&elsewhere, &root).unwrap();
        assert!(matches!(StoreDir::open(&root), Err(RootError::Link(_))));
    }

    #[test]
    fn a_planted_link_at_a_temporary_name_is_never_written_through() {
        let (dir, store) = store();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "precious").unwrap();
        // Whatever the name, creation is exclusive: a link there fails it
        // rather than being followed.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, store.full(&rel("planted"))).unwrap();
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            assert!(store.dir.open_with("planted", &options).is_err());
        }
        let (temp, file) = store.create_temp(&rel("config.xml")).unwrap();
        assert!(temp_target(temp.as_str().rsplit('/').next().unwrap()).is_some());
        drop(file);
        assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_swapped_for_a_link_leads_nowhere_outside() {
        let (dir, store) = store();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("victim"), "precious").unwrap();
        std::os::unix::fs::symlink(&outside, store.full(&rel("packages"))).unwrap();
        assert!(store.remove(&rel("packages/victim")).is_err());
        assert!(store.create_temp(&rel("packages/victim")).is_err());
        assert!(store.open_regular(&rel("packages/victim")).is_err());
        // The link itself goes, its target stays.
        store.remove(&rel("packages")).unwrap();
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    }

    #[test]
    fn a_temporary_file_replaced_after_writing_is_not_renamed_into_place() {
        let (_dir, store) = store();
        let (temp, file) = store.create_temp(&rel("a.txt")).unwrap();
        std::fs::remove_file(store.full(&temp)).unwrap();
        std::fs::write(store.full(&temp), "other bytes").unwrap();
        let err = store
            .rename_into_place(&temp, file, &rel("a.txt"))
            .unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
        assert!(!store.full(&rel("a.txt")).exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_rather_than_opened() {
        let (_dir, store) = store();
        let fifo = std::ffi::CString::new(
            store
                .full(&rel("pipe"))
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert!(store.open_regular(&rel("pipe")).is_err());
    }

    #[test]
    fn store_paths_are_joined_below_the_root() {
        let (_dir, store) = store();
        let root = store.path();
        assert_eq!(
            store.full(&rel("packages/x/y.msi")),
            root.join("packages").join("x").join("y.msi")
        );
        let dir = StorePath::child(None, "CON").unwrap();
        let file = StorePath::child(Some(&dir), "a.").unwrap();
        assert_eq!(store.full(&file), root.join("CON").join("a."));
    }

    /// Below the root, every component a name: nothing `..`, absolute or a
    /// prefix, the one join onto the root given a path either type accepts.
    fn stays_below(store: &StoreDir, joined: &Path) -> bool {
        joined.strip_prefix(store.path()).is_ok_and(|rest| {
            rest.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
    }

    proptest::proptest! {
        #[test]
        fn accepted_paths_never_leave_the_root(
            text in "[a-zA-Z0-9./\\\\: ]{0,24}",
            names in proptest::collection::vec("[a-zA-Z0-9./\\\\: ]{0,6}", 1..4),
        ) {
            let (_dir, store) = store();
            if let Ok(path) = RelPath::new(&text) {
                proptest::prop_assert!(stays_below(&store, &store.full(&path)));
            }
            let mut path: Option<StorePath> = None;
            for name in &names {
                match StorePath::child(path.as_ref(), name) {
                    Some(child) => path = Some(child),
                    None => break,
                }
            }
            if let Some(path) = path {
                proptest::prop_assert!(stays_below(&store, &store.full(&path)));
            }
        }
    }
}
