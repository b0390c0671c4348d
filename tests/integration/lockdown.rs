//! The server side as deployed: OpenSSH's own clients against the private sshd
//! prove that the template gives the account SFTP in a chroot and nothing else.
//! These tests check the harness and the template, not the binary.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::sshd::{REPORTS, SSHD, UPDATES, USER};
use crate::support::{Command, TestEnv};

/// `sftp` or `ssh` with the test's key and known_hosts, never asking anything.
fn openssh(env: &TestEnv, program: &str) -> Command {
    let sshd = env.sshd();
    let port_flag = if program == "sftp" { "-P" } else { "-p" };
    Command::new(program)
        .arg("-i")
        .arg(sshd.client_key("id_ed25519"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            env.known_hosts().display()
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-F", "/dev/null"])
        .args([port_flag, &sshd.port.to_string()])
}

/// Runs one `sftp -b` batch and says whether every command in it succeeded.
fn sftp_batch(env: &TestEnv, commands: &str) -> crate::support::Output {
    let batch = env.tmp().join("batch");
    fs::write(&batch, commands).expect("write the sftp batch");
    openssh(env, "sftp")
        .arg("-b")
        .arg(&batch)
        .arg(format!("{USER}@127.0.0.1"))
        .run()
}

#[test]
fn openssh_sftp_reads_the_repository_and_writes_only_reports() {
    let env = TestEnv::sftp("openssh_sftp_reads_the_repository_and_writes_only_reports");
    env.repo().write("a.txt", "published\n");
    let repo = format!("{UPDATES}/openssh_sftp_reads_the_repository_and_writes_only_reports");
    let got = env.tmp().join("got.txt");
    let log = env.tmp().join("wpkg.log");
    let report = format!("{REPORTS}/sftp-lockdown-{}.log", std::process::id());

    sftp_batch(
        &env,
        &format!(
            "get {repo}/a.txt {}\nput {} {report}\n",
            got.display(),
            log.display()
        ),
    )
    .assert_success();
    assert_eq!(fs::read_to_string(&got).unwrap(), "published\n");
    let uploaded = env.sshd().host_path(&report);
    let meta = fs::metadata(&uploaded).expect("the report arrived in the chroot");
    assert_ne!(meta.uid(), 0, "the report belongs to the account, not root");
    fs::remove_file(uploaded).unwrap();

    // Every write outside the reports folder is refused, one command at a time.
    for refused in [
        format!("put {} {repo}/new.txt", log.display()),
        format!("put {} {repo}/a.txt", log.display()),
        format!("rm {repo}/a.txt"),
        format!("rename {repo}/a.txt {repo}/b.txt"),
        format!("mkdir {repo}/sub"),
        format!("chmod 777 {repo}/a.txt"),
        format!("put {} /opt/x", log.display()),
        format!("put {} /x", log.display()),
    ] {
        let out = sftp_batch(&env, &format!("{refused}\n"));
        assert_ne!(out.status, Some(0), "the server allowed `{refused}`\n{out}");
    }
    let names: Vec<String> = fs::read_dir(env.repo().root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.txt"]);
    assert_eq!(
        fs::read_to_string(env.repo().path("a.txt")).unwrap(),
        "published\n"
    );
}

#[test]
fn account_gets_no_shell_no_tty_and_no_forwarding() {
    let env = TestEnv::sftp("account_gets_no_shell_no_tty_and_no_forwarding");
    let target = format!("{USER}@127.0.0.1");

    let shell = openssh(&env, "ssh")
        .arg(&target)
        .args(["echo", "shell-ran"])
        .run();
    assert!(
        !shell.stdout.contains("shell-ran"),
        "a command ran\n{shell}"
    );
    assert_ne!(shell.status, Some(0), "{shell}");

    let tty = openssh(&env, "ssh").arg("-tt").arg(&target).run();
    assert!(
        tty.stderr.contains("PTY allocation request failed"),
        "{tty}"
    );

    let forward = openssh(&env, "ssh")
        .arg("-W")
        .arg(format!("127.0.0.1:{}", env.sshd().port))
        .arg(&target)
        .run();
    assert_ne!(forward.status, Some(0), "{forward}");
    assert!(
        forward.stderr.contains("administratively prohibited"),
        "{forward}"
    );
}

#[test]
fn effective_config_locks_the_account_down() {
    let env = TestEnv::sftp("effective_config_locks_the_account_down");
    let out = Command::new(SSHD)
        .arg("-T")
        .arg("-f")
        .arg(env.sshd().config_path())
        .arg("-C")
        .arg(format!("user={USER},host=localhost,addr=127.0.0.1"))
        .run();
    out.assert_success();
    let settings: Vec<&str> = out.stdout.lines().collect();
    let chroot = format!("chrootdirectory {}", env.sshd().host_path("/").display());
    for expected in [
        chroot.trim_end_matches('/'),
        "forcecommand internal-sftp",
        "subsystem sftp internal-sftp",
        "allowtcpforwarding no",
        "x11forwarding no",
        "permittty no",
        "allowagentforwarding no",
        "permittunnel no",
        "disableforwarding yes",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "pubkeyauthentication yes",
        "usepam no",
        "permitrootlogin no",
        "strictmodes yes",
        &format!("allowusers {USER}"),
        "listenaddress 127.0.0.1:",
    ] {
        assert!(
            settings.iter().any(|line| line.starts_with(expected)),
            "sshd -T lacks `{expected}`\n{out}"
        );
    }
}

#[test]
fn the_lines_setup_server_prints_configure_a_working_client() {
    let env = TestEnv::sftp("the_lines_setup_server_prints_configure_a_working_client");
    env.repo().write_sample().publish();
    let printed = env.sshd().setup_output();
    let known_hosts: Vec<&str> = printed
        .lines()
        .filter(|line| line.starts_with("[127.0.0.1]:"))
        .collect();
    assert_eq!(known_hosts.len(), 1, "{printed}");
    env.write_known_hosts(known_hosts[0]);
    let value = |key: &str| {
        printed
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no `{key} = ` line in:\n{printed}"))
            .to_string()
    };
    assert_eq!(value("path"), UPDATES);
    assert_eq!(value("reports"), REPORTS);
    // The printed server lines, with the repository of this test below the
    // printed path.
    let ini = env
        .ini()
        .set("server", "remote", value("remote"))
        .set("server", "port", value("port"))
        .set(
            "server",
            "path",
            format!(
                "{}/the_lines_setup_server_prints_configure_a_working_client",
                value("path")
            ),
        );
    env.write_ini(&ini);
    env.sync().assert_code(wpkgsync::exit::Code::Success);
    env.assert_store_mirrors_repo();
}

#[test]
fn setup_server_refuses_bad_options_and_creates_nothing() {
    let env = TestEnv::local("setup_server_refuses_bad_options_and_creates_nothing");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-server");
    let etc = env.tmp().join("etc");
    let not_a_key = env.tmp().join("not-a-key.pub");
    fs::write(&not_a_key, "hello\n").unwrap();
    // A chroot below a folder others may write: sshd would refuse it.
    let open = env.tmp().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let good_chroot = env.tmp().join("chroot");
    let run = |chroot: &std::path::Path, extra: &[&str], why: &str| {
        let out = Command::new(script)
            .args(["--no-service", "--user", "wpkgsync-refused"])
            .arg("--chroot")
            .arg(chroot)
            .arg("--etc")
            .arg(&etc)
            .args(extra)
            .run();
        assert_ne!(out.status, Some(0), "accepted {extra:?}\n{out}");
        assert!(out.stderr.contains(why), "expected {why:?}:\n{out}");
    };
    run(
        &good_chroot,
        &["--port", "70000"],
        "--port must be 1..65535",
    );
    run(
        &good_chroot,
        &["--client-key", not_a_key.to_str().unwrap()],
        "not an OpenSSH public key",
    );
    run(&open.join("chroot"), &[], "must be writable by root only");
    run(std::path::Path::new("relative"), &[], "must be absolute");
    assert!(!etc.exists() && !good_chroot.exists() && !open.join("chroot").exists());
    let account = Command::new("id").arg("wpkgsync-refused").run();
    assert_ne!(account.status, Some(0), "the account was created");
}
