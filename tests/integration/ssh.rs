//! The SSH layer: the server's host key must be known (plain or hashed
//! known_hosts entries), the client authenticates with its ed25519 or RSA key,
//! and an unreachable server is told apart from a refusing one.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::sshd::free_port;
use crate::support::{Command, TestEnv};

#[test]
fn unknown_host_key_is_refused() {
    let env = TestEnv::sftp("unknown_host_key_is_refused");
    env.repo().write_sample().publish();
    env.write_known_hosts("");

    let out = env.sync();
    env.assert_failed(&out, Code::HostKey);
    assert!(env.store_tree().is_empty(), "files entered the store");
    let known_hosts = fs::read_to_string(env.known_hosts()).unwrap();
    assert_eq!(known_hosts, "", "a scheduled run recorded the unknown key");
}

#[test]
fn changed_host_key_is_refused() {
    let env = TestEnv::sftp("changed_host_key_is_refused");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();
    env.repo()
        .write("packages/7zip/7z.msi", crate::support::noise(70, 1_000))
        .publish();
    env.write_known_hosts(&env.sshd().wrong_known_hosts_line());

    let out = env.sync();
    env.assert_failed(&out, Code::HostKey);
    crate::support::tree::assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn revoked_host_key_is_refused_although_another_line_accepts_it() {
    // Russh's parser skips marker lines, so an
    // `@revoked` key was accepted by the ordinary line beside it.
    let env = TestEnv::sftp("revoked_host_key_is_refused_although_another_line_accepts_it");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();
    env.repo()
        .write("packages/7zip/7z.msi", crate::support::noise(71, 1_000))
        .publish();
    let accepted = env.sshd().known_hosts_line();
    let key = accepted.split_once(' ').expect("host and key").1;
    // Revoked under another host pattern: a stolen key is good for no host.
    env.write_known_hosts(&format!("{accepted}\n@revoked old.example.org {key}\n"));

    let out = env.sync();
    let line = env.assert_failed(&out, Code::HostKey);
    assert!(
        line.contains("revoked"),
        "the error line does not say why: {line}"
    );
    crate::support::tree::assert_unchanged(&before, &env.store_tree(), "the store");

    // Without the revocation the same file is accepted again.
    env.write_known_hosts(&accepted);
    env.sync().assert_code(Code::Success);
}

#[test]
fn hashed_known_hosts_entry_is_accepted() {
    let env = TestEnv::sftp("hashed_known_hosts_entry_is_accepted");
    env.repo().write_sample().publish();
    Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(env.known_hosts())
        .run()
        .assert_success();
    let hashed = fs::read_to_string(env.known_hosts()).unwrap();
    assert!(hashed.starts_with("|1|"), "ssh-keygen -H wrote {hashed:?}");
    assert!(
        !hashed.contains("127.0.0.1"),
        "the host name is still in clear"
    );

    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}

#[test]
fn rsa_client_key_is_accepted() {
    let env = TestEnv::sftp("rsa_client_key_is_accepted");
    env.repo().write_sample().publish();
    let identity = env.sshd().client_key("id_rsa");
    env.write_ini(
        &env.ini()
            .set("server", "identity", identity.to_str().unwrap()),
    );

    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}

#[test]
fn unauthorized_client_key_is_refused() {
    let env = TestEnv::sftp("unauthorized_client_key_is_refused");
    env.repo().write_sample().publish();
    let identity = env.sshd().client_key("stranger_ed25519");
    env.write_ini(
        &env.ini()
            .set("server", "identity", identity.to_str().unwrap()),
    );

    let out = env.sync();
    env.assert_failed(&out, Code::AuthRefused);
    assert!(env.store_tree().is_empty(), "files entered the store");
}

#[test]
fn closed_port_is_unreachable() {
    let env = TestEnv::sftp("closed_port_is_unreachable");
    env.repo().write_sample().publish();
    let port = free_port();
    env.write_ini(&env.ini().set("server", "port", port.to_string()));

    let out = env.sync();
    env.assert_failed(&out, Code::Unreachable);
    assert!(env.store_tree().is_empty(), "files entered the store");
}
