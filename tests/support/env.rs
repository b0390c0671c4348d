//! One test's world: a repository on the server side, a client folder with its
//! INI, known_hosts, store and state, and a way to run a sync against them.
//!
//! Over SFTP the repository is `/opt/updates/<test-name>` in the shared sshd's
//! chroot; from a local folder it sits in the test's own temporary folder. The
//! client side always lives in a `tempfile::TempDir` inside the process's
//! workspace (so a killed run's leftovers go with the rest):
//!
//! ```text
//! <tmp>/wpkgsync.ini  known_hosts  wpkg.log
//! <tmp>/client/store  the local store (alone in its parent, to see escapes)
//! <tmp>/state         state.json, lock, wpkgsync.log
//! <tmp>/cwd           the binary's working folder (empty, to see escapes)
//! <tmp>/repo          the repository, for the local-folder source
//! <tmp>/reports       the reports folder, for the local-folder source
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use tempfile::TempDir;
use wpkgsync::exit::Code;

use super::repo::{Repo, publisher};
use super::run::{Command, Output, wpkgsync};
use super::sshd::{REPORTS, Sshd, UPDATES, USER};
use super::tree::{self, Tree};
use super::workspace;

/// Where the client fetches from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// The shared private sshd, as `wpkgsync-test@127.0.0.1`.
    Sftp,
    /// A local folder named in `remote` (the offline source).
    Local,
}

/// An INI file as sections of `key = value` lines, in order.
#[derive(Clone, Debug)]
pub(crate) struct Ini(Vec<(String, Vec<(String, String)>)>);

impl Ini {
    /// Sets `key` in `section`, adding either if missing.
    pub(crate) fn set(mut self, section: &str, key: &str, value: impl AsRef<str>) -> Self {
        let value = value.as_ref().to_string();
        let index = match self.0.iter().position(|(s, _)| s == section) {
            Some(index) => index,
            None => {
                self.0.push((section.to_string(), Vec::new()));
                self.0.len() - 1
            }
        };
        let keys = &mut self.0[index].1;
        match keys.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => keys.push((key.to_string(), value)),
        }
        self
    }

    /// Removes `key` from `section`.
    pub(crate) fn remove(mut self, section: &str, key: &str) -> Self {
        for (s, keys) in &mut self.0 {
            if s == section {
                keys.retain(|(k, _)| k != key);
            }
        }
        self
    }

    /// The INI text.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        for (section, keys) in &self.0 {
            text.push_str(&format!("[{section}]\n"));
            for (key, value) in keys {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text.push('\n');
        }
        text
    }
}

/// One test's repository and client.
pub(crate) struct TestEnv {
    name: String,
    via: Via,
    tmp: TempDir,
    repo: Repo,
    sshd: Option<&'static Sshd>,
}

impl TestEnv {
    /// A test that syncs over SFTP from the shared sshd.
    pub(crate) fn sftp(name: &str) -> Self {
        let sshd = Sshd::shared();
        let root = sshd.host_path(&format!("{UPDATES}/{name}"));
        assert!(!root.exists(), "two tests share the name {name}");
        Self::build(name, Via::Sftp, Some(sshd), |_| root)
    }

    /// A test that syncs from a local folder.
    pub(crate) fn local(name: &str) -> Self {
        Self::build(name, Via::Local, None, |tmp| tmp.join("repo"))
    }

    /// A test over `via`.
    pub(crate) fn new(name: &str, via: Via) -> Self {
        match via {
            Via::Sftp => Self::sftp(name),
            Via::Local => Self::local(name),
        }
    }

    fn build(
        name: &str,
        via: Via,
        sshd: Option<&'static Sshd>,
        repo_root: impl FnOnce(&Path) -> PathBuf,
    ) -> Self {
        static UMASK: Once = Once::new();
        UMASK.call_once(|| {
            // SAFETY: `umask` cannot fail. Files the tests write, and the
            // binary's, must be readable by the sshd account as on a real server.
            unsafe {
                libc::umask(0o022);
            }
        });
        let tmp = tempfile::Builder::new()
            .prefix(&format!("wpkgsync-{name}-"))
            .tempdir_in(workspace::folder("tests"))
            .expect("create the test's temporary folder");
        let repo = Repo::new(repo_root(tmp.path()));
        for dir in ["client", "cwd", "reports"] {
            fs::create_dir_all(tmp.path().join(dir)).expect("create a client folder");
        }
        fs::write(
            tmp.path().join("wpkg.log"),
            "2024-01-01 08:00:00, STATUS  : Starting software synchronization\r\n",
        )
        .expect("write wpkg.log");
        let env = Self {
            name: name.to_string(),
            via,
            tmp,
            repo,
            sshd,
        };
        if let Some(sshd) = sshd {
            env.write_known_hosts(&sshd.known_hosts_line());
        }
        env
    }

