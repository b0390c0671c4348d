//! `keygen`: makes the publisher's RSA key pair and writes it as two PEM files.
//!
//! The private half is created owner-only from the first byte (the `imp` twin
//! decides how per OS); the public half is the file administrators copy to every
//! client and pin in the INI. Making and encoding the keys is `manifest::sign`'s.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::PublishError;
use super::imp;
use crate::manifest::format::MIN_KEY_BITS;
use crate::manifest::sign::{KeyPair, generate_key_pair};

/// Name of the private key file written by [`keygen`].
pub(crate) const PRIVATE_KEY_FILE: &str = "publisher-private.pem";
/// Name of the public key file written by [`keygen`].
pub(crate) const PUBLIC_KEY_FILE: &str = "publisher.pem";

/// Where [`keygen`] wrote the two halves of the key pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPaths {
    /// PKCS#8 PEM private key, owner-only; stays on the publisher.
    pub private: PathBuf,
    /// SPKI PEM public key; goes to every client.
    pub public: PathBuf,
}

/// Generates a 3072-bit RSA key pair into `out` (created if missing) as
/// [`PRIVATE_KEY_FILE`] and [`PUBLIC_KEY_FILE`]. Refuses to overwrite either file
/// unless `force` is set.
pub(crate) fn keygen(out: &Path, force: bool) -> Result<KeyPaths, PublishError> {
    let paths = key_paths(out);
    // Checked before generating, which takes seconds, so a refusal is immediate;
    // the writes below check again, without a race.
    if !force {
        for path in [&paths.private, &paths.public] {
            if path.symlink_metadata().is_ok() {
                return Err(PublishError::Exists { path: path.clone() });
            }
        }
    }
    let pair = generate_key_pair(MIN_KEY_BITS).map_err(PublishError::Generate)?;
    write_key_pair(out, &pair, force)?;
    Ok(paths)
}

/// The two file names inside `out`.
fn key_paths(out: &Path) -> KeyPaths {
    KeyPaths {
        private: out.join(PRIVATE_KEY_FILE),
        public: out.join(PUBLIC_KEY_FILE),
    }
}

/// Writes an already generated pair; split from [`keygen`] so tests can reuse
/// one key instead of generating one per test.
fn write_key_pair(out: &Path, pair: &KeyPair, force: bool) -> Result<KeyPaths, PublishError> {
    let paths = key_paths(out);
    fs::create_dir_all(out).map_err(|source| PublishError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    write_key_file(
        &paths.private,
        pair.private_pem.as_bytes(),
        force,
        imp::create_owner_only,
    )?;
    write_key_file(&paths.public, pair.public_pem.as_bytes(), force, create_new)?;
    Ok(paths)
}

/// Creates a new file with the default permissions; fails if `path` exists.
fn create_new(path: &Path) -> io::Result<File> {
    File::options().write(true).create_new(true).open(path)
}

/// Writes one key file with `create`, which must fail if its path exists.
///
/// Without `force` the file is created in place, so an existing file is never
/// touched. With `force` it is written under a temporary name beside the target
/// and renamed over it: the old key stays whole until the new one is on disk, and
/// the new file gets the new mode rather than inheriting the old file's.
fn write_key_file(
    path: &Path,
    bytes: &[u8],
    force: bool,
    create: fn(&Path) -> io::Result<File>,
) -> Result<(), PublishError> {
    let write_error = |source| PublishError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !force {
        let file = create(path).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => PublishError::Exists {
                path: path.to_path_buf(),
            },
            _ => write_error(source),
        })?;
        if let Err(source) = fill(file, bytes) {
            // A half-written key is worse than none: the next run would refuse
            // to overwrite it.
            let _ = fs::remove_file(path);
            return Err(write_error(source));
        }
        return Ok(());
    }

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    // A leftover with our own process id cannot belong to a running process.
    let _ = fs::remove_file(&staging);
    let file = create(&staging).map_err(write_error)?;
    let result = fill(file, bytes).map_err(write_error).and_then(|()| {
        fs::rename(&staging, path).map_err(|source| PublishError::Rename {
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&staging);
    }
    result
}

/// Writes all of `bytes` and flushes them to disk.
fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::sign::{SigningKey, test_key_pair};

    #[test]
    fn keygen_writes_a_usable_pair_and_creates_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("keys");
        let paths = keygen(&out, false).expect("keygen");
        assert_eq!(paths.private, out.join(PRIVATE_KEY_FILE));
        assert_eq!(paths.public, out.join(PUBLIC_KEY_FILE));

        let private = fs::read_to_string(&paths.private).expect("private");
        let public = fs::read_to_string(&paths.public).expect("public");
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = SigningKey::from_pkcs8_pem(&private).expect("loads");
        assert_eq!(key.bits(), MIN_KEY_BITS);
    }

    #[test]
    fn refuses_to_overwrite_either_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path();
        fs::write(out.join(PUBLIC_KEY_FILE), "old public").expect("seed");
        // The public key alone is enough to refuse, before any generating.
        let err = keygen(out, false).expect_err("exists");
        assert!(
            matches!(&err, PublishError::Exists { path } if path == &out.join(PUBLIC_KEY_FILE)),
            "{err:?}"
        );
        assert!(err.to_string().contains(PUBLIC_KEY_FILE), "{err}");
        assert!(!out.join(PRIVATE_KEY_FILE).exists());

        fs::remove_file(out.join(PUBLIC_KEY_FILE)).expect("remove");
        write_key_pair(out, test_key_pair(), false).expect("first write");
        let err = write_key_pair(out, test_key_pair(), false).expect_err("second write");
        assert!(
            matches!(&err, PublishError::Exists { path } if path == &out.join(PRIVATE_KEY_FILE)),
            "{err:?}"
        );
    }

    #[test]
    fn force_overwrites_both_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path();
        fs::write(out.join(PRIVATE_KEY_FILE), "old private").expect("seed");
        fs::write(out.join(PUBLIC_KEY_FILE), "old public").expect("seed");
        let pair = test_key_pair();
        write_key_pair(out, pair, true).expect("force");
        let private = fs::read_to_string(out.join(PRIVATE_KEY_FILE)).expect("private");
        let public = fs::read_to_string(out.join(PUBLIC_KEY_FILE)).expect("public");
        assert_eq!(private.as_str(), pair.private_pem.as_str());
        assert_eq!(public, pair.public_pem);
        let leftovers: Vec<_> = fs::read_dir(out)
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    mod unix {
        use super::*;
        use std::os::unix::fs::PermissionsExt;

        fn mode(path: &Path) -> u32 {
            fs::metadata(path).expect("metadata").permissions().mode() & 0o777
        }

        #[test]
        fn private_key_is_owner_only_also_after_force() {
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path();
            let paths = write_key_pair(out, test_key_pair(), false).expect("write");
            assert_eq!(mode(&paths.private), 0o600);

            // A world-readable old file must not pass its mode on to the new key.
            fs::set_permissions(&paths.private, fs::Permissions::from_mode(0o644)).expect("chmod");
            let paths = write_key_pair(out, test_key_pair(), true).expect("force");
            assert_eq!(mode(&paths.private), 0o600);
        }
    }
}
