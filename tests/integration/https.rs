//! HTTPS sources against a real nginx with a certificate made for this run,
//! and mirrors that misbehave (a small Python server): first sync, delta,
//! the no-op of one conditional request, failover in the middle of a file,
//! tampered and stale mirrors, certificates, tokens, proxies and reports.

use std::fs;

use crate::support::env::Ini;
use crate::support::mirror::{BadMirror, ConnectProxy};
use crate::support::nginx::{BEARER_TOKEN, Nginx};
use crate::support::pki::TestPki;
use crate::support::tree::assert_unchanged;
use crate::support::{TestEnv, noise};
use wpkgsync::exit::Code;

/// A file large enough to take many range requests.
const LARGE: usize = 1_500_000;

/// A test whose repository nginx serves (the same folder the sshd serves).
fn served(name: &str) -> TestEnv {
    let env = TestEnv::sftp(name);
    env.repo()
        .write_sample()
        .write("packages/7zip/big.bin", noise(7, LARGE));
    env.repo().publish();
    env
}

/// The INI of `env` with `remote` an HTTPS URL trusted through the test CA.
fn over_https(env: &TestEnv, remote: &str) -> Ini {
    env.ini()
        .set("server", "remote", remote)
        .set("server", "reports", "none")
        .set(
            "server",
            "ca_file",
            TestPki::shared().ca_pem().to_str().expect("utf-8 path"),
        )
}

/// The local log of `env`'s runs.
fn local_log(env: &TestEnv) -> String {
    fs::read_to_string(env.state().join("wpkgsync.log")).unwrap_or_default()
}

/// nginx's log lines for `env`'s repository.
fn nginx_lines(name: &str) -> Vec<String> {
    Nginx::shared().requests_matching(&[&format!("/{name}/")])
}

#[test]
fn first_sync_delta_and_a_no_op_of_one_conditional_request() {
    let name = "https_first_sync_delta_and_no_op";
    let env = served(name);
    let nginx = Nginx::shared();
    env.write_ini(&over_https(&env, &nginx.url(name)));
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let first = nginx_lines(name);
    assert!(
        first.iter().any(|l| l.contains("HTTP/2.0")),
        "nginx offers HTTP/2 and the client speaks it:\n{}",
        first.join("\n")
    );

    // A small change to the large file travels as a delta: ranges of it.
    let mut changed = noise(7, LARGE);
    changed[700_000..700_100].fill(0xAB);
    env.repo().write("packages/7zip/big.bin", &changed).publish();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let delta: Vec<String> = nginx_lines(name)
        .into_iter()
        .skip(first.len())
        .filter(|l| l.contains("big.bin\"") || l.contains("big.bin HTTP"))
        .collect();
    let fetched: u64 = delta
        .iter()
        .filter_map(|l| l.split_whitespace().nth(5)?.parse::<u64>().ok())
        .sum();
    assert!(
        !delta.is_empty() && fetched < (LARGE / 4) as u64,
        "the delta fetched {fetched} bytes of big.bin:\n{}",
        delta.join("\n")
    );

    // Nothing changed: one request, answered 304.
    let before = nginx_lines(name).len();
    env.sync().assert_code(Code::Success);
    let no_op: Vec<String> = nginx_lines(name).into_iter().skip(before).collect();
    assert_eq!(no_op.len(), 1, "a no-op costs one request:\n{}", no_op.join("\n"));
    assert!(
        no_op[0].contains("timestamp.json") && no_op[0].contains(" 304 "),
        "{}",
        no_op[0]
    );
}

