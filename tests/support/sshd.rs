//! A private OpenSSH sshd on 127.0.0.1, configured from `config/sshd_config.template`
//! exactly as administrators deploy it: one chrooted account, `ForceCommand
//! internal-sftp`, a read-only repository and a writable reports folder.
//!
//! Follows wezterm-ssh's tests/sshd.rs, with its weak points fixed: keys come from
//! `ssh-keygen`, the port from binding `127.0.0.1:0` (retried if sshd loses the
//! race), the config is checked with `sshd -t` first, readiness is a TCP connect
//! polled against a deadline, and the process is stopped at exit even though the
//! shared instance lives in a `static`.
//!
//! Layout of one instance, all root-owned and 0755 unless noted:
//!
//! ```text
//! /var/lib/wpkgsync-tests/<pid>/sshd-<n>/
//!     sshd_config  sshd.log  sshd.pid  ssh_host_ed25519_key  authorized_keys (0644)
//!     client/      id_ed25519  id_rsa (authorized), stranger_ed25519 (not authorized),
//!                  other_host_ed25519 (a host key the server does not have)
//!     chroot/opt/updates/<test-name>/   the repositories, read-only for the account
//!     chroot/opt/wpkgreports/           owned by the account
//! ```

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use super::run::Command;
use super::workspace;

/// sshd wants to be started by its absolute path.
pub(crate) const SSHD: &str = "/usr/sbin/sshd";
/// The locked-down client account.
pub(crate) const USER: &str = "wpkgsync-test";
/// Where repositories live, as the account sees them inside the chroot.
pub(crate) const UPDATES: &str = "/opt/updates";
/// The reports folder, as the account sees it inside the chroot.
pub(crate) const REPORTS: &str = "/opt/wpkgreports";

/// The server setup administrators run; it fills in the shared sshd template.
const SETUP_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-server");
/// How often a port is tried before giving up.
const PORT_ATTEMPTS: usize = 8;
/// How long sshd may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A running sshd and the client-side keys that go with it.
pub(crate) struct Sshd {
    /// The port sshd listens on, on 127.0.0.1.
    pub port: u16,
    base: PathBuf,
    chroot: PathBuf,
    log: PathBuf,
    config: PathBuf,
    setup: String,
    host_public: String,
    other_host_public: String,
    child: Mutex<Option<Child>>,
}

