//! The files a run trusts, checked before any of them is used: the INI, the
//! publisher key, the client's SSH identity and known_hosts, and the state
//! folder with every file in it. Each must be owned, and writable only, by
//! administrators, as OpenSSH's StrictModes has it for its own files; else the
//! run refuses with 102 naming the file. The state folder is created private
//! and kept so: no other account can open the lock, the log or the state.
//! Where the store and the state folder lie is checked too.

use std::path::{Component, Path, PathBuf};

use crate::config::{Config, Remote};
use crate::store::StoreError;
use crate::store::ownership::{self, NotAdminOnly};

/// Why a run does not trust its own files (exit 102, or 208 when the state
/// folder cannot be made).
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// A trust anchor or state file that someone else may change.
    #[error("{key}: refusing to trust {source}: only administrators may own or write it")]
    NotAdminOnly {
        /// `section.key` naming the file, or what it is.
        key: &'static str,
        /// The file and why.
        #[source]
        source: NotAdminOnly,
    },
    /// The store and the state folder overlap.
    #[error(
        "sync.state: the state folder {} and the store {} must not lie in each other",
        state.display(),
        store.display()
    )]
    StateInStore {
        /// `sync.state`.
        state: PathBuf,
        /// `sync.local`.
        store: PathBuf,
    },
    /// The store would be a folder of the system, which the sync would empty.
    #[error("sync.local: {} is a system folder, not a store", .0.display())]
    SystemFolder(PathBuf),
    /// A folder to prepare at installation that another account owns.
    #[error("{key}: refusing to take over {source}")]
    ForeignFolder {
        /// `sync.local` or `sync.state`.
        key: &'static str,
        /// The folder and its owner.
        #[source]
        source: NotAdminOnly,
    },
    /// The state folder could not be created or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the INI file before it is read; a missing one is left to the
/// loader, which says so with 101.
pub(crate) fn check_ini(path: &Path) -> Result<(), AnchorError> {
    if !path.exists() {
        return Ok(());
    }
    ownership::check_path(path).map_err(|source| AnchorError::NotAdminOnly {
        key: "the INI file",
        source,
    })
}

/// Checks everything else the INI names; creates the state folder, private,
/// when it is missing.
pub(crate) fn check(config: &Config) -> Result<(), AnchorError> {
    check_locations(&config.sync.local, config.sync.state.path())?;
    let trusted = |key, path: &Path| {
        ownership::check_path(path).map_err(|source| AnchorError::NotAdminOnly { key, source })
    };
    // A missing file is reported where it is read, with its own message.
    let present = |path: &Path| path.exists();
    if present(&config.publisher_key) {
        trusted("trust.publisher_key", &config.publisher_key)?;
    }
    if let Remote::Ssh { .. } = config.server.remote {
        for (key, path) in [
            ("server.identity", &config.server.identity),
            ("server.known_hosts", &config.server.known_hosts),
        ] {
            if present(path) {
                trusted(key, path)?;
            }
        }
    }
    prepare_state(config.sync.state.path())
}

/// At installation (`schedule install`, which the MSI runs as SYSTEM): creates
/// the state folder and the store when missing, owner Administrators (root)
/// with a protected DACL (0700 and 0755), gives existing ones that owner and
/// DACL, and refuses one another account owns: whoever created it first would
/// own the tree for ever. Returns a line per folder for the installer's log.
pub(crate) fn prepare_folders(config: &Config) -> Result<Vec<String>, AnchorError> {
    check_locations(&config.sync.local, config.sync.state.path())?;
    let mut lines = Vec::new();
    for (key, path, store) in [
        ("sync.state", config.sync.state.path(), false),
        ("sync.local", config.sync.local.as_path(), true),
    ] {
        if std::fs::symlink_metadata(path).is_err() {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::io("create", parent, e))?;
            }
            let created = if store {
                ownership::create_store_dir(path)
            } else {
                ownership::create_private_dir(path)
            };
            created.map_err(|e| StoreError::io("create", path, e))?;
            lines.push(format!("created {} for the administrators", path.display()));
            continue;
        }
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(AnchorError::ForeignFolder {
                key,
                source: NotAdminOnly {
                    path: path.to_path_buf(),
                    why: "is a link".into(),
                },
            });
        }
        ownership::check_path_owner(path)
            .map_err(|source| AnchorError::ForeignFolder { key, source })?;
        if ownership::check_path(path).is_err() {
            ownership::protect_dir(path, store).map_err(|e| StoreError::io("protect", path, e))?;
            lines.push(format!(
                "{} is now the administrators' alone",
                path.display()
            ));
        }
    }
    Ok(lines)
}

/// Creates the state folder private when missing, takes other accounts'
/// access away from an existing one, and checks it and every file in it.
fn prepare_state(state: &Path) -> Result<(), AnchorError> {
    let not_trusted = |source| AnchorError::NotAdminOnly {
        key: "sync.state",
        source,
    };
    if !state.exists() {
        if let Some(parent) = state.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io("create", parent, e))?;
        }
        match ownership::create_private_dir(state) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io("create", state, e).into()),
        }
    }
    if std::fs::symlink_metadata(state).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(not_trusted(NotAdminOnly {
            path: state.to_path_buf(),
            why: "is a link".into(),
        }));
    }
    ownership::check_path(state).map_err(not_trusted)?;
    ownership::make_private(state).map_err(|e| StoreError::io("make private", state, e))?;
    for entry in std::fs::read_dir(state).map_err(|e| StoreError::io("list", state, e))? {
        let entry = entry.map_err(|e| StoreError::io("list", state, e))?;
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            return Err(not_trusted(NotAdminOnly {
                path,
                why: "is a link".into(),
            }));
        }
        ownership::check_path(&path).map_err(not_trusted)?;
    }
    Ok(())
}

