//! The HTTPS test harness itself, checked with curl before any client relies
//! on it: nginx serves an sftp test's repository with ranges, ETags and 304s,
//! its other servers refuse a client that trusts the wrong CA, lacks the
//! client certificate or the bearer token, and take report uploads; the bad
//! mirror misbehaves exactly as its mode says; the proxy tunnels and logs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{
    BEARER_TOKEN, BadMirror, Command, ConnectProxy, Nginx, Output, TestEnv, TestPki, noise,
};

/// What one curl run got.
struct Reply {
    /// curl's exit status (0, or 18 for a short body, 28 for a timeout, ...).
    exit: Option<i32>,
    /// The HTTP status, 0 when no answer came.
    status: u16,
    /// The response headers as received, lowercase.
    headers: String,
    /// The body bytes received.
    body: Vec<u8>,
    out: Output,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        self.headers
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.trim().to_string())
    }
}

/// `curl -sS --cacert <test CA>` with `args`, the body and headers kept in
/// files under `dir`.
fn curl(dir: &Path, args: &[&str]) -> Reply {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    assert!(
        Path::new("/usr/bin/curl").exists(),
        "curl is missing: run scripts/install-deps (apt-get install -y curl)"
    );
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let body: PathBuf = dir.join(format!("curl-{n}.body"));
    let headers: PathBuf = dir.join(format!("curl-{n}.headers"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "%{http_code}"])
        .arg("--cacert")
        .arg(TestPki::shared().ca_pem())
        .arg("-o")
        .arg(&body)
        .arg("-D")
        .arg(&headers)
        .args(args)
        .run();
    let reply = Reply {
        exit: out.status,
        status: out.stdout.trim().parse().unwrap_or(0),
        headers: fs::read_to_string(&headers)
            .unwrap_or_default()
            .to_lowercase(),
        body: fs::read(&body).unwrap_or_default(),
        out,
    };
    let _ = fs::remove_file(body);
    let _ = fs::remove_file(headers);
    reply
}

#[test]
fn test_pki_files_are_what_clients_load() {
    let pki = TestPki::shared();
    let identity = fs::read_to_string(pki.client_identity_pem()).unwrap();
    let cert = identity.find("-----BEGIN CERTIFICATE-----");
    let key = identity.find("-----BEGIN PRIVATE KEY-----");
    assert!(
        matches!((cert, key), (Some(c), Some(k)) if c < k),
        "the identity is not a certificate then a PKCS#8 key:\n{identity}"
    );
    for path in [pki.server_key(), pki.wrong_server_key(), pki.ca_pem()] {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{path:?}");
    }
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
            "-in",
        ])
        .arg(pki.server_cert())
        .run();
    text.assert_success();
    assert!(text.stdout.contains("IP Address:127.0.0.1"), "{text}");
    assert!(text.stdout.contains("DNS:localhost"), "{text}");
    for (cert, ca, trusted) in [
        (pki.server_cert(), pki.ca_pem(), true),
        (pki.wrong_server_cert(), pki.wrong_ca_pem(), true),
        (pki.wrong_server_cert(), pki.ca_pem(), false),
        (pki.server_cert(), pki.wrong_ca_pem(), false),
    ] {
        let out = Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(ca)
            .arg(cert)
            .run();
        assert_eq!(out.status == Some(0), trusted, "{out}");
    }
    Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(pki.ca_pem())
        .arg(pki.client_identity_pem())
        .run()
        .assert_success();
}

#[test]
fn nginx_serves_the_repository_with_ranges_and_not_modified() {
    let name = "harness-nginx-ranges";
    let env = TestEnv::sftp(name);
    let bytes = noise(11, 50_000);
    env.repo().write("packages/a/setup.exe", &bytes);
    let nginx = Nginx::shared();
    let url = format!("{}/packages/a/setup.exe", nginx.url(name));

    let whole = curl(env.tmp(), &[&url]);
    assert_eq!(whole.status, 200, "{}", whole.out);
    assert_eq!(whole.body, bytes);
    assert_eq!(whole.header("content-length"), Some("50000".to_string()));

    let part = curl(env.tmp(), &["-r", "1000-1999", &url]);
    assert_eq!(part.status, 206, "{}", part.out);
    assert_eq!(part.body, &bytes[1000..2000]);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000-1999/50000".to_string())
    );

    let etag = whole.header("etag").expect("nginx sends an ETag");
    let same = curl(env.tmp(), &["-H", &format!("If-None-Match: {etag}"), &url]);
    assert_eq!(same.status, 304, "{}", same.out);
    assert!(same.body.is_empty());

    let past = curl(env.tmp(), &["-r", "60000-60010", &url]);
    assert_eq!(past.status, 416, "{}", past.out);

    let path = format!("/{name}/packages/a/setup.exe");
    assert_eq!(
        nginx.wait_for_requests(&path, 4),
        4,
        "{}",
        nginx.access_log()
    );
    let not_modified = nginx.requests_matching(&[&path, "\" 304 "]);
    assert_eq!(not_modified.len(), 1, "{}", nginx.access_log());
    assert!(
        not_modified[0].contains(&format!("inm=\"{etag}\""))
            && not_modified[0].contains("h2=\"h2\""),
        "{not_modified:?}"
    );
    assert_eq!(
        nginx.count_requests("range=\"bytes=1000-1999\""),
        1,
        "{}",
        nginx.access_log()
    );
}

