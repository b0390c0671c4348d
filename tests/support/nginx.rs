//! A private nginx on 127.0.0.1 serving the shared sshd's repositories over
//! HTTPS, so one published repository is reachable over SFTP and HTTPS alike:
//! the repository of `TestEnv::sftp(name)` is `https://127.0.0.1:PORT/<name>/`,
//! and its reports folder takes `PUT`s at `/reports/<name>/`.
//!
//! Started once per test binary on first use, like the sshd: ports from binding
//! `127.0.0.1:0` (retried if nginx loses the race), the config checked with
//! `nginx -t` first, readiness when the pid file names the child (nginx writes it
//! after binding every port) and every port accepts a connection, stopped at
//! exit. Five servers share the root and the reports location:
//!
//! - [`Nginx::port`]: TLS with the test CA's certificate, HTTP/2 offered;
//! - [`Nginx::wrong_cert_port`]: TLS with a certificate from a CA nobody trusts;
//! - [`Nginx::mtls_port`]: TLS that demands a client certificate signed by the CA;
//! - [`Nginx::bearer_port`]: TLS that answers 401 unless `Authorization:
//!   Bearer <BEARER_TOKEN>`;
//! - [`Nginx::plain_port`]: plain HTTP.
//!
//! nginx runs with `master_process off`: one process, root like the test, that
//! both reads the repositories and writes the reports. With workers as
//! `www-data` the reports folders (owned by the sftp account, 0755) would not
//! be writable; running one root process keeps the sshd's layout untouched.
//! Static files get ranges, `ETag`s and 304s from nginx's defaults; gzip is off.
//!
//! The access log has one line per request, in this form (fields nginx has not
//! got are `-`, `h2` is empty on HTTP/1.1, and values are written as received,
//! quotes included, so an `ETag` can be searched as the client sent it):
//!
//! ```text
//! 40123 "GET /name/packages/a.msi HTTP/2.0" 206 100 range="bytes=0-99" h2="h2" auth="-" inm="-" conn=3 reqs=2
//! ```
//!
//! Layout: `/var/lib/wpkgsync-tests/<pid>/nginx-<n>/` holds `nginx.conf`,
//! `nginx.pid`, `access.log`, `error.log`, `stderr.log` and `tmp/`.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::pki::TestPki;
use super::run::Command;
use super::sshd::{REPORTS, Sshd, UPDATES, free_port};
use super::workspace;

/// The nginx binary of Debian's `nginx-light`.
pub(crate) const NGINX: &str = "/usr/sbin/nginx";
/// The token the bearer server wants, as `Authorization: Bearer <token>`.
pub(crate) const BEARER_TOKEN: &str = "test-token-123";

/// How often a set of ports is tried before giving up.
const PORT_ATTEMPTS: usize = 8;
/// How long nginx may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long [`Nginx::wait_for_requests`] waits for log lines.
const LOG_DEADLINE: Duration = Duration::from_secs(10);

/// A running nginx.
pub(crate) struct Nginx {
    base: PathBuf,
    ports: Ports,
    access_log: PathBuf,
    error_log: PathBuf,
    child: Mutex<Option<Child>>,
}

#[derive(Clone, Copy)]
struct Ports {
    main: u16,
    wrong_cert: u16,
    mtls: u16,
    plain: u16,
    bearer: u16,
}

impl Ports {
    fn all(self) -> [u16; 5] {
        [
            self.main,
            self.wrong_cert,
            self.mtls,
            self.plain,
            self.bearer,
        ]
    }
}

