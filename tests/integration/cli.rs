//! The command line and the INI file: missing and invalid INI files, wrong
//! switches, and the Windows switch forms Task Scheduler and WPKG use.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::{TestEnv, noise};

#[test]
fn missing_ini_is_reported() {
    let env = TestEnv::local("missing_ini_is_reported");
    let absent = env.tmp().join("absent.ini");

    let out = env.run(env.command().arg("--config").arg(&absent));
    out.assert_code(Code::IniMissing);
    let line = out.error_line();
    assert!(
        line.contains("absent.ini"),
        "the error line names no file: {line}"
    );
    assert!(!env.store().exists(), "a store appeared");
}

#[test]
fn ini_without_remote_names_the_key() {
    let env = TestEnv::local("ini_without_remote_names_the_key");
    env.repo().write_sample().publish();
    env.write_ini(&env.ini().remove("server", "remote"));

    let out = env.sync();
    out.assert_code(Code::IniInvalid);
    let line = out.error_line();
    assert!(
        line.contains("remote"),
        "the error line names no key: {line}"
    );
    assert!(!env.store().exists(), "a store appeared");
}

#[test]
fn unknown_switch_is_a_usage_error() {
    let env = TestEnv::local("unknown_switch_is_a_usage_error");
    env.repo().write_sample().publish();

    let out = env.sync_with(&["--no-such-switch"]);
    out.assert_code(Code::Usage);
    assert!(!env.store().exists(), "a store appeared");
}

#[test]
fn windows_switch_forms_are_accepted() {
    let env = TestEnv::local("windows_switch_forms_are_accepted");
    let repo = env.repo();
    repo.write_sample().publish();
    env.write_ini(&env.ini());
    let ini = env.ini_path();
    let joined = format!("/config:{}", ini.display());

    // Each form runs a real sync: the repository changes between them.
    env.run(env.command().arg("/config").arg(&ini))
        .assert_code(Code::Success);
    env.assert_store_mirrors_repo();

    repo.write("packages/7zip/7z.msi", noise(80, 30_000))
        .publish();
    env.run(env.command().arg(&joined).arg("/FAST"))
        .assert_code(Code::Success);
    env.assert_store_mirrors_repo();

    repo.write("packages/7zip/7z.msi", noise(81, 30_000))
        .publish();
    env.run(env.command().arg("/fast").arg("/CONFIG").arg(&ini))
        .assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}

/// `text` with the value of each `key = value` line named in `values` replaced,
/// keeping the line's trailing comment.
fn with_values(text: &str, values: &[(&str, String)]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => {
                let comment = line.find(" ;").map(|i| &line[i..]).unwrap_or("");
                out.push_str(&format!("{key} = {value}{comment}"));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[test]
fn example_ini_is_accepted() {
    let env = TestEnv::local("example_ini_is_accepted");
    env.repo().write_sample().publish();
    let example = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/wpkgsync.ini"))
        .expect("read config/wpkgsync.ini");
    let path = |p: std::path::PathBuf| p.display().to_string();
    // Only what must point into the test changes; comments and the other keys,
    // with their %VAR% references, stay as shipped.
    let ini = with_values(
        &example,
        &[
            ("remote", path(env.repo().root().to_path_buf())),
            ("reports", path(env.tmp().join("reports"))),
            ("local", path(env.store())),
            ("state", path(env.state())),
            ("packages", "all".to_string()),
            ("wpkg_log", path(env.tmp().join("wpkg.log"))),
            (
                "publisher_key",
                path(crate::support::publisher().public.clone()),
            ),
        ],
    );
    assert!(
        ini.contains("; the local store"),
        "the comments were lost:\n{ini}"
    );
    fs::write(env.ini_path(), &ini).unwrap();

    let out = env.run(
        env.command()
            .arg("--config")
            .arg(env.ini_path())
            .env("ProgramData", env.tmp().join("ProgramData"))
            .env("SystemDrive", env.tmp().join("C"))
            .env("COMPUTERNAME", "TESTPC"),
    );
    out.assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}
