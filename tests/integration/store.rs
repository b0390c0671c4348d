//! The local store's guards: administrators only, one run at a time, and a
//! status that monitoring can read.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::{Command, TestEnv};

#[test]
fn a_run_without_administrator_rights_is_refused() {
    let env = TestEnv::local("a_run_without_administrator_rights_is_refused");
    env.repo().write_sample().publish();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_wpkgsync"))
        .arg("--config")
        .arg(env.ini_path())
        .run();
    out.assert_code(Code::NotAdministrator);
    assert!(out.stderr.contains("not running as administrator"), "{out}");
    assert!(!env.store().exists(), "the store was created");
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_at_once() {
    let env = TestEnv::local("a_second_run_while_one_holds_the_lock_exits_at_once");
    env.repo().write_sample().publish();
    fs::create_dir_all(env.state()).unwrap();
    let lock = fs::File::create(env.state().join("wpkgsync.lock")).unwrap();
    lock.try_lock().unwrap();

    let out = env.sync();
    env.assert_failed(&out, Code::AlreadyRunning);
    assert!(!env.store().exists(), "the store was touched");

    drop(lock);
    env.sync().assert_code(Code::Success);
}

#[test]
fn status_reports_the_last_result_and_staleness() {
    let env = TestEnv::local("status_reports_the_last_result_and_staleness");
    env.repo().write_sample().publish();
    env.write_ini(&env.ini());
    let status = |json: bool| {
        let mut command = env
            .command()
            .arg("status")
            .arg("--config")
            .arg(env.ini_path());
        if json {
            command = command.arg("--json");
        }
        env.run(command)
    };

    let never = status(false);
    never.assert_code(Code::Stale);
    assert!(
        never.stdout.contains("last success:         never"),
        "{never}"
    );

    env.sync().assert_code(Code::Success);
    let fresh = status(true);
    fresh.assert_code(Code::Success);
    let report: serde_json::Value = serde_json::from_str(&fresh.stdout).unwrap();
    assert_eq!(report["last_exit"], 0);
    assert_eq!(report["stale"], false);
    assert_eq!(report["consecutive_failures"], 0);
    assert_eq!(report["accepted_version"], env.repo().manifest().version);

    // A success long ago is stale.
    let path = env.state().join("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    state["last_success"] = serde_json::json!(1_000_000);
    fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let stale = status(false);
    stale.assert_code(Code::Stale);
    assert!(stale.stderr.contains("older than 14 days"), "{stale}");
}