/// Refuses a state folder inside the store (the sync would delete it) or the
/// store inside it, and a store that is a folder of the system.
fn check_locations(store: &Path, state: &Path) -> Result<(), AnchorError> {
    let store_key = comparable(store);
    let state_key = comparable(state);
    if system_folders().iter().any(|f| comparable(f) == store_key) {
        return Err(AnchorError::SystemFolder(store.to_path_buf()));
    }
    if store_key.starts_with(&state_key) || state_key.starts_with(&store_key) {
        return Err(AnchorError::StateInStore {
            state: state.to_path_buf(),
            store: store.to_path_buf(),
        });
    }
    Ok(())
}

/// `path` made absolute, `.` and `..` resolved, letters folded on Windows
/// (NTFS ignores case), as components.
fn comparable(path: &Path) -> Vec<String> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut parts: Vec<String> = Vec::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            other => {
                let text = other.as_os_str().to_string_lossy();
                parts.push(if cfg!(windows) {
                    text.to_lowercase()
                } else {
                    text.into_owned()
                });
            }
        }
    }
    parts
}

/// Folders a store must never be: emptying one would break the system.
fn system_folders() -> Vec<PathBuf> {
    if cfg!(windows) {
        let mut folders: Vec<PathBuf> = [
            "SystemDrive",
            "SystemRoot",
            "ProgramData",
            "ProgramFiles",
            "ProgramFiles(x86)",
            "USERPROFILE",
        ]
        .iter()
        .filter_map(std::env::var_os)
        .map(|v| {
            let mut path = PathBuf::from(v);
            // `C:` names the current folder of drive C; the root is `C:\`.
            if path.as_os_str().len() == 2 {
                path.push("\\");
            }
            path
        })
        .collect();
        folders.extend((b'A'..=b'Z').map(|d| PathBuf::from(format!("{}:\\", d as char))));
        folders
    } else {
        [
            "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc",
            "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",
        ]
        .iter()
        .map(PathBuf::from)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_folder_in_the_store_or_around_it_is_refused() {
        let ok = check_locations(Path::new("/var/lib/wpkg"), Path::new("/var/lib/wpkgsync"));
        assert!(ok.is_ok());
        for (store, state) in [
            ("/var/lib/wpkg", "/var/lib/wpkg/state"),
            ("/var/lib/wpkg", "/var/lib/wpkg/sub/../state"),
            ("/var/lib/wpkg/store", "/var/lib/wpkg"),
            ("/var/lib/wpkg", "/var/lib/wpkg"),
        ] {
            assert!(
                matches!(
                    check_locations(Path::new(store), Path::new(state)),
                    Err(AnchorError::StateInStore { .. })
                ),
                "{store} {state}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_system_folder_is_no_store() {
        for store in ["/", "/etc", "/var/lib/", "/usr/../etc"] {
            assert!(
                matches!(
                    check_locations(Path::new(store), Path::new("/srv/state")),
                    Err(AnchorError::SystemFolder(_))
                ),
                "{store}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn installation_creates_takes_over_and_refuses_folders() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\nremote = u@h\n[sync]\nlocal = {0}/wpkg\nstate = {0}/state\n[trust]\npublisher_key = {0}/k.pem\n",
            dir.path().display()
        );
        let ini = dir.path().join("wpkgsync.ini");
        std::fs::write(&ini, text).unwrap();
        let (config, _) = Config::load(&ini).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;

        assert_eq!(prepare_folders(&config).unwrap().len(), 2);
        assert_eq!(mode(config.sync.state.path()), 0o700);
        assert_eq!(mode(&config.sync.local), 0o755);
        // A root-owned folder open to others is taken over.
        let open = std::fs::Permissions::from_mode(0o777);
        std::fs::set_permissions(&config.sync.local, open).unwrap();
        assert_eq!(prepare_folders(&config).unwrap().len(), 1);
        assert_eq!(mode(&config.sync.local), 0o755);
        assert!(prepare_folders(&config).unwrap().is_empty());
        // One another account created first is refused, and left as it is.
        std::os::unix::fs::chown(&config.sync.local, Some(65534), None).unwrap();
        let err = prepare_folders(&config).unwrap_err();
        assert!(
            matches!(
                err,
                AnchorError::ForeignFolder {
                    key: "sync.local",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&config.sync.local).unwrap().uid(), 65534);
    }

    #[cfg(unix)]
    #[test]
    fn a_foreign_file_in_the_state_folder_is_named() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        prepare_state(&state).unwrap();
        let planted = state.join("state.json");
        std::fs::write(&planted, "{}").unwrap();
        prepare_state(&state).unwrap();
        std::os::unix::fs::chown(&planted, Some(65534), None).unwrap();
        match prepare_state(&state) {
            Err(AnchorError::NotAdminOnly { source, .. }) => assert_eq!(source.path, planted),
            other => panic!("{other:?}"),
        }
    }
}
