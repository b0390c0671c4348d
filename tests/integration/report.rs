//! Report upload: the WPKG log and one line per run land in the reports
//! folder after every run that reached the server, failed ones too; a server
//! that refuses the upload gives 106 with the sync applied.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use wpkgsync::exit::Code;
use wpkgsync::report::host_label;

use crate::support::sshd::UPDATES;
use crate::support::{Command, TestEnv, Via};

fn host() -> String {
    host_label(&wpkgsync::platform::computer_name())
}

fn uploaded_log(reports: &Path) -> String {
    let path = reports.join(format!("wpkg-{}.log", host()));
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("no uploaded log {path:?}: {e}"))
}

fn run_lines(reports: &Path) -> Vec<String> {
    let path = reports.join(format!("{}.wpkgsync.log", host()));
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no run log {path:?}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// The names in the reports folder that are not the two reports.
fn strays(reports: &Path) -> Vec<String> {
    let expected = [
        format!("wpkg-{}.log", host()),
        format!("{}.wpkgsync.log", host()),
    ];
    fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !expected.contains(name))
        .collect()
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(' ')
        .find_map(|part| part.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn uploads_the_log_and_appends_a_line_per_run(via: Via, name: &str) {
    let env = TestEnv::new(name, via);
    env.repo().write_sample().publish();
    let wpkg_log = "2024-01-01 08:00:00, STATUS  : done\r\n".repeat(500);
    fs::write(env.tmp().join("wpkg.log"), &wpkg_log).unwrap();

    env.sync().assert_code(Code::Success);
    let version = env.repo().manifest().version;
    assert_eq!(uploaded_log(&env.reports()), wpkg_log);
    let lines = run_lines(&env.reports());
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("20"), "ISO 8601 time first: {line}");
    assert!(line.split(' ').next().unwrap().ends_with('Z'), "{line}");
    assert_eq!(field(line, "exit"), "0");
    assert_eq!(field(line, "version"), version.to_string());
    let files = env.repo().files().len();
    assert_eq!(field(line, "fetched"), files.to_string());
    assert_eq!(field(line, "deleted"), "0");
    let bytes: u64 = field(line, "bytes").parse().unwrap();
    assert!(bytes >= wpkg_log.len() as u64, "{line}");
    assert!(field(line, "duration").ends_with('s'), "{line}");

    // A second run replaces the log and appends a line.
    fs::write(env.tmp().join("wpkg.log"), "second run\r\n").unwrap();
    env.sync().assert_code(Code::Success);
    assert_eq!(uploaded_log(&env.reports()), "second run\r\n");
    let lines = run_lines(&env.reports());
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(field(&lines[1], "fetched"), "0");
    assert!(
        strays(&env.reports()).is_empty(),
        "{:?}",
        strays(&env.reports())
    );
}

#[test]
fn sftp_uploads_the_log_and_appends_a_line_per_run() {
    uploads_the_log_and_appends_a_line_per_run(
        Via::Sftp,
        "sftp_uploads_the_log_and_appends_a_line_per_run",
    );
}

#[test]
fn a_folder_source_reports_to_its_reports_folder() {
    uploads_the_log_and_appends_a_line_per_run(
        Via::Local,
        "a_folder_source_reports_to_its_reports_folder",
    );
}

#[test]
fn the_log_is_uploaded_after_a_failed_sync() {
    let env = TestEnv::sftp("the_log_is_uploaded_after_a_failed_sync");
    env.repo().write_sample().publish();
    // A manifest that no longer matches its signature: 204, nothing applied.
    let manifest = env.repo().meta().join("manifest.json");
    let mut text = fs::read_to_string(&manifest).unwrap();
    text.push(' ');
    fs::write(&manifest, text).unwrap();

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert!(!env.store().join("config.xml").exists(), "{out}");
    assert!(uploaded_log(&env.reports()).contains("Starting software synchronization"));
    let lines = run_lines(&env.reports());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "exit"), "204");
    assert_eq!(field(&lines[0], "version"), "-");
    assert_eq!(field(&lines[0], "fetched"), "-");
}

#[test]
fn an_unreachable_server_gets_no_upload_and_keeps_its_code() {
    let env = TestEnv::sftp("an_unreachable_server_gets_no_upload_and_keeps_its_code");
    env.repo().write_sample().publish();
    // A port on which nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.write_ini(&env.ini().set("server", "port", port.to_string()));
    let out = env.sync();
    env.assert_failed(&out, Code::Unreachable);
    assert!(fs::read_dir(env.reports()).unwrap().next().is_none());
}

