//! The publisher side as clients rely on it: every file listed with its size,
//! mtime and sha256, records that name each other, and versions that only go up.

use std::fs;

use wpkgsync::manifest::format::{MANIFEST_FILE, META_DIR, TIMESTAMP_FILE, Timestamp};

use crate::support::TestEnv;
use crate::support::repo::sha256_hex;
use crate::support::tree::{Node, Tree};

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
    let mut listed: Vec<(String, u64, i64, String)> = first
        .files
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