#[test]
fn nginx_servers_refuse_the_wrong_ca_and_missing_credentials() {
    let name = "harness-nginx-refusals";
    let env = TestEnv::sftp(name);
    env.repo().write("config.xml", "<config />\r\n");
    let nginx = Nginx::shared();
    let pki = TestPki::shared();
    let file = |base: String| format!("{base}/config.xml");

    let wrong = curl(env.tmp(), &[&file(nginx.wrong_cert_url(name))]);
    assert_eq!(
        wrong.exit,
        Some(60),
        "trusted the wrong CA's certificate\n{}",
        wrong.out
    );
    let wrong_ca = pki.wrong_ca_pem().to_str().unwrap();
    let right = curl(
        env.tmp(),
        &["--cacert", wrong_ca, &file(nginx.wrong_cert_url(name))],
    );
    assert_eq!(right.status, 200, "{}", right.out);

    // nginx finishes the handshake and answers 400 to a client without a
    // certificate.
    let anonymous = curl(env.tmp(), &[&file(nginx.mtls_url(name))]);
    assert_eq!(anonymous.status, 400, "{}", anonymous.out);
    let identity = pki.client_identity_pem().to_str().unwrap();
    let known = curl(
        env.tmp(),
        &["--cert", identity, &file(nginx.mtls_url(name))],
    );
    assert_eq!(known.status, 200, "{}", known.out);
    assert_eq!(known.body, b"<config />\r\n");

    let no_token = curl(env.tmp(), &[&file(nginx.bearer_url(name))]);
    assert_eq!(no_token.status, 401, "{}", no_token.out);
    let bad_token = curl(
        env.tmp(),
        &[
            "-H",
            "Authorization: Bearer nope",
            &file(nginx.bearer_url(name)),
        ],
    );
    assert_eq!(bad_token.status, 401, "{}", bad_token.out);
    let token = format!("Authorization: Bearer {BEARER_TOKEN}");
    let good = curl(env.tmp(), &["-H", &token, &file(nginx.bearer_url(name))]);
    assert_eq!(good.status, 200, "{}", good.out);
    assert!(nginx.wait_for_requests(&format!("auth=\"Bearer {BEARER_TOKEN}\""), 1) >= 1);
    assert_eq!(
        nginx
            .requests_matching(&[
                &format!("{} \"GET /{name}/", nginx.bearer_port()),
                "\" 401 "
            ])
            .len(),
        2,
        "{}",
        nginx.access_log()
    );

    let plain = curl(env.tmp(), &[&file(nginx.plain_url(name))]);
    assert_eq!(plain.status, 200, "{}", plain.out);
    assert_eq!(plain.body, b"<config />\r\n");
    assert!(
        nginx
            .plain_url(name)
            .starts_with(&format!("http://127.0.0.1:{}/", nginx.plain_port()))
    );
    for port in [
        nginx.wrong_cert_port(),
        nginx.mtls_port(),
        nginx.bearer_port(),
    ] {
        assert_ne!(port, nginx.port());
    }
}

#[test]
fn nginx_takes_report_uploads_into_the_reports_folder() {
    let name = "harness-nginx-reports";
    let env = TestEnv::sftp(name);
    env.sshd().reports_folder(name);
    let nginx = Nginx::shared();
    let report = env.tmp().join("report.log");
    fs::write(&report, "run ok\r\n").unwrap();

    let url = format!("{}/sub/host.log", nginx.reports_url(name));
    let put = curl(env.tmp(), &["-T", report.to_str().unwrap(), &url]);
    assert_eq!(put.status, 201, "{}\n{}", put.out, nginx.error_log_tail(10));
    let uploaded = env.reports().join("sub/host.log");
    assert_eq!(fs::read_to_string(&uploaded).unwrap(), "run ok\r\n");
    let mode = fs::metadata(&uploaded).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    let again = curl(env.tmp(), &["-T", report.to_str().unwrap(), &url]);
    assert_eq!(again.status, 204, "an overwrite is 204\n{}", again.out);
    let moved = format!("Destination: {}/moved.log", nginx.reports_url(name));
    let mv = curl(env.tmp(), &["-X", "MOVE", "-H", &moved, &url]);
    assert!(matches!(mv.status, 201 | 204), "{}", mv.out);
    assert!(env.reports().join("moved.log").is_file());
    assert!(!uploaded.exists());
}