#[test]
fn a_read_only_reports_folder_gives_106_with_the_sync_applied() {
    let name = "a_read_only_reports_folder_gives_106_with_the_sync_applied";
    let env = TestEnv::sftp(name);
    env.repo().write_sample().publish();
    // Pointed at the repository, which the account may only read: the server
    // itself refuses every write there.
    let before = fs::read_dir(env.repo().root()).unwrap().count();
    env.write_ini(
        &env.ini()
            .set("server", "reports", format!("{UPDATES}/{name}")),
    );

    let out = env.sync();
    let line = env.assert_failed(&out, Code::ReportUpload);
    assert!(line.contains("report upload failed"), "{line}");
    assert!(
        line.contains(&format!("{UPDATES}/{name}/")),
        "names the file: {line}"
    );
    env.assert_store_mirrors_repo();
    assert_eq!(
        fs::read_dir(env.repo().root()).unwrap().count(),
        before,
        "the repository changed"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(env.state().join("state.json")).unwrap()).unwrap();
    assert_eq!(state["accepted_version"], env.repo().manifest().version);
    assert_eq!(state["last_exit"], 106);
}

#[test]
fn reports_none_uploads_nothing() {
    let env = TestEnv::local("reports_none_uploads_nothing");
    env.repo().write_sample().publish();
    env.write_ini(&env.ini().set("server", "reports", "none"));
    env.sync().assert_code(Code::Success);
    assert!(fs::read_dir(env.reports()).unwrap().next().is_none());
}

#[test]
fn without_a_wpkg_log_only_the_run_line_is_written() {
    let env = TestEnv::sftp("without_a_wpkg_log_only_the_run_line_is_written");
    env.repo().write_sample().publish();
    fs::remove_file(env.tmp().join("wpkg.log")).unwrap();
    env.sync().assert_code(Code::Success);
    assert_eq!(run_lines(&env.reports()).len(), 1);
    assert!(!env.reports().join(format!("wpkg-{}.log", host())).exists());
}

#[test]
fn a_log_larger_than_the_cap_allows_in_the_timeout_still_arrives_whole() {
    let env = TestEnv::sftp("a_log_larger_than_the_cap_allows_in_the_timeout_still_arrives_whole");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    // 96 KiB at 16 KiB/s is six seconds, three times the timeout: the timeout
    // is for a link without progress, and this one progresses all along.
    let wpkg_log: String = (0..2_000)
        .map(|i| format!("2024-01-01 08:00:00, STATUS  : line {i:05} of a long log\r\n"))
        .collect::<String>();
    assert!(wpkg_log.len() > 96 * 1024);
    fs::write(env.tmp().join("wpkg.log"), &wpkg_log).unwrap();
    env.write_ini(
        &env.ini()
            .set("sync", "bwlimit", "16")
            .set("sync", "timeout", "2"),
    );
    let started = std::time::Instant::now();
    env.sync().assert_code(Code::Success);
    assert!(
        started.elapsed().as_secs_f64() > 4.0,
        "the cap was not applied to the upload"
    );
    assert_eq!(uploaded_log(&env.reports()), wpkg_log);
    assert!(strays(&env.reports()).is_empty());
}

#[test]
fn an_unreadable_wpkg_log_gives_106_and_still_appends_the_run_line() {
    let env = TestEnv::sftp("an_unreadable_wpkg_log_gives_106_and_still_appends_the_run_line");
    env.repo().write_sample().publish();
    // A folder where the log should be: it exists but cannot be read as a file.
    let not_a_file = env.tmp().join("wpkg-folder.log");
    fs::create_dir(&not_a_file).unwrap();
    env.write_ini(
        &env.ini()
            .set("sync", "wpkg_log", not_a_file.to_str().unwrap()),
    );

    let out = env.sync();
    let line = env.assert_failed(&out, Code::ReportUpload);
    assert!(line.contains("failed to read the WPKG log"), "{line}");
    assert!(line.contains("wpkg-folder.log"), "names the file: {line}");
    env.assert_store_mirrors_repo();
    let lines = run_lines(&env.reports());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(field(&lines[0], "exit"), "106");
    assert!(!env.reports().join(format!("wpkg-{}.log", host())).exists());
}

