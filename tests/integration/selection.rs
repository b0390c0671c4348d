//! `packages = auto`: the folders this host needs come from the repository's
//! package definitions and the host's WPKG log; the rest of `packages/` is
//! deleted locally, except what a malformed definition might need.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::{TestEnv, Via, noise};

const SEVEN_ZIP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<packages:packages xmlns:packages="http://www.wpkg.org/packages"
    xmlns:wpkg="http://www.wpkg.org/wpkg">
  <!-- 7-Zip, installed from the share -->
  <package id='7zip' name='7-Zip' revision='2301' priority='50'>
    <check type="uninstall" condition="exists" path="7-Zip 23.01 (x64 edition)" />
    <install cmd='msiexec /qn /i "%SOFTWARE%\7zip\7z2301-x64.msi"' />
    <remove cmd='msiexec /qn /x "%Software%/7zip/7z2301-x64.msi"' />
  </package>
</packages:packages>
"#;

const FIREFOX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<packages>
  <package
      id="firefox"
      name="Mozilla Firefox"
      revision="%version%">
    <variable name="version" value="128.0" />
    <variable name="FFDIR" value="%SOFTWARE%\Mozilla Firefox" />
    <install cmd='"%FFDIR%\Firefox Setup %version%.exe" -ms' />
    <depends package-id="vcredist" />
  </package>
  <package id="vcredist" name="VC runtime">
    <install cmd="%SOFTWARE%\shared\vc_redist.x64.exe /quiet" />
  </package>
</packages>
"#;

const UNUSED: &str = r#"<packages><package id="unused" name="Unused">
  <install cmd="%SOFTWARE%\unused\setup.exe /S" />
  <install cmd="%SOFTWARE%\shared\also-here.cmd" />
</package></packages>
"#;

/// A repository with three package files and their folders, synced once with
/// `packages = all`, so every folder is in the store.
fn repository(name: &str, via: Via) -> TestEnv {
    let env = TestEnv::new(name, via);
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/7zip.xml", SEVEN_ZIP)
        .write("packages/firefox.xml", FIREFOX)
        .write("packages/unused.xml", UNUSED)
        .write("packages/7zip/7z2301-x64.msi", noise(61, 70_000))
        .write(
            "packages/Mozilla Firefox/Firefox Setup 128.0.exe",
            noise(62, 3_000),
        )
        .write("packages/shared/vc_redist.x64.exe", noise(63, 2_000))
        .write("packages/unused/setup.exe", noise(64, 2_000))
        .publish();
    env.sync().assert_code(Code::Success);
    env
}

/// A WPKG log as WPKG writes it: UTF-16 LE with a BOM and CRLF.
fn wpkg_log(env: &TestEnv, lines: &[&str]) {
    let text: String = lines
        .iter()
        .map(|l| format!("2024-01-15 08:12:01, DEBUG   : {l}\r\n"))
        .collect();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    fs::write(env.tmp().join("wpkg.log"), bytes).unwrap();
}

fn auto(env: &TestEnv) {
    env.write_ini(&env.ini().set("sync", "packages", "auto"));
}

fn local_log(env: &TestEnv) -> String {
    fs::read_to_string(env.state().join("wpkgsync.log")).unwrap()
}

#[test]
fn auto_mirrors_the_folders_of_the_packages_the_log_names() {
    let env = repository(
        "auto_mirrors_the_folders_of_the_packages_the_log_names",
        Via::Sftp,
    );
    wpkg_log(
        &env,
        &[
            "Adding package with ID '7zip' to profile packages.",
            "Adding package with ID 'Firefox' to profile packages.",
            "Adding package with ID 'ghost' to profile packages.",
        ],
    );
    auto(&env);

    env.sync().assert_code(Code::Success);
    let store = env.store();
    assert!(store.join("packages/7zip/7z2301-x64.msi").exists());
    assert!(
        store
            .join("packages/Mozilla Firefox/Firefox Setup 128.0.exe")
            .exists()
    );
    assert!(
        store.join("packages/shared/vc_redist.x64.exe").exists(),
        "dependency's folder"
    );
    assert!(
        !store.join("packages/unused").exists(),
        "unneeded folder kept"
    );
    assert!(
        store.join("packages/unused.xml").exists(),
        "package files are always mirrored"
    );
    let log = local_log(&env);
    assert!(log.contains("no package file defines: ghost"), "{log}");
}

