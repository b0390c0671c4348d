//! Unix twin of the ACL repair: everything owned by root:root, no group or
//! world write, no setuid or setgid bits; folders 0755, files 0644, or 0755
//! where they were executable. Only what differs is changed, so a second run
//! on a repaired store only reads metadata. Links are neither followed nor
//! changed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::AclError;
use crate::store::walk;

/// Repairs `root` and everything below it.
pub fn repair(root: &Path) -> Result<(), AclError> {
    repair_counting(root).map(drop)
}

/// Repairs `root` and everything below it; returns how many entries changed.
/// The walk is [`walk::by_levels`]: the repair is one `lstat` per entry.
fn repair_counting(root: &Path) -> Result<usize, AclError> {
    let meta = std::fs::symlink_metadata(root).map_err(|e| fail(root, &e))?;
    if meta.file_type().is_symlink() {
        return Ok(0);
    }
    let changed = usize::from(repair_one(root, &meta)?);
    if !meta.is_dir() {
        return Ok(changed);
    }
    let below = walk::by_levels(vec![root.to_path_buf()], repair_children, || AclError {
        path: root.to_path_buf(),
        why: "a repair thread panicked".into(),
    })?;
    Ok(changed + below.into_iter().sum::<usize>())
}

/// Repairs the entries of `dirs`; returns how many changed and the folders
/// among them.
fn repair_children(dirs: &[PathBuf]) -> Result<(usize, Vec<PathBuf>), AclError> {
    let mut changed = 0;
    let mut subdirs = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).map_err(|e| fail(dir, &e))? {
            let path = entry.map_err(|e| fail(dir, &e))?.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| fail(&path, &e))?;
            if meta.file_type().is_symlink() {
                continue;
            }
            changed += usize::from(repair_one(&path, &meta)?);
            if meta.is_dir() {
                subdirs.push(path);
            }
        }
    }
    Ok((changed, subdirs))
}

/// Repairs one file or folder; returns whether it changed.
fn repair_one(path: &Path, meta: &std::fs::Metadata) -> Result<bool, AclError> {
    let mut touched = false;
    if meta.uid() != 0 || meta.gid() != 0 {
        std::os::unix::fs::lchown(path, Some(0), Some(0)).map_err(|e| fail(path, &e))?;
        touched = true;
    }
    let mode = meta.mode() & 0o7777;
    let wanted = if meta.is_dir() || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    // chown clears setuid and setgid on its own; compare after it.
    if touched || mode != wanted {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
            .map_err(|e| fail(path, &e))?;
        touched = true;
    }
    Ok(touched)
}

fn fail(path: &Path, e: &std::io::Error) -> AclError {
    AclError {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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

        assert!(repair_counting(&root).unwrap() >= 4);
        assert_eq!(mode(&root.join("open.txt")), 0o644);
        assert_eq!(mode(&root.join("tool.exe")), 0o755);
        assert_eq!(mode(&root.join("sub/suid")), 0o755);
        assert_eq!(mode(&root.join("sub")), 0o755);
        assert_eq!(
            repair_counting(&root).unwrap(),
            0,
            "a repaired store changed again"
        );
    }
}