#[test]
fn a_mirror_cut_mid_file_hands_the_rest_of_the_file_to_the_next_source() {
    let name = "https_mirror_cut_mid_file";
    let env = served(name);
    let mirror = BadMirror::start(env.repo().root(), "cut", &["--after", "600000"]);
    let nginx = Nginx::shared();
    env.write_ini(
        &over_https(&env, &nginx.url(name)).set("server", "mirrors", mirror.url()),
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(
        local_log(&env).contains(&format!("source {} dropped for this run", mirror.url())),
        "{}",
        local_log(&env)
    );
    // The remote continued where the mirror stopped: what the mirror served
    // of big.bin is not asked for again.
    let from_start = nginx_lines(name)
        .into_iter()
        .filter(|l| l.contains("big.bin") && l.contains("bytes=0-"))
        .count();
    assert_eq!(from_start, 0, "big.bin was fetched again from its start");
}

#[test]
fn a_tampering_mirror_is_dropped_and_the_run_ends_well() {
    let name = "https_tampering_mirror";
    let env = served(name);
    let mirror = BadMirror::start(env.repo().root(), "tamper", &[]);
    let nginx = Nginx::shared();
    env.write_ini(
        &over_https(&env, &nginx.url(name)).set("server", "mirrors", mirror.url()),
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let log = local_log(&env);
    assert!(log.contains("it served wrong bytes for packages/"), "{log}");
}

#[test]
fn mirrors_that_error_ignore_ranges_or_lie_about_them_cost_nothing_but_time() {
    for mode in ["error500", "full200", "wrong_range"] {
        let name = format!("https_mirror_{mode}");
        let env = served(&name);
        let mirror = BadMirror::start(env.repo().root(), mode, &[]);
        let nginx = Nginx::shared();
        env.write_ini(
            &over_https(&env, &nginx.url(&name)).set("server", "mirrors", mirror.url()),
        );
        env.sync().assert_code(Code::Success);
        env.assert_store_mirrors_repo();
        let log = local_log(&env);
        match mode {
            // The whole file instead of a range is usable, and said so.
            "full200" => assert!(log.contains("answers range requests with whole files"), "{log}"),
            _ => assert!(log.contains("dropped for this run"), "{mode}: {log}"),
        }
    }
}

#[test]
fn a_stale_mirror_cannot_hold_the_client_back_and_is_named_behind() {
    let name = "https_stale_mirror";
    let env = served(name);
    // The mirror keeps a copy of this version; the remote moves on.
    let stale = env.tmp().join("stale");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(env.repo().root())
        .arg(&stale)
        .status()
        .expect("cp");
    assert!(copied.success());
    env.repo()
        .write("packages/7zip/new.txt", b"version two")
        .publish();
    let mirror = BadMirror::start(&stale, "ok", &[]);
    let nginx = Nginx::shared();
    env.write_ini(
        &over_https(&env, &nginx.url(name)).set("server", "mirrors", mirror.url()),
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let log = local_log(&env);
    assert!(
        log.contains(&format!("source {} dropped for this run: it is behind", mirror.url())),
        "{log}"
    );
    let status = env.run(
        env.command()
            .arg("status")
            .arg("--config")
            .arg(env.ini_path()),
    );
    assert!(
        status.stdout.contains("sources behind") && status.stdout.contains(&mirror.url()),
        "{}",
        status.stdout
    );
}

#[test]
fn a_certificate_that_does_not_verify_ends_the_run_203_naming_the_host() {
    let name = "https_wrong_certificate";
    let env = served(name);
    let nginx = Nginx::shared();
    env.write_ini(&over_https(&env, &nginx.wrong_cert_url(name)));
    let before = env.store_tree();
    let out = env.sync();
    let line = env.assert_failed(&out, Code::HostKey);
    assert!(line.contains("127.0.0.1") && line.contains("certificate"), "{line}");
    assert_unchanged(&before, &env.store_tree());
    // Without the CA file the system's roots apply, which do not know the test CA.
    env.write_ini(&over_https(&env, &nginx.url(name)).remove("server", "ca_file"));
    env.assert_failed(&env.sync(), Code::HostKey);
}

#[test]
fn plain_http_needs_the_ini_to_say_so_and_is_logged_as_not_private() {
    let name = "https_plain_http";
    let env = served(name);
    let nginx = Nginx::shared();
    env.write_ini(&over_https(&env, &nginx.plain_url(name)));
    let line = env.assert_failed(&env.sync(), Code::IniInvalid);
    assert!(line.contains("allow_http"), "{line}");
    env.write_ini(&over_https(&env, &nginx.plain_url(name)).set("server", "allow_http", "yes"));
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(local_log(&env).contains("not private"), "{}", local_log(&env));
}

#[test]
fn a_proxy_from_the_ini_or_the_environment_carries_the_connection() {
    let name = "https_proxy";
    let env = served(name);
    let nginx = Nginx::shared();
    let proxy = ConnectProxy::start();
    env.write_ini(&over_https(&env, &nginx.url(name)).set("server", "proxy", proxy.url()));
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let target = format!("CONNECT 127.0.0.1:{}", nginx.port());
    assert!(proxy.log().contains(&target), "{}", proxy.log());

    let other = ConnectProxy::start();
    env.repo().write("packages/7zip/via-env.txt", b"x").publish();
    env.write_ini(&over_https(&env, &nginx.url(name)));
    env.run(
        env.command()
            .arg("--config")
            .arg(env.ini_path())
            .env("HTTPS_PROXY", other.url())
            .env("NO_PROXY", ""),
    )
    .assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(other.log().contains(&target), "{}", other.log());
}

#[test]
fn tokens_and_client_certificates_open_servers_that_ask_for_them() {
    let name = "https_credentials";
    let env = served(name);
    let nginx = Nginx::shared();
    env.write_ini(&over_https(&env, &nginx.bearer_url(name)));
    env.assert_failed(&env.sync(), Code::AuthRefused);
    let token = env.tmp().join("token");
    fs::write(&token, format!("{BEARER_TOKEN}\n")).unwrap();
    env.write_ini(
        &over_https(&env, &nginx.bearer_url(name))
            .set("server", "token_file", token.to_str().unwrap()),
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();

    let env = served("https_client_certificate");
    let name = "https_client_certificate";
    env.write_ini(&over_https(&env, &nginx.mtls_url(name)));
    assert!(env.sync().code() != Some(Code::Success));
    let identity = TestPki::shared().client_identity_pem();
    env.write_ini(
        &over_https(&env, &nginx.mtls_url(name))
            .set("server", "client_certificate", identity.to_str().unwrap()),
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}

#[test]
fn reports_go_to_a_url_that_takes_put() {
    let name = "https_reports";
    let env = served(name);
    let nginx = Nginx::shared();
    env.write_ini(
        &over_https(&env, &nginx.url(name)).set("server", "reports", nginx.reports_url(name)),
    );
    env.sync().assert_code(Code::Success);
    env.sync().assert_code(Code::Success);
    let reports = env.reports();
    let host = wpkgsync::report::host_label(&wpkgsync::platform::computer_name());
    let wpkg_log = fs::read_to_string(reports.join(format!("wpkg-{host}.log"))).unwrap();
    assert!(wpkg_log.contains("Starting software synchronization"));
    let runs = fs::read_to_string(reports.join(format!("{host}.wpkgsync.log"))).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
    assert!(runs.lines().all(|l| l.contains(" exit=0 ")), "{runs}");
}
