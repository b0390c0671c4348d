//! The publisher side as clients rely on it: every file listed with its size,
//! mtime and sha256, records that name each other, and versions that only go up.

use std::fs;

use wpkgsync::exit::Code;
use wpkgsync::manifest::format::{MANIFEST_FILE, META_DIR, TIMESTAMP_FILE, Timestamp};

use crate::support::repo::{publisher, sha256_hex};
use crate::support::run::wpkgsync;
use crate::support::tree::{Node, Tree, assert_unchanged};
use crate::support::{TestEnv, noise};

#[test]
fn publish_lists_every_file_and_versions_go_up() {
    let env = TestEnv::local("publish_lists_every_file_and_versions_go_up");
    let repo = env.repo();
    repo.write_sample().publish();
    let first = repo.manifest();

    let source = Tree::read(repo.root());
    let mut expected: Vec<(String, u64, i64, String)> = source
        .0
        .iter()
        .filter(|(path, _)| !path.starts_with(&format!("{META_DIR}/")))
        .filter_map(|(path, node)| match node {
            Node::File { bytes, mtime, .. } => {
                Some((path.clone(), bytes.len() as u64, *mtime, sha256_hex(bytes)))
            }
            Node::Dir => None,
        })
        .collect();
    expected.sort();
    let mut listed: Vec<(String, u64, i64, String)> = repo
        .files()
        .iter()
        .map(|f| (f.path.clone(), f.size, f.mtime, f.sha256.clone()))
        .collect();
    listed.sort();
    assert_eq!(listed, expected);

    let manifest_bytes = fs::read(repo.meta().join(MANIFEST_FILE)).unwrap();
    let timestamp: Timestamp =
        serde_json::from_slice(&fs::read(repo.meta().join(TIMESTAMP_FILE)).unwrap()).unwrap();
    assert_eq!(timestamp.version, first.version);
    assert_eq!(timestamp.manifest_sha256, sha256_hex(&manifest_bytes));
    assert_eq!(timestamp.manifest_size, manifest_bytes.len() as u64);
    assert!(timestamp.expires > timestamp.published);

    // Twice within the same second: the version still goes up.
    repo.publish();
    let second = repo.manifest().version;
    repo.publish();
    let third = repo.manifest().version;
    assert!(
        first.version < second && second < third,
        "{} {second} {third}",
        first.version
    );
}

#[test]
fn publish_refuses_a_version_edited_without_the_key() {
    // The previous version came from the
    // unsigned timestamp.json, so anyone able to write the repository could
    // move it to 2^64-2, after which versions repeated.
    let env = TestEnv::sftp("publish_refuses_a_version_edited_without_the_key");
    let repo = env.repo();
    repo.write_sample().publish();
    env.sync().assert_code(Code::Success);
    let synced = env.store_tree();

    let path = repo.meta().join(TIMESTAMP_FILE);
    let mut timestamp: Timestamp = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    timestamp.version = u64::MAX - 1;
    fs::write(&path, serde_json::to_vec_pretty(&timestamp).unwrap()).unwrap();
    repo.write("packages/7zip/7z.msi", noise(80, 40_000));
    let before = Tree::read(repo.root());

    let out = wpkgsync()
        .arg("publish")
        .arg("--repo")
        .arg(repo.root())
        .arg("--key")
        .arg(&publisher().private)
        .run();
    out.assert_code(Code::LocalStore);
    let line = out.error_line();
    assert!(
        line.contains(&path.display().to_string()) && line.contains("does not verify"),
        "the error line does not name the record: {line}"
    );
    assert_unchanged(&before, &Tree::read(repo.root()), "the repository");

    // Clients refuse the edited record too: its signature no longer matches.
    env.assert_failed(&env.sync(), Code::ManifestInvalid);
    assert_unchanged(&synced, &env.store_tree(), "the store");
}