#[test]
fn bad_mirror_modes_misbehave_only_under_packages() {
    let name = "harness-bad-mirror";
    let env = TestEnv::sftp(name);
    let bytes = noise(12, 300_000);
    env.repo()
        .write("packages/big.msi", &bytes)
        .write(".wpkgsync/timestamp.json", "{\"version\":2}\n");
    let root = env.repo().root();
    let package = |mirror: &BadMirror| format!("{}/packages/big.msi", mirror.url());
    let record = |mirror: &BadMirror| format!("{}/.wpkgsync/timestamp.json", mirror.url());

    let ok = BadMirror::start(root, "ok", &[]);
    let part = curl(env.tmp(), &["-r", "1000-1999", &package(&ok)]);
    assert_eq!(part.status, 206, "{}", part.out);
    assert_eq!(part.body, &bytes[1000..2000]);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000-1999/300000".into())
    );
    let etag = part.header("etag").expect("an ETag");
    let same = curl(
        env.tmp(),
        &["-H", &format!("If-None-Match: {etag}"), &package(&ok)],
    );
    assert_eq!(same.status, 304, "{}", same.out);
    let past = curl(env.tmp(), &["-r", "400000-", &package(&ok)]);
    assert_eq!(past.status, 416, "{}", past.out);
    let head = curl(env.tmp(), &["-I", &package(&ok)]);
    assert_eq!(head.header("content-length"), Some("300000".into()));
    let requests = ok.requests();
    assert!(
        requests.contains("GET /packages/big.msi bytes=1000-1999 206"),
        "{requests}"
    );
    assert!(
        requests.contains("HEAD /packages/big.msi - 200"),
        "{requests}"
    );
    assert!(ok.url().ends_with(&format!(":{}", ok.port())));
    drop(ok);

    let full = BadMirror::start(root, "full200", &[]);
    let whole = curl(env.tmp(), &["-r", "1000-1999", &package(&full)]);
    assert_eq!(whole.status, 200, "{}", whole.out);
    assert_eq!(whole.body, bytes);

    let cut = BadMirror::start(root, "cut", &["--after", "5000"]);
    let short = curl(env.tmp(), &[&package(&cut)]);
    assert_eq!(short.header("content-length"), Some("300000".into()));
    assert_ne!(short.exit, Some(0), "{}", short.out);
    assert_eq!(short.body, &bytes[..5000]);
    let record_whole = curl(env.tmp(), &[&record(&cut)]);
    assert_eq!(
        record_whole.body, b"{\"version\":2}\n",
        "{}",
        record_whole.out
    );

    let tamper = BadMirror::start(root, "tamper", &[]);
    let changed = curl(env.tmp(), &[&package(&tamper)]);
    assert_eq!(changed.body.len(), bytes.len());
    let differ: Vec<usize> = (0..bytes.len())
        .filter(|&i| changed.body[i] != bytes[i])
        .collect();
    assert_eq!(differ, vec![150_000]);

    let lying = BadMirror::start(root, "wrong_range", &[]);
    let lie = curl(env.tmp(), &["-r", "1000-1999", &package(&lying)]);
    assert_eq!(lie.status, 206, "{}", lie.out);
    assert_eq!(
        lie.header("content-range"),
        Some("bytes 1000-1999/300000".into())
    );
    assert_eq!(lie.body, &bytes[..1000]);

    let failing = BadMirror::start(root, "error500", &[]);
    assert_eq!(curl(env.tmp(), &[&package(&failing)]).status, 500);
    assert_eq!(curl(env.tmp(), &[&record(&failing)]).status, 200);

    let stalled = BadMirror::start(root, "stall", &["--after", "3000"]);
    let hung = curl(env.tmp(), &["--max-time", "2", &package(&stalled)]);
    assert_eq!(hung.exit, Some(28), "{}", hung.out);
    assert_eq!(hung.body, &bytes[..3000]);

    let old = env.tmp().join("old");
    fs::create_dir_all(old.join(".wpkgsync")).unwrap();
    fs::write(old.join(".wpkgsync/timestamp.json"), "{\"version\":1}\n").unwrap();
    let stale = BadMirror::start(root, "stale", &["--stale-root", old.to_str().unwrap()]);
    assert_eq!(
        curl(env.tmp(), &[&record(&stale)]).body,
        b"{\"version\":1}\n"
    );
    assert_eq!(curl(env.tmp(), &[&package(&stale)]).body, bytes);
    fs::remove_dir_all(old).unwrap();
}

#[test]
fn connect_proxy_tunnels_to_nginx_and_logs_the_target() {
    let name = "harness-proxy";
    let env = TestEnv::sftp(name);
    env.repo().write("config.xml", "<config />\r\n");
    let nginx = Nginx::shared();
    let proxy = ConnectProxy::start();

    let url = format!("{}/config.xml", nginx.url(name));
    let through = curl(env.tmp(), &["--proxy", &proxy.url(), &url]);
    assert_eq!(through.status, 200, "{}", through.out);
    assert_eq!(through.body, b"<config />\r\n");
    let log = proxy.log();
    assert!(
        log.contains(&format!(
            "CONNECT 127.0.0.1:{} HTTP/1.1 -> 200",
            nginx.port()
        )),
        "{log}"
    );
    assert!(proxy.url().ends_with(&format!(":{}", proxy.port())));
}
