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
    // Below the root: a root that is not the administrators' is refused.
    let below: Vec<&String> = files.iter().filter(|f| f.contains('/')).collect();
    let (open, foreign, setuid) = (
        store.join(below[0]),
        store.join(below[1]),
        store.join(below[2]),
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

#[test]
fn a_store_root_that_is_a_link_or_open_to_others_is_refused_and_left_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::local("a_store_root_that_is_a_link_or_open_to_others_is_refused");
    env.repo().write_sample().publish();
    // A root-only folder elsewhere, and the store path a link to it.
    let victim = env.tmp().join("root-only");
    fs::create_dir(&victim).unwrap();
    fs::write(victim.join("keep.txt"), "precious").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&victim, env.store()).unwrap();
    let out = env.sync();
    let message = env.assert_failed(&out, Code::LocalStore);
    assert!(message.contains("link"), "{message}");
    let left: Vec<_> = fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["keep.txt"], "the sync wrote through the link");

    fs::remove_file(env.store()).unwrap();
    fs::create_dir(env.store()).unwrap();
    fs::set_permissions(env.store(), fs::Permissions::from_mode(0o777)).unwrap();
    let message = env.assert_failed(&env.sync(), Code::LocalStore);
    assert!(message.contains("writable by every account"), "{message}");
    assert_eq!(fs::read_dir(env.store()).unwrap().count(), 0);
}

#[test]
fn a_file_replaced_with_the_same_size_and_mtime_is_noticed() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::local("a_file_replaced_with_the_same_size_and_mtime_is_noticed");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let target = env.store().join("config.xml");
    let good = fs::read(&target).unwrap();
    let mtime = fs::metadata(&target).unwrap().modified().unwrap();
    // Someone puts other bytes of the same length there and sets the mtime
    // back, as root could be tricked into doing, and then as a user would.
    for owner in [0, 65534] {
        let forged = vec![b'x'; good.len()];
        let replacement = env.store().join("forged");
        fs::write(&replacement, &forged).unwrap();
        fs::File::options()
            .write(true)
            .open(&replacement)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::os::unix::fs::chown(&replacement, Some(owner), None).unwrap();
        fs::rename(&replacement, &target).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().len(), good.len() as u64);
        env.sync().assert_code(Code::Success);
        assert_eq!(
            fs::read(&target).unwrap(),
            good,
            "owner {owner}: forged content kept"
        );
        assert_eq!(fs::metadata(&target).unwrap().uid(), 0);
    }
}

#[test]
fn foreign_trust_anchors_and_state_files_are_refused_with_102() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::local("foreign_trust_anchors_and_state_files_are_refused_with_102");
    env.repo().write_sample().publish();
    // A key of this test's own, so changing its mode disturbs no other test.
    let key = env.tmp().join("publisher.pem");
    fs::copy(&crate::support::repo::publisher().public, &key).unwrap();
    env.write_ini(
        &env.ini()
            .set("trust", "publisher_key", key.to_str().unwrap()),
    );
    env.sync().assert_code(Code::Success);
    let state = env.state();
    assert_eq!(
        std::os::unix::fs::MetadataExt::mode(&fs::metadata(&state).unwrap()) & 0o777,
        0o700,
        "the state folder is not private"
    );
    let before = env.store_tree();
    for (file, key) in [
        (env.ini_path(), "INI"),
        (key.clone(), "trust.publisher_key"),
        (state.join("state.json"), "sync.state"),
    ] {
        let mode = fs::metadata(&file).unwrap().permissions().mode();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let out = env.sync();
        fs::set_permissions(&file, fs::Permissions::from_mode(mode)).unwrap();
        // Refused before the INI may name the log: stderr carries the line.
        out.assert_code(Code::IniInvalid);
        assert!(out.stderr.contains(key), "{out}");
        assert!(out.stderr.contains(&*file.to_string_lossy()), "{out}");
    }
    // A file planted in the state folder by another account.
    let planted = state.join("store-index.json");
    fs::write(&planted, "{}").unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), None).unwrap();
    let out = env.sync();
    out.assert_code(Code::IniInvalid);
    assert!(out.stderr.contains("store-index.json"), "{out}");
    crate::support::tree::assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn a_link_planted_at_a_temporary_name_is_not_written_through() {
    let env = TestEnv::local("a_link_planted_at_a_temporary_name_is_not_written_through");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let victim = env.tmp().join("root-only.conf");
    fs::write(&victim, "precious").unwrap();
    // The temporary name an older release used, and a guess at a new one.
    for name in [
        ".wpkgsync-tmp-config.xml",
        ".wpkgsync-tmp-0000000000000000-config.xml",
    ] {
        std::os::unix::fs::symlink(&victim, env.store().join(name)).unwrap();
    }
    env.repo()
        .write("config.xml", "<config changed=\"yes\"/>")
        .publish();
    env.sync().assert_code(Code::Success);
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    env.assert_store_mirrors_repo();
}

#[test]
fn a_store_restored_from_a_copy_is_hashed_again_not_downloaded() {
    let env = TestEnv::local("a_store_restored_from_a_copy_is_hashed_again_not_downloaded");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    // Every file a new inode with its old size and mtime, as a restore makes.
    let copy = env.tmp().join("restored");
    Command::new("cp")
        .arg("-a")
        .arg(env.store())
        .arg(&copy)
        .run()
        .assert_success();
    fs::remove_dir_all(env.store()).unwrap();
    fs::rename(&copy, env.store()).unwrap();

    env.sync().assert_code(Code::Success);
    let log = fs::read_to_string(env.state().join("wpkgsync.log")).unwrap();
    let last = log.lines().rfind(|l| l.contains(": fetched ")).unwrap();
    assert!(last.contains("fetched 0 files (0 bytes)"), "{last}");
    assert!(
        log.contains("hashed again hold their manifest content"),
        "{log}"
    );
    env.assert_store_mirrors_repo();
}