#[test]
fn auto_without_a_wpkg_log_behaves_like_setup() {
    let env = repository("auto_without_a_wpkg_log_behaves_like_setup", Via::Local);
    fs::remove_file(env.tmp().join("wpkg.log")).unwrap();
    auto(&env);
    env.repo()
        .write("packages/7zip/readme.txt", "new")
        .publish();

    env.sync().assert_code(Code::Success);
    assert!(
        env.store().join("packages/unused/setup.exe").exists(),
        "deleted without a log"
    );
    assert!(
        !env.store().join("packages/7zip/readme.txt").exists(),
        "fetched without a log"
    );
    assert!(
        local_log(&env).contains("no WPKG log at"),
        "{}",
        local_log(&env)
    );
}

#[test]
fn a_wpkg_log_that_names_no_package_deletes_nothing() {
    let env = repository(
        "a_wpkg_log_that_names_no_package_deletes_nothing",
        Via::Local,
    );
    wpkg_log(&env, &["Starting software synchronization"]);
    auto(&env);

    env.sync().assert_code(Code::Success);
    assert!(
        env.store().join("packages/unused/setup.exe").exists(),
        "deleted on an empty log"
    );
    assert!(
        local_log(&env).contains("names no package"),
        "{}",
        local_log(&env)
    );
}

#[test]
fn setup_switch_mirrors_only_the_top_level_and_package_files() {
    let env = TestEnv::local("setup_switch_mirrors_only_the_top_level_and_package_files");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/7zip.xml", SEVEN_ZIP)
        .write("packages/7zip/7z2301-x64.msi", noise(65, 1_000))
        .publish();
    env.sync_with(&["/setup"]).assert_code(Code::Success);
    assert!(env.store().join("config.xml").exists());
    assert!(env.store().join("packages/7zip.xml").exists());
    assert!(!env.store().join("packages/7zip").exists());
}

#[test]
fn a_malformed_package_file_keeps_the_folders_it_mentions() {
    let env = repository(
        "a_malformed_package_file_keeps_the_folders_it_mentions",
        Via::Local,
    );
    env.repo()
        .write("packages/unused.xml", UNUSED.replace("</packages>", ""))
        .publish();
    wpkg_log(
        &env,
        &["Adding package with ID '7zip' to profile packages."],
    );
    auto(&env);

    env.sync().assert_code(Code::Success);
    assert!(
        env.store().join("packages/unused/setup.exe").exists(),
        "a folder it names was deleted"
    );
    assert!(
        !env.store().join("packages/Mozilla Firefox").exists(),
        "an unneeded folder was kept"
    );
    let log = local_log(&env);
    assert!(
        log.contains("malformed package file, its folders are kept: packages/unused.xml"),
        "{log}"
    );
}

#[test]
fn dry_run_prints_the_selection() {
    let env = repository("dry_run_prints_the_selection", Via::Local);
    wpkg_log(
        &env,
        &["Adding referenced package '7-Zip' (7zip) for package 'tools' (tools)."],
    );
    auto(&env);
    let before = env.store_tree();

    let out = env.sync_with(&["/dry-run"]);
    out.assert_code(Code::Success);
    assert!(
        out.stdout.contains("package 7zip needs: 7zip"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("package folders not mirrored: Mozilla Firefox, shared, unused"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("delete packages/unused"),
        "{}",
        out.stdout
    );
    crate::support::tree::assert_unchanged(&before, &env.store_tree(), "the store");
}
