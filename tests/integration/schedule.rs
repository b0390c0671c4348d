//! `wpkgsync schedule`: the systemd units that run the sync every two hours.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::TestEnv;

#[test]
fn schedule_show_prints_the_service_and_timer_for_this_binary() {
    let env = TestEnv::local("schedule_show_prints_the_service_and_timer_for_this_binary");
    let out = env.run(
        env.command()
            .args(["schedule", "show", "--config", "site.ini"]),
    );
    out.assert_code(Code::Success);
    let exe = env!("CARGO_BIN_EXE_wpkgsync");
    // The relative INI is made absolute: the timer runs in another folder.
    let ini = env.cwd().join("site.ini");
    assert!(
        out.stdout.contains(&format!(
            "ExecStart={exe} --config {} --quiet\n",
            ini.display()
        )),
        "{out}"
    );
    assert!(out.stdout.contains("OnCalendar=0/2:00\n"), "{out}");
    assert!(
        out.stdout
            .contains("# /etc/systemd/system/wpkgsync.timer\n"),
        "{out}"
    );
}

#[test]
fn schedule_install_and_remove_write_and_delete_the_units() {
    let env = TestEnv::local("schedule_install_and_remove_write_and_delete_the_units");
    let units = env.tmp().join("units");
    fs::create_dir(&units).unwrap();
    let show = env.run(env.command().args(["schedule", "show"]));
    let install = env.run(
        env.command()
            .args(["schedule", "install", "--unit-dir"])
            .arg(&units),
    );
    install.assert_code(Code::Success);
    assert!(install.stdout.contains("not enabled"), "{install}");
    let service = fs::read_to_string(units.join("wpkgsync.service")).unwrap();
    let timer = fs::read_to_string(units.join("wpkgsync.timer")).unwrap();
    assert!(show.stdout.contains(&service), "{show}");
    assert!(show.stdout.contains(&timer), "{show}");

    let remove = env.run(
        env.command()
            .args(["schedule", "remove", "--unit-dir"])
            .arg(&units),
    );
    remove.assert_code(Code::Success);
    assert!(fs::read_dir(&units).unwrap().next().is_none());
}

#[test]
fn schedule_install_into_a_missing_folder_fails_naming_it() {
    let env = TestEnv::local("schedule_install_into_a_missing_folder_fails_naming_it");
    let missing = env.tmp().join("no-such-folder");
    let out = env.run(
        env.command()
            .args(["schedule", "install", "--unit-dir"])
            .arg(&missing),
    );
    out.assert_code(Code::LocalStore);
    assert!(out.error_line().contains("no-such-folder"), "{out}");
}

#[test]
fn schedule_install_makes_the_folders_the_administrators_or_refuses() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = TestEnv::local("schedule_install_makes_the_folders_the_administrators");
    env.write_ini(&env.ini());
    let units = env.tmp().join("units");
    fs::create_dir(&units).unwrap();
    let install = || {
        env.run(
            env.command()
                .args(["schedule", "install", "--unit-dir"])
                .arg(&units)
                .arg("--config")
                .arg(env.ini_path()),
        )
    };
    install().assert_code(Code::Success);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&env.state()), 0o700);
    assert_eq!(mode(&env.store()), 0o755);

    // A store another account created first is refused, and nothing installed.
    fs::remove_file(units.join("wpkgsync.timer")).unwrap();
    fs::set_permissions(env.store(), fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(env.store(), Some(65534), None).unwrap();
    let out = install();
    out.assert_code(Code::LocalStore);
    assert!(out.stderr.contains("refusing to take over"), "{out}");
    assert!(out.stderr.contains("uid 65534"), "{out}");
    assert!(!units.join("wpkgsync.timer").exists());
    assert_eq!(fs::metadata(env.store()).unwrap().uid(), 65534);
}
