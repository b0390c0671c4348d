//! The signed manifest against a server that lies: tampered files, tampered or
//! badly signed records, replayed old records, expired records, and correctly
//! signed manifests whose paths try to leave the store.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use wpkgsync::exit::Code;
use wpkgsync::manifest::format::{MANIFEST_FILE, SIGNATURE_SUFFIX, TIMESTAMP_FILE};

use crate::support::repo::sha256_hex;
use crate::support::sshd::UPDATES;
use crate::support::tree::{Tree, assert_mirrors, assert_unchanged};
use crate::support::{Sshd, TestEnv, Via, noise};

#[test]
fn tampered_file_keeps_the_old_copy_and_applies_the_rest() {
    let env = TestEnv::sftp("tampered_file_keeps_the_old_copy_and_applies_the_rest");
    let repo = env.repo();
    repo.write_sample().publish();
    env.sync().assert_code(Code::Success);
    let v1 = env.store_tree();

    repo.write("packages/7zip/7z.msi", noise(30, 40_000))
        .write("packages/firefox/setup.exe", noise(31, 120_000))
        .write("packages/vlc/vlc.msi", noise(32, 20_000))
        .write("packages/putty/new.msi", noise(33, 10_000))
        .publish();
    // After publishing, an attacker on the server changes two files.
    repo.tamper("packages/7zip/7z.msi");
    repo.tamper("packages/putty/new.msi");

    let out = env.sync();
    let line = env.assert_failed(&out, Code::Partial);
    assert!(
        line.contains("7z.msi") || line.contains("new.msi"),
        "the error line names no failed file: {line}"
    );

    let store = env.store_tree();
    assert_eq!(
        store.bytes("packages/7zip/7z.msi"),
        v1.bytes("packages/7zip/7z.msi"),
        "the tampered file replaced the old copy"
    );
    assert_eq!(
        store.bytes("packages/putty/new.msi"),
        None,
        "a tampered new file entered the store"
    );
    assert_eq!(
        store.bytes("packages/firefox/setup.exe"),
        Some(noise(31, 120_000).as_slice()),
        "the good change was not applied"
    );
    assert_eq!(
        store.bytes("packages/vlc/vlc.msi"),
        Some(noise(32, 20_000).as_slice()),
        "the good addition was not applied"
    );
}

#[test]
fn tampered_part_is_refused() {
    let env = TestEnv::sftp("tampered_part_is_refused");
    let repo = env.repo();
    repo.write_sample().publish();
    env.sync().assert_code(Code::Success);
    let v1 = env.store_tree();

    // The attacker replaces an installer and makes its folder's part vouch
    // for it; the signed manifest still names the genuine part.
    let planted = noise(40, 40_000);
    repo.write("packages/7zip/7z.msi", &planted).publish();
    let part = repo.part_of(Some("7zip"));
    let text = serde_json::to_string(&repo.part(&part)).unwrap();
    let genuine = sha256_hex(&planted);
    assert!(
        text.contains(&genuine),
        "the part does not list the sha256 as hex"
    );
    repo.tamper("packages/7zip/7z.msi");
    let tampered = sha256_hex(&fs::read(repo.path("packages/7zip/7z.msi")).unwrap());
    repo.replace_part(&part, text.replace(&genuine, &tampered).as_bytes());

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert!(
        out.stderr.contains("the part of 7zip does not match"),
        "{out}"
    );
    assert_unchanged(&v1, &env.store_tree(), "the store");
}

#[test]
fn bad_timestamp_signature_is_refused() {
    let env = TestEnv::sftp("bad_timestamp_signature_is_refused");
    let repo = env.repo();
    repo.write_sample().publish();
    env.sync().assert_code(Code::Success);
    let v1 = env.store_tree();

    repo.write("packages/7zip/7z.msi", noise(50, 40_000))
        .publish();
    let signature = repo
        .meta()
        .join(format!("{TIMESTAMP_FILE}{SIGNATURE_SUFFIX}"));
    let mut bytes = fs::read(&signature).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&signature, bytes).unwrap();

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert_unchanged(&v1, &env.store_tree(), "the store");
}

#[test]
fn unpublished_repository_is_refused() {
    let env = TestEnv::sftp("unpublished_repository_is_refused");
    env.repo().write_sample();

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert!(env.store_tree().is_empty(), "files entered the store");
}