impl Sshd {
    /// The instance shared by every test of this binary, started on first use and
    /// stopped when the binary exits.
    pub(crate) fn shared() -> &'static Sshd {
        static SHARED: OnceLock<Sshd> = OnceLock::new();
        SHARED.get_or_init(|| {
            let sshd = Sshd::start();
            workspace::at_exit(|| {
                if let Some(sshd) = SHARED.get() {
                    sshd.stop();
                }
            });
            sshd
        })
    }

    /// Starts a new instance in its own folder; panics with the reason (and sshd's
    /// own words) if it cannot.
    pub(crate) fn start() -> Sshd {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (apt-get install -y openssh-server)"
        );
        let base = workspace::folder(&format!("sshd-{}", COUNT.fetch_add(1, Ordering::Relaxed)));
        let chroot = base.join("chroot");
        let client = base.join("client");
        workspace::make_private_dir(&client);
        for (kind, name) in [
            ("ed25519", "id_ed25519"),
            ("rsa", "id_rsa"),
            ("ed25519", "stranger_ed25519"),
            ("ed25519", "other_host_ed25519"),
        ] {
            ssh_keygen(kind, &client.join(name));
        }

        let config = base.join("sshd_config");
        let log = base.join("sshd.log");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            // The server side exactly as administrators set it up.
            let setup = setup_server(&base, &chroot, port, &client);
            match spawn_and_wait(&config, &log, port) {
                Ok(child) => {
                    let host_public = public_key(&base.join("ssh_host_ed25519_key"));
                    assert!(
                        setup.contains(&format!("[127.0.0.1]:{port} {host_public}")),
                        "scripts/setup-server printed no known_hosts line for this server:\n{setup}"
                    );
                    return Sshd {
                        port,
                        host_public,
                        other_host_public: public_key(&client.join("other_host_ed25519")),
                        base,
                        chroot,
                        log,
                        config,
                        setup,
                        child: Mutex::new(Some(child)),
                    };
                }
                // Another process took the port between our probe and sshd's bind.
                Err(text) if text.contains("Address already in use") => last_log = text,
                Err(text) => panic!("sshd did not start:\n{text}"),
            }
        }
        panic!("sshd found no free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    /// What `scripts/setup-server` printed for the clients: the known_hosts
    /// line and the INI lines.
    pub(crate) fn setup_output(&self) -> &str {
        &self.setup
    }

    /// The folder on this machine that the account sees as `inside` (an absolute
    /// path in the chroot, like `/opt/updates/x`).
    pub(crate) fn host_path(&self, inside: &str) -> PathBuf {
        self.chroot.join(inside.trim_start_matches('/'))
    }

    /// Creates `REPORTS/<name>`, owned by the account like the reports folder
    /// itself, so that tests running at once keep their reports apart; returns
    /// its path as the account sees it.
    pub(crate) fn reports_folder(&self, name: &str) -> String {
        let inside = format!("{REPORTS}/{name}");
        let host = self.host_path(&inside);
        workspace::make_private_dir(&host);
        let (uid, gid) = user_ids();
        chown(&host, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {host:?}: {e}"));
        inside
    }

    /// A client key listed in `authorized_keys`: `"id_ed25519"` or `"id_rsa"`; or one
    /// that is not: `"stranger_ed25519"`.
    pub(crate) fn client_key(&self, name: &str) -> PathBuf {
        let path = self.base.join("client").join(name);
        assert!(path.exists(), "no client key {name}");
        path
    }

    /// The known_hosts line for this server, in OpenSSH's `[host]:port` form.
    pub(crate) fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public)
    }

    /// A known_hosts line for this server's address with somebody else's ed25519
    /// key, as if the host key had changed.
    pub(crate) fn wrong_known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.other_host_public)
    }

    /// The filled-in configuration file.
    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }

    /// The last `lines` lines of sshd's log, for failure messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops sshd (idempotent) and removes its folder.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Generates an unencrypted key pair at `path` and `path.pub`.
pub(crate) fn ssh_keygen(kind: &str, path: &Path) {
    let mut command = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", "wpkgsync-test", "-t", kind])
        .arg("-f")
        .arg(path);
    if kind == "rsa" {
        command = command.args(["-b", "3072"]);
    }
    command.run().assert_success();
}

/// The first two fields (`type base64`) of the public key beside `private`.
pub(crate) fn public_key(private: &Path) -> String {
    let public = private.with_extension("pub");
    let text = fs::read_to_string(&public).unwrap_or_else(|e| panic!("read {public:?}: {e}"));
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 for a free port");
    listener.local_addr().expect("local address").port()
}

/// Runs `scripts/setup-server` for an sshd on 127.0.0.1:`port` with its
/// configuration in `base`, authorizing the client keys `id_ed25519` and
/// `id_rsa`; returns what it printed for the clients.
fn setup_server(base: &Path, chroot: &Path, port: u16, client: &Path) -> String {
    let out = Command::new(SETUP_SERVER)
        .args(["--no-service", "--user", USER, "--listen", "127.0.0.1"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--chroot")
        .arg(chroot)
        .arg("--etc")
        .arg(base)
        .arg("--client-key")
        .arg(client.join("id_ed25519.pub"))
        .arg("--client-key")
        .arg(client.join("id_rsa.pub"))
        .run();
    out.assert_success();
    out.stdout
}

/// Starts `sshd -D -e` and waits until it accepts TCP connections. On failure
/// returns what sshd wrote, so the caller can tell a lost port race from a real
/// problem.
fn spawn_and_wait(config: &Path, log: &Path, port: u16) -> Result<Child, String> {
    let log_file = fs::File::create(log).expect("create sshd.log");
    let mut child = std::process::Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = fs::read_to_string(log).unwrap_or_default();
            return Err(format!("sshd exited with {status}:\n{text}"));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "sshd did not accept connections within {START_DEADLINE:?}:\n{text}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn user_ids() -> (u32, u32) {
    let uid = Command::new("id").args(["-u", USER]).run();
    let gid = Command::new("id").args(["-g", USER]).run();
    let parse = |text: &str| text.trim().parse::<u32>().expect("numeric id");
    (
        parse(&uid.assert_success().stdout),
        parse(&gid.assert_success().stdout),
    )
}