impl Nginx {
    /// The instance shared by every test of this binary, started on first use
    /// (with the shared sshd, whose folders it serves) and stopped at exit.
    pub(crate) fn shared() -> &'static Nginx {
        static SHARED: OnceLock<Nginx> = OnceLock::new();
        SHARED.get_or_init(|| {
            let nginx = Nginx::start();
            workspace::at_exit(|| {
                if let Some(nginx) = SHARED.get() {
                    nginx.stop();
                }
            });
            nginx
        })
    }

    /// Starts a new instance in its own folder; panics with the reason (and
    /// nginx's own words) if it cannot.
    fn start() -> Nginx {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install nginx-light (apt-get install -y nginx-light)"
        );
        let sshd = Sshd::shared();
        let pki = TestPki::shared();
        let base = workspace::folder(&format!("nginx-{}", COUNT.fetch_add(1, Ordering::Relaxed)));
        for dir in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            workspace::make_private_dir(&base.join("tmp").join(dir));
        }
        let config = base.join("nginx.conf");
        let access_log = base.join("access.log");
        let error_log = base.join("error.log");
        let stderr_log = base.join("stderr.log");
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let ports = distinct_free_ports();
            let text = render_config(
                &base,
                ports,
                pki,
                &sshd.host_path(UPDATES),
                &sshd.host_path(REPORTS),
            );
            fs::write(&config, text).unwrap_or_else(|e| panic!("write {config:?}: {e}"));
            let check = Command::new(NGINX)
                .arg("-t")
                .args(prefix_args(&base, &config))
                .run();
            if check.status != Some(0) {
                panic!(
                    "nginx -t refused {config:?}:\n{}\n{}",
                    check.stderr.trim_end(),
                    fs::read_to_string(&config).unwrap_or_default()
                );
            }
            let _ = fs::remove_file(base.join("nginx.pid"));
            match spawn_and_wait(&base, &config, &stderr_log, ports) {
                Ok(child) => {
                    return Nginx {
                        base,
                        ports,
                        access_log,
                        error_log,
                        child: Mutex::new(Some(child)),
                    };
                }
                // Another process took a port between our probe and nginx's bind.
                Err(text) if text.contains("Address already in use") => last = text,
                Err(text) => panic!("nginx did not start:\n{text}"),
            }
        }
        panic!("nginx found no free ports in {PORT_ATTEMPTS} attempts:\n{last}");
    }

    /// The TLS port with the test CA's server certificate.
    pub(crate) fn port(&self) -> u16 {
        self.ports.main
    }

    /// A TLS port whose certificate the wrong CA signed.
    pub(crate) fn wrong_cert_port(&self) -> u16 {
        self.ports.wrong_cert
    }

    /// A TLS port that refuses clients without a certificate signed by the CA.
    pub(crate) fn mtls_port(&self) -> u16 {
        self.ports.mtls
    }

    /// A plain-HTTP port.
    pub(crate) fn plain_port(&self) -> u16 {
        self.ports.plain
    }

    /// A TLS port that answers 401 unless `Authorization: Bearer BEARER_TOKEN`.
    pub(crate) fn bearer_port(&self) -> u16 {
        self.ports.bearer
    }

    /// `https://127.0.0.1:PORT/<name>`: the repository of `TestEnv::sftp(name)`.
    pub(crate) fn url(&self, name: &str) -> String {
        https(self.ports.main, name)
    }

    /// [`Self::url`] on the wrong-certificate port.
    pub(crate) fn wrong_cert_url(&self, name: &str) -> String {
        https(self.ports.wrong_cert, name)
    }

    /// [`Self::url`] on the client-certificate port.
    pub(crate) fn mtls_url(&self, name: &str) -> String {
        https(self.ports.mtls, name)
    }

    /// [`Self::url`] on the bearer-token port.
    pub(crate) fn bearer_url(&self, name: &str) -> String {
        https(self.ports.bearer, name)
    }

    /// `http://127.0.0.1:PLAIN_PORT/<name>`.
    pub(crate) fn plain_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.ports.plain)
    }

    /// `https://127.0.0.1:PORT/reports/<name>`: WebDAV `PUT`, `DELETE` and `MOVE`
    /// into the sshd's `REPORTS/<name>` (missing folders are created). Every
    /// server has this location, so `bearer_url("reports/x")` and the like work
    /// too.
    pub(crate) fn reports_url(&self, name: &str) -> String {
        https(self.ports.main, &format!("reports/{name}"))
    }

    /// The whole access log, every server and every test so far.
    pub(crate) fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }

    /// How many access-log lines contain `needle` (such as `"GET /name/"` or
    /// `"/name/config.xml"` and `" 304 "`, when called for each).
    pub(crate) fn count_requests(&self, needle: &str) -> usize {
        self.access_log()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// The access-log lines that contain every one of `needles`.
    pub(crate) fn requests_matching(&self, needles: &[&str]) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_string)
            .collect()
    }

    /// Waits (up to ten seconds) until at least `at_least` access-log lines
    /// contain `needle`, and returns how many do. nginx logs a request after
    /// sending its answer, so a client may read the answer a moment before the
    /// line appears.
    pub(crate) fn wait_for_requests(&self, needle: &str, at_least: usize) -> usize {
        let deadline = Instant::now() + LOG_DEADLINE;
        loop {
            let count = self.count_requests(needle);
            if count >= at_least || Instant::now() > deadline {
                return count;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `lines` lines of nginx's error log, for failure messages.
    pub(crate) fn error_log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.error_log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops nginx (idempotent) and removes its folder.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            terminate(&mut child);
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn https(port: u16, name: &str) -> String {
    format!("https://127.0.0.1:{port}/{name}")
}

/// Five different ports that were free a moment ago.
fn distinct_free_ports() -> Ports {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < 5 {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ports {
        main: ports[0],
        wrong_cert: ports[1],
        mtls: ports[2],
        plain: ports[3],
        bearer: ports[4],
    }
}

/// `-p BASE/ -e BASE/error.log -c CONFIG`: nothing of nginx's defaults outside
/// the folder, not even the error log it opens before reading the config.
fn prefix_args(base: &Path, config: &Path) -> Vec<String> {
    let text = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    vec![
        "-p".to_string(),
        format!("{}/", text(base)),
        "-e".to_string(),
        text(&base.join("error.log")),
        "-c".to_string(),
        text(config),
    ]
}

fn render_config(base: &Path, ports: Ports, pki: &TestPki, root: &Path, reports: &Path) -> String {
    let p = |path: &Path| path.to_str().expect("utf-8 path").to_string();
    let base = p(base);
    let root = p(root);
    let reports = p(reports);
    let (ca, cert, key) = (p(pki.ca_pem()), p(pki.server_cert()), p(pki.server_key()));
    let (wrong_cert, wrong_key) = (p(pki.wrong_server_cert()), p(pki.wrong_server_key()));
    let content = format!(
        "        root {root};\n\
         \x20       location /reports/ {{\n\
         \x20           alias {reports}/;\n\
         \x20           dav_methods PUT DELETE MOVE;\n\
         \x20           create_full_put_path on;\n\
         \x20           dav_access user:rw group:r all:r;\n\
         \x20           client_max_body_size 0;\n\
         \x20       }}\n"
    );
    let tls = |port: u16, cert: &str, key: &str, extra: &str| {
        format!(
            "    server {{\n\
             \x20       listen 127.0.0.1:{port} ssl http2;\n\
             \x20       ssl_certificate {cert};\n\
             \x20       ssl_certificate_key {key};\n\
             {extra}{content}    }}\n"
        )
    };
    let main = tls(ports.main, &cert, &key, "");
    let wrong = tls(ports.wrong_cert, &wrong_cert, &wrong_key, "");
    let mtls = tls(
        ports.mtls,
        &cert,
        &key,
        &format!(
            "        ssl_verify_client on;\n        ssl_client_certificate {ca};\n\
             \x20       ssl_verify_depth 2;\n"
        ),
    );
    let bearer = tls(
        ports.bearer,
        &cert,
        &key,
        &format!(
            "        if ($http_authorization != \"Bearer {BEARER_TOKEN}\") {{\n\
             \x20           return 401;\n\
             \x20       }}\n\
             \x20       add_header WWW-Authenticate \"Bearer\" always;\n"
        ),
    );
    let plain = format!(
        "    server {{\n        listen 127.0.0.1:{};\n{content}    }}\n",
        ports.plain
    );
    format!(
        "daemon off;\n\
         master_process off;\n\
         pid {base}/nginx.pid;\n\
         lock_file {base}/nginx.lock;\n\
         error_log {base}/error.log info;\n\
         events {{\n    worker_connections 512;\n}}\n\
         http {{\n\
         \x20   default_type application/octet-stream;\n\
         \x20   types {{ }}\n\
         \x20   charset off;\n\
         \x20   server_tokens off;\n\
         \x20   gzip off;\n\
         \x20   sendfile on;\n\
         \x20   tcp_nopush on;\n\
         \x20   etag on;\n\
         \x20   keepalive_timeout 60s;\n\
         \x20   keepalive_requests 10000;\n\
         \x20   client_body_temp_path {base}/tmp/body;\n\
         \x20   proxy_temp_path {base}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {base}/tmp/fastcgi;\n\
         \x20   uwsgi_temp_path {base}/tmp/uwsgi;\n\
         \x20   scgi_temp_path {base}/tmp/scgi;\n\
         \x20   log_format wpkgsync escape=none '$server_port \"$request\" $status $body_bytes_sent \
         range=\"$http_range\" h2=\"$http2\" auth=\"$http_authorization\" \
         inm=\"$http_if_none_match\" conn=$connection reqs=$connection_requests';\n\
         \x20   access_log {base}/access.log wpkgsync;\n\
         {main}{wrong}{mtls}{bearer}{plain}}}\n"
    )
}

/// Starts `nginx` in the foreground and waits until it has written its pid
/// file (after binding every port) and every port accepts TCP connections. On
/// failure returns what nginx wrote, so the caller can tell a lost port race
/// from a real problem.
fn spawn_and_wait(
    base: &Path,
    config: &Path,
    stderr_log: &Path,
    ports: Ports,
) -> Result<Child, String> {
    let stderr = fs::File::create(stderr_log).expect("create stderr.log");
    let mut command = std::process::Command::new(NGINX);
    command
        .args(prefix_args(base, config))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let mut child = spawn_tied(command).unwrap_or_else(|e| panic!("cannot start {NGINX}: {e}"));
    let said = || {
        format!(
            "{}\n{}",
            fs::read_to_string(stderr_log).unwrap_or_default(),
            fs::read_to_string(base.join("error.log")).unwrap_or_default()
        )
    };
    let deadline = Instant::now() + START_DEADLINE;
    let pid_file = base.join("nginx.pid");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("nginx exited with {status}:\n{}", said()));
        }
        let written =
            fs::read_to_string(&pid_file).is_ok_and(|text| text.trim() == child.id().to_string());
        if written
            && ports.all().iter().all(|&port| {
                let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
            })
        {
            return Ok(child);
        }
        if Instant::now() > deadline {
            terminate(&mut child);
            return Err(format!(
                "nginx did not accept connections within {START_DEADLINE:?}:\n{}",
                said()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Asks `child` to stop with SIGTERM, then kills it if it has not within five
/// seconds; reaps it either way.
pub(crate) fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: `kill` has no memory preconditions; the pid is our own child,
        // not yet reaped, so it cannot name another process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

type SpawnJob = (std::process::Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` so that the child gets SIGTERM if the test binary dies
/// without running its exit hooks (killed by a timeout, say), instead of
/// lingering on its ports. `PR_SET_PDEATHSIG` fires when the *thread* that
/// forked the child ends, and test threads end with their test, so every such
/// child is forked by one thread that lives as long as the process.
pub(crate) fn spawn_tied(mut command: std::process::Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, receive) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("test-process-spawner".to_string())
            .spawn(move || {
                for (mut command, reply) in receive {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the spawner thread");
        Mutex::new(jobs)
    });
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only calls
    // `prctl` and `getppid`, both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .expect("the spawner thread is running");
    answer.recv().expect("the spawner thread answers")
}