#[test]
fn a_failed_upload_wins_over_a_failed_repair_and_both_are_logged() {
    let env = TestEnv::local("a_failed_upload_wins_over_a_failed_repair_and_both_are_logged");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let stuck = env.store().join("config.xml");
    let chattr = |flag: &str, path: &Path| {
        Command::new("chattr")
            .arg(flag)
            .arg(path)
            .run()
            .assert_success();
    };
    fs::set_permissions(&stuck, fs::Permissions::from_mode(0o666)).unwrap();
    // Immutable: even root can neither chmod the file nor write the folder.
    chattr("+i", &stuck);
    chattr("+i", &env.reports());
    env.repo()
        .write("hosts.xml", "<hosts changed=\"1\" />")
        .publish();

    let out = env.sync();
    chattr("-i", &stuck);
    chattr("-i", &env.reports());
    let line = env.assert_failed(&out, Code::ReportUpload);
    assert!(line.contains("report upload failed"), "{line}");
    let log = fs::read_to_string(env.state().join("wpkgsync.log")).unwrap();
    assert!(
        log.contains("failed to repair ownership and permissions") && log.contains("config.xml"),
        "the repair failure is not in the log:\n{log}"
    );
    env.assert_store_mirrors_repo();
}

#[test]
fn a_linked_or_foreign_wpkg_log_is_never_uploaded() {
    let env = TestEnv::local("a_linked_or_foreign_wpkg_log_is_never_uploaded");
    env.repo().write_sample().publish();
    let secret = env.tmp().join("shadow");
    fs::write(&secret, "root:secret-hash:19000::::::\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let log = env.tmp().join("wpkg.log");
    let _ = fs::remove_file(&log);
    std::os::unix::fs::symlink(&secret, &log).unwrap();

    let line = env.assert_failed(&env.sync(), Code::ReportUpload);
    assert!(line.contains("link"), "{line}");
    env.assert_store_mirrors_repo();
    assert!(!env.reports().join(format!("wpkg-{}.log", host())).exists());

    // A log another account owns is not the one WPKG wrote as SYSTEM.
    fs::remove_file(&log).unwrap();
    fs::write(
        &log,
        "Adding package with ID 'forged' to profile packages\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&log, Some(65534), None).unwrap();
    let line = env.assert_failed(&env.sync(), Code::ReportUpload);
    assert!(line.contains("uid 65534"), "{line}");
    assert!(!env.reports().join(format!("wpkg-{}.log", host())).exists());
}

/// A root-only file outside the reports folder, for links to point at.
fn root_only_victim(env: &TestEnv) -> std::path::PathBuf {
    let victim = env.tmp().join("victim");
    fs::write(&victim, "root's own\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    victim
}

/// Links planted in a local reports folder, at the final
/// names and at the temporary names a run used to pick (the pid), never make
/// root write through them. The WPKG log's link is replaced by the log itself
/// (a rename replaces the link, not what it points to); the run log's link is
/// refused (106, naming it); the file they point at stays as it was.
#[test]
fn links_planted_in_a_local_reports_folder_are_not_followed() {
    let env = TestEnv::local("links_planted_in_a_local_reports_folder_are_not_followed");
    env.repo().write_sample().publish();
    fs::write(env.tmp().join("wpkg.log"), "wpkg log\r\n").unwrap();
    let victim = root_only_victim(&env);
    let reports = env.reports();
    let link = |name: String| std::os::unix::fs::symlink(&victim, reports.join(name)).unwrap();
    link(format!("wpkg-{}.log", host()));
    link(format!("{}.wpkgsync.log", host()));
    // The temporary names a run with one of the next pids would have used.
    let next_pid = std::process::id();
    for pid in next_pid..next_pid + 200 {
        link(format!(".wpkgsync-tmp-wpkg-{}.log.{pid}", host()));
    }

    let out = env.sync();
    let line = env.assert_failed(&out, Code::ReportUpload);
    assert!(line.contains(&format!("{}.wpkgsync.log", host())), "{line}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "root's own\n");
    let uploaded = reports.join(format!("wpkg-{}.log", host()));
    assert!(!fs::symlink_metadata(&uploaded).unwrap().is_symlink());
    assert_eq!(fs::read_to_string(&uploaded).unwrap(), "wpkg log\r\n");
    env.assert_store_mirrors_repo();
    for entry in fs::read_dir(&reports).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_symlink() {
            fs::remove_file(path).unwrap();
        }
    }
}

/// A reports folder that is itself a link is refused, and
/// nothing is written where it points.
#[test]
fn a_reports_folder_that_is_a_link_is_refused() {
    let env = TestEnv::local("a_reports_folder_that_is_a_link_is_refused");
    env.repo().write_sample().publish();
    fs::write(env.tmp().join("wpkg.log"), "wpkg log\r\n").unwrap();
    let elsewhere = env.tmp().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let linked = env.tmp().join("linked-reports");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    env.write_ini(&env.ini().set("server", "reports", linked.to_str().unwrap()));

    let out = env.sync();
    let line = env.assert_failed(&out, Code::ReportUpload);
    assert!(line.contains("is a link"), "{line}");
    assert!(fs::read_dir(&elsewhere).unwrap().next().is_none());
    fs::remove_file(&linked).unwrap();
}