#[test]
fn rollback_manifest_is_refused() {
    let env = TestEnv::sftp("rollback_manifest_is_refused");
    let repo = env.repo();
    repo.write_sample().publish();
    let v1 = repo.save_records();
    repo.write("packages/7zip/7z.msi", noise(60, 40_000))
        .remove_file("packages/putty/empty.txt")
        .publish();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let v2 = env.store_tree();

    // The server replays the older, correctly signed records.
    repo.restore_records(&v1);

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestStale);
    assert_unchanged(&v2, &env.store_tree(), "the store");
}

#[test]
fn another_manifest_under_the_accepted_version_is_refused() {
    // an older publish could give two manifests
    // one version (after an unsigned edit moved it to 2^64-1), and a server
    // could then serve either; only the one accepted first is good.
    let env = TestEnv::sftp("another_manifest_under_the_accepted_version_is_refused");
    let repo = env.repo();
    let version = u64::MAX;
    let (first, second): (&[u8], &[u8]) = (b"first\n", b"second, other content\n");
    repo.write("a.txt", first).write("b.txt", second);
    repo.publish_forged_as(version, &[("a.txt", first)]);
    let accepted = repo.save_records();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();
    assert_eq!(before.files(), ["a.txt"]);

    // Correctly signed, same version, other files.
    repo.publish_forged_as(version, &[("a.txt", second), ("b.txt", second)]);
    repo.write("a.txt", second);
    let out = env.sync();
    let line = env.assert_failed(&out, Code::ManifestStale);
    assert!(
        line.contains("replay"),
        "the error line does not say why: {line}"
    );
    assert_unchanged(&before, &env.store_tree(), "the store");

    // The accepted manifest again: nothing to do, and no refusal.
    repo.write("a.txt", first);
    repo.restore_records(&accepted);
    env.sync().assert_code(Code::Success);
    assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn expired_manifest_is_refused() {
    let env = TestEnv::sftp("expired_manifest_is_refused");
    env.repo()
        .write_sample()
        .publish_with(&["--expires-days", "0"]);
    // Let the clock pass the expiry second whichever way the client rounds.
    thread::sleep(Duration::from_millis(1_100));

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestStale);
    assert!(env.store_tree().is_empty(), "files entered the store");
}

#[test]
fn hand_signed_manifest_is_accepted() {
    // The control for the hostile-path tests: the harness's own signing is good.
    let env = TestEnv::local("hand_signed_manifest_is_accepted");
    let repo = env.repo();
    repo.write("ok.txt", "fine\n")
        .write("packages/a b/c.txt", "spaces inside are fine\n");
    repo.publish_forged(&[
        ("ok.txt", b"fine\n"),
        ("packages/a b/c.txt", b"spaces inside are fine\n"),
    ]);

    env.sync().assert_code(Code::Success);

    let store = env.store_tree();
    assert_eq!(store.files(), ["ok.txt", "packages/a b/c.txt"]);
    assert_eq!(store.bytes("ok.txt"), Some(b"fine\n".as_slice()));
}

/// Paths a correctly signed manifest may not use, each with the rule it breaks.
fn hostile_paths() -> Vec<Vec<String>> {
    let pid = std::process::id();
    let one = |p: String| vec![p];
    vec![
        one(format!("../escape-{pid}.txt")),
        one(format!("..\\escape-{pid}.txt")),
        one(format!("a/../../escape2-{pid}.txt")),
        one(format!("/etc/wpkgsync-hostile-{pid}")),
        one(format!("/wpkgsync-hostile-{pid}.txt")),
        one("C:/x.txt".to_string()),
        one("C:x.txt".to_string()),
        one("\\\\server\\share\\x.txt".to_string()),
        one("//server/share/x.txt".to_string()),
        one("file.txt:ads".to_string()),
        one("CON".to_string()),
        one("nul.txt".to_string()),
        one("packages/com1/x.txt".to_string()),
        one("COM\u{b9}".to_string()),
        one("packages/lpt\u{b2}.txt".to_string()),
        vec!["x/y".to_string(), "x/.wpkgsync-tmp-y".to_string()],
        vec!["x/y".to_string(), "x/.WPKGSYNC-TMP-y".to_string()],
        one("dir./x.txt".to_string()),
        one("x ".to_string()),
        one(String::new()),
        one("..".to_string()),
        vec!["A.txt".to_string(), "a.txt".to_string()],
    ]
}

