//! Small Python servers a test starts for itself: a misbehaving HTTPS mirror
//! (`bad_mirror.py`) and an HTTP CONNECT proxy (`connect_proxy.py`), each on a
//! port of 127.0.0.1 it picked itself and printed, each stopped (and reaped)
//! when its handle is dropped.
//!
//! The mirror serves a folder, usually `env.repo().root()`, with the test
//! PKI's server certificate; see `bad_mirror.py` for what each mode does to
//! the files under `packages/`. Each handle has its own folder,
//! `/var/lib/wpkgsync-tests/<pid>/mirror-<n>/` or `proxy-<n>/`, holding the
//! request log and the script's stderr.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::nginx::{spawn_tied, terminate};
use super::pki::TestPki;
use super::workspace;

const BAD_MIRROR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/bad_mirror.py");
const CONNECT_PROXY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/connect_proxy.py"
);
/// How long a script may take to print its port.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// A running `bad_mirror.py`.
pub(crate) struct BadMirror {
    server: Server,
}

impl BadMirror {
    /// Serves `root` over HTTPS in `mode` (`ok`, `error500`, `cut`, `full200`,
    /// `tamper`, `stall`, `wrong_range`, `stale`), with `extra_args` passed on
    /// (`["--after", "5000"]`, `["--stale-root", dir]`); panics with the
    /// script's stderr if it does not start.
    pub(crate) fn start(root: &Path, mode: &str, extra_args: &[&str]) -> BadMirror {
        let pki = TestPki::shared();
        let mut args: Vec<String> = vec![
            "--root".into(),
            text(root),
            "--mode".into(),
            mode.into(),
            "--cert".into(),
            text(pki.server_cert()),
            "--key".into(),
            text(pki.server_key()),
        ];
        args.extend(extra_args.iter().map(|a| a.to_string()));
        BadMirror {
            server: Server::start("mirror", BAD_MIRROR, &args),
        }
    }

    /// The port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.server.port
    }

    /// `https://127.0.0.1:PORT` (the served folder is the root of the URL).
    pub(crate) fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port)
    }

    /// The request log so far: `METHOD PATH RANGE STATUS` lines, RANGE being
    /// the Range header or `-`.
    pub(crate) fn requests(&self) -> String {
        self.server.log()
    }
}

/// A running `connect_proxy.py`.
pub(crate) struct ConnectProxy {
    server: Server,
}

impl ConnectProxy {
    /// Starts a CONNECT proxy; panics with the script's stderr if it cannot.
    pub(crate) fn start() -> ConnectProxy {
        ConnectProxy {
            server: Server::start("proxy", CONNECT_PROXY, &[]),
        }
    }

    /// The port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.server.port
    }

    /// `http://127.0.0.1:PORT`, for `--proxy`, `HTTPS_PROXY` and the like.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// The log so far: one `CONNECT host:port HTTP/1.1 -> STATUS` line per
    /// request (with ` auth=...` before the arrow when the client sent
    /// `Proxy-Authorization`).
    pub(crate) fn log(&self) -> String {
        self.server.log()
    }
}

/// A Python script serving on a port it printed, in its own folder.
struct Server {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl Server {
    fn start(kind: &str, script: &str, args: &[String]) -> Server {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = workspace::folder(&format!("{kind}-{}", COUNT.fetch_add(1, Ordering::Relaxed)));
        let log = dir.join("requests.log");
        let stderr_path = dir.join("stderr.log");
        fs::write(&log, "").unwrap_or_else(|e| panic!("create {log:?}: {e}"));
        let stderr = fs::File::create(&stderr_path).expect("create stderr.log");
        let mut command = std::process::Command::new("python3");
        command
            .arg(script)
            .args(args)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child =
            spawn_tied(command).unwrap_or_else(|e| panic!("cannot start python3 {script}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, receive) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = send.send(line);
        });
        let line = receive.recv_timeout(START_DEADLINE).unwrap_or_default();
        match line.trim().parse::<u16>() {
            Ok(port) if port != 0 => Server { port, dir, child },
            _ => {
                terminate(&mut child);
                let said = fs::read_to_string(&stderr_path).unwrap_or_default();
                let _ = fs::remove_dir_all(&dir);
                panic!("python3 {script} {args:?} printed no port ({line:?}):\n{said}");
            }
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("requests.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn text(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_string()
}
