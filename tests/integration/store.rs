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

#[test]
fn ownership_and_modes_of_the_store_are_repaired_after_every_run() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = TestEnv::local("ownership_and_modes_of_the_store_are_repaired_after_every_run");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let store = env.store();
    let files: Vec<String> = env
        .store_tree()
        .files()
        .iter()
        .map(|f| f.to_string())
        .collect();
    let (open, foreign, setuid) = (
        store.join(&files[0]),
        store.join(&files[1]),
        store.join(&files[2]),
    );
    let folder = open.parent().unwrap().to_path_buf();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&setuid, fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o777)).unwrap();

    env.sync().assert_code(Code::Success);
    let meta = |p: &std::path::Path| fs::symlink_metadata(p).unwrap();
    assert_eq!(meta(&open).mode() & 0o7777, 0o644);
    assert_eq!((meta(&foreign).uid(), meta(&foreign).gid()), (0, 0));
    assert_eq!(meta(&setuid).mode() & 0o7777, 0o755);
    assert_eq!(meta(&folder).mode() & 0o7777, 0o755);
}

#[test]
fn a_failed_repair_exits_103_with_the_sync_applied() {
    let env = TestEnv::local("a_failed_repair_exits_103_with_the_sync_applied");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let stuck = env.store().join("config.xml");
    Command::new("chmod")
        .arg("666")
        .arg(&stuck)
        .run()
        .assert_success();
    // An immutable file refuses even root's chmod.
    Command::new("chattr")
        .arg("+i")
        .arg(&stuck)
        .run()
        .assert_success();
    env.repo()
        .write("hosts.xml", "<hosts changed=\"1\" />")
        .publish();

    let out = env.sync();
    Command::new("chattr")
        .arg("-i")
        .arg(&stuck)
        .run()
        .assert_success();
    let message = env.assert_failed(&out, Code::AclRepair);
    assert!(message.contains("config.xml"), "{message}");
    env.assert_store_mirrors_repo();
}