/// Publishes a good manifest, syncs it, then for each hostile case signs a
/// manifest holding the good file plus the case, with the content really lying
/// where a naive client would look for it, and checks that the whole manifest
/// is refused and nothing was written anywhere.
fn hostile_paths_are_refused(name: &str, via: Via, cases: &[Vec<String>]) {
    let env = TestEnv::new(name, via);
    let repo = env.repo();
    let good: &[u8] = b"good\n";
    repo.write("ok.txt", good);
    repo.publish_forged(&[("ok.txt", good)]);
    env.sync().assert_code(Code::Success);
    let store_before = env.store_tree();
    assert_eq!(store_before.files(), ["ok.txt"]);
    let client_dir = env.store().parent().unwrap().to_path_buf();
    let outside_before = Tree::read(&client_dir);
    let payload: &[u8] = b"payload from a hostile manifest\n";

    for case in cases {
        let mut planted = Vec::new();
        for path in case {
            if !path.starts_with('/') && !path.is_empty() && path != ".." {
                // Relative paths resolve inside the test's folders (or the
                // sshd chroot), so the content can really be there.
                let target = repo.root().join(path);
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::write(&target, payload).unwrap();
                planted.push(target);
            }
        }
        let mut files: Vec<(&str, &[u8])> = vec![("ok.txt", good)];
        files.extend(case.iter().map(|p| (p.as_str(), payload)));
        repo.publish_forged(&files);

        let out = env.sync();
        let absolute: Vec<&Path> = case
            .iter()
            .filter(|p| p.starts_with('/'))
            .map(Path::new)
            .collect();
        for path in &absolute {
            if path.exists() {
                let _ = fs::remove_file(path);
                panic!("a hostile manifest wrote {path:?}\n{out}");
            }
        }
        assert_eq!(
            out.code(),
            Some(Code::ManifestInvalid),
            "the manifest path(s) {case:?} were not refused\n{out}"
        );
        env.assert_failed(&out, Code::ManifestInvalid);
        assert_unchanged(
            &outside_before,
            &Tree::read(&client_dir),
            "the store's parent",
        );
        assert!(
            Tree::read(&env.cwd()).is_empty(),
            "a hostile manifest wrote into the working folder"
        );
        for target in planted {
            let _ = fs::remove_file(target);
        }
    }
    assert_unchanged(&store_before, &env.store_tree(), "the store");
}

#[test]
fn hostile_manifest_paths_are_refused() {
    hostile_paths_are_refused(
        "hostile_manifest_paths_are_refused",
        Via::Local,
        &hostile_paths(),
    );
}

#[test]
fn hostile_manifest_paths_are_refused_over_sftp() {
    let name = "hostile_manifest_paths_are_refused_over_sftp";
    let pid = std::process::id();
    let cases = vec![
        vec![format!("../escape-{pid}.txt")],
        vec![format!("/wpkgsync-hostile-{pid}.txt")],
        vec!["CON".to_string()],
        vec!["A.txt".to_string(), "a.txt".to_string()],
    ];
    hostile_paths_are_refused(name, Via::Sftp, &cases);
    let escape = Sshd::shared().host_path(&format!("{UPDATES}/escape-{pid}.txt"));
    assert!(!escape.exists(), "left {escape:?} behind in the chroot");
}

#[test]
fn a_file_that_is_also_a_folder_is_refused_before_anything_is_written() {
    // sorted, `a.txt` lies between `a` and
    // `a/b`, so a check of neighbours let this manifest through and every run
    // ended 206.
    let env = TestEnv::local("a_file_that_is_also_a_folder_is_refused_before_anything_is_written");
    let repo = env.repo();
    let good: &[u8] = b"good\n";
    repo.write("ok.txt", good);
    repo.publish_forged(&[("ok.txt", good)]);
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();

    repo.write("a", "file a\n").write("a.txt", "file a.txt\n");
    repo.publish_forged(&[
        ("ok.txt", good),
        ("a", b"file a\n"),
        ("a.txt", b"file a.txt\n"),
        ("a/b", b"file a/b\n"),
    ]);
    let out = env.sync();
    let line = env.assert_failed(&out, Code::ManifestInvalid);
    assert!(
        line.contains("both a file and a folder"),
        "the error line does not say why: {line}"
    );
    assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn store_mirrors_after_a_refused_manifest_is_fixed() {
    // A refusal is not sticky: once the publisher republishes, the sync goes on.
    let env = TestEnv::local("store_mirrors_after_a_refused_manifest_is_fixed");
    let repo = env.repo();
    repo.write_sample().publish();
    let signature = repo
        .meta()
        .join(format!("{MANIFEST_FILE}{SIGNATURE_SUFFIX}"));
    let mut bytes = fs::read(&signature).unwrap();
    bytes[0] ^= 0x80;
    fs::write(&signature, bytes).unwrap();
    env.assert_failed(&env.sync(), Code::ManifestInvalid);
    assert!(env.store_tree().is_empty());

    repo.publish();
    env.sync().assert_code(Code::Success);
    assert_mirrors(&env.store(), repo.root(), &[]);
}