    /// The repository on the server side.
    pub(crate) fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The shared sshd; panics for a local-folder test.
    pub(crate) fn sshd(&self) -> &'static Sshd {
        self.sshd.expect("this test does not use sshd")
    }

    /// The test's temporary folder.
    pub(crate) fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The local store.
    pub(crate) fn store(&self) -> PathBuf {
        self.tmp().join("client").join("store")
    }

    /// The reports folder this test's INI names, as a folder on this machine.
    pub(crate) fn reports(&self) -> PathBuf {
        match self.via {
            Via::Sftp => self.sshd().host_path(&format!("{REPORTS}/{}", self.name)),
            Via::Local => self.tmp().join("reports"),
        }
    }

    /// The client's state folder.
    pub(crate) fn state(&self) -> PathBuf {
        self.tmp().join("state")
    }

    /// The INI file every sync reads.
    pub(crate) fn ini_path(&self) -> PathBuf {
        self.tmp().join("wpkgsync.ini")
    }

    /// The client's known_hosts file.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.tmp().join("known_hosts")
    }

    /// The working folder the binary runs in.
    pub(crate) fn cwd(&self) -> PathBuf {
        self.tmp().join("cwd")
    }

    /// The INI every test starts from: everything explicit, `packages = all`.
    pub(crate) fn ini(&self) -> Ini {
        let tmp = self.tmp();
        let path = |p: PathBuf| p.to_str().expect("utf-8 path").to_string();
        let ini = match self.via {
            Via::Sftp => {
                let sshd = self.sshd();
                Ini(Vec::new())
                    .set("server", "remote", format!("{USER}@127.0.0.1"))
                    .set("server", "port", sshd.port.to_string())
                    .set("server", "path", format!("{UPDATES}/{}", self.name))
                    .set("server", "reports", sshd.reports_folder(&self.name))
                    .set("server", "identity", path(sshd.client_key("id_ed25519")))
                    .set("server", "known_hosts", path(self.known_hosts()))
            }
            Via::Local => Ini(Vec::new())
                .set("server", "remote", path(self.repo.root().to_path_buf()))
                .set("server", "reports", path(tmp.join("reports"))),
        };
        ini.set("sync", "local", path(self.store()))
            .set("sync", "state", path(self.state()))
            .set("sync", "timeout", "20")
            .set("sync", "packages", "all")
            .set("sync", "wpkg_log", path(tmp.join("wpkg.log")))
            .set("trust", "publisher_key", path(publisher().public.clone()))
    }

    /// Writes `ini` to [`Self::ini_path`].
    pub(crate) fn write_ini(&self, ini: &Ini) {
        fs::write(self.ini_path(), ini.render()).expect("write the INI");
    }

    /// Replaces the known_hosts file.
    pub(crate) fn write_known_hosts(&self, text: &str) {
        let text = if text.is_empty() || text.ends_with('\n') {
            text.to_string()
        } else {
            format!("{text}\n")
        };
        fs::write(self.known_hosts(), text).expect("write known_hosts");
    }

    /// The binary, run in the test's working folder.
    pub(crate) fn command(&self) -> Command {
        wpkgsync().current_dir(self.cwd())
    }

    /// Runs `command` and attaches the local log and the server's log, as they
    /// are after the run, to any failure message.
    pub(crate) fn run(&self, command: Command) -> Output {
        let out = command.run();
        Output {
            context: self.logs(),
            ..out
        }
    }

    /// `wpkgsync --config <ini>`.
    pub(crate) fn sync(&self) -> Output {
        self.sync_with(&[])
    }

    /// `wpkgsync --config <ini>` followed by `extra`; writes the default INI
    /// first if the test wrote none.
    pub(crate) fn sync_with(&self, extra: &[&str]) -> Output {
        if !self.ini_path().exists() {
            self.write_ini(&self.ini());
        }
        self.run(
            self.command()
                .arg("--config")
                .arg(self.ini_path())
                .args(extra),
        )
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        let log = self.state().join("wpkgsync.log");
        if let Ok(local) = fs::read_to_string(&log) {
            text.push_str(&format!("{}:\n{local}\n", log.display()));
        }
        if let Some(sshd) = self.sshd {
            text.push_str(&format!(
                "sshd log (last lines, all tests):\n{}\n",
                sshd.log_tail(40)
            ));
        }
        text
    }

    /// The store as it is now.
    pub(crate) fn store_tree(&self) -> Tree {
        Tree::read(&self.store())
    }

    /// Asserts that the store mirrors the repository exactly.
    pub(crate) fn assert_store_mirrors_repo(&self) {
        tree::assert_mirrors(&self.store(), self.repo.root(), &[]);
    }

    /// Asserts that a run failed with `code`, said why in one stderr line, and
    /// wrote the same message to the local log (which may frame it with a time
    /// and the code, as stderr may prefix the program name); returns the line.
    pub(crate) fn assert_failed(&self, out: &Output, code: Code) -> String {
        out.assert_code(code);
        let line = out.error_line().trim().to_string();
        let message = line.strip_prefix("wpkgsync: ").unwrap_or(&line);
        let log = self.state().join("wpkgsync.log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains(message),
            "the local log {log:?} lacks the error line {line:?}; it holds:\n{text}\n{out}"
        );
        line
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let leftovers = Tree::read(self.tmp());
        let temps: Vec<String> = leftovers
            .temp_files()
            .into_iter()
            .map(str::to_string)
            .collect();
        if self.via == Via::Sftp {
            let _ = fs::remove_dir_all(self.repo.root());
        }
        if !std::thread::panicking() {
            assert!(
                temps.is_empty(),
                "temporary files remain after the test: {temps:?}"
            );
        }
    }
}
