//! The per-process folder that holds what outlives a single test (the sshd, its
//! chroot, the publisher key) and its removal when the test binary exits.
//!
//! It lives at `/var/lib/wpkgsync-tests/<pid>/`, not under `/tmp`: `ChrootDirectory`
//! wants every component of the chroot path owned by root and writable by no one
//! else, and `/tmp` is world-writable. Shared fixtures sit in `static`s, which Rust
//! never drops, so the cleanup runs from a C `atexit` hook instead; folders left by
//! a killed run are removed by the next one.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

/// Parent of every test run's folder.
const BASE: &str = "/var/lib/wpkgsync-tests";

type Hook = Box<dyn FnOnce() + Send>;

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

/// Runs `hook` when the test binary exits (last registered runs first).
pub(crate) fn at_exit(hook: impl FnOnce() + Send + 'static) {
    REGISTER.call_once(|| {
        // SAFETY: `run_hooks` is a plain `extern "C"` function that does not unwind
        // across the boundary (it catches panics) and lives for the whole process.
        let rc = unsafe { libc::atexit(run_hooks) };
        assert_eq!(rc, 0, "atexit refused the cleanup hook");
    });
    HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(hook));
}

extern "C" fn run_hooks() {
    let hooks = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
    for hook in hooks.into_iter().rev() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
    }
}

/// This process's folder, root-owned and 0755, created on first use and removed
/// at exit.
pub(crate) fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        require_root();
        make_private_dir(Path::new(BASE));
        remove_stale_runs();
        let root = Path::new(BASE).join(std::process::id().to_string());
        if root.exists() {
            // A reused pid of an earlier, killed run.
            fs::remove_dir_all(&root).unwrap_or_else(|e| panic!("cannot clear {root:?}: {e}"));
        }
        make_private_dir(&root);
        let removed = root.clone();
        at_exit(move || {
            let _ = fs::remove_dir_all(removed);
        });
        root
    })
}

/// A fresh folder `name` inside [`root`], root-owned and 0755.
pub(crate) fn folder(name: &str) -> PathBuf {
    let dir = root().join(name);
    make_private_dir(&dir);
    dir
}

/// Creates `dir` (and missing parents) owned by root with mode 0755, and checks
/// that an existing one is not group- or world-writable.
pub(crate) fn make_private_dir(dir: &Path) {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {dir:?}: {e}"));
}

/// Panics with a clear message unless the tests run as root: the private sshd
/// chroots the client account, which only root can set up.
pub(crate) fn require_root() {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the integration tests must run as root: they start a private OpenSSH sshd \
         that chroots its client account (run scripts/test as root)"
    );
}

/// Removes the folders of earlier runs whose process is gone, stopping the sshd
/// such a run may have left behind (found by its pid file, checked against its
/// command line so no other process is touched).
fn remove_stale_runs() {
    let Ok(entries) = fs::read_dir(BASE) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        for pid_file in find_files(&dir, "sshd.pid") {
            stop_stale_sshd(&pid_file, &dir);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            found.push(path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) && !path.ends_with("chroot") {
            found.extend(find_files(&path, name));
        }
    }
    found
}

fn stop_stale_sshd(pid_file: &Path, run_dir: &Path) {
    let Some(pid) = fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if cmdline.contains("sshd") && cmdline.contains(&*run_dir.to_string_lossy()) {
        // SAFETY: `kill` has no memory preconditions; the pid was checked above to
        // be an sshd started for `run_dir`.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
