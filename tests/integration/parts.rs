//! The manifest's parts on the server: a client reads only the parts of the
//! folders it mirrors, patches that lie cost a whole part and nothing else,
//! and a part that is missing, too large or not the one the signed manifest
//! names stops the run (204) with the store as it was.

use std::fs;

use crate::support::tree::{Tree, assert_unchanged};
use crate::support::{TestEnv, noise};
use wpkgsync::exit::Code;

/// The sample repository, published and synced with `packages = all`, then
/// 7-Zip's installer changed and published again.
fn changed_7zip(name: &str) -> (TestEnv, Tree) {
    let env = TestEnv::sftp(name);
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();
    env.repo()
        .write("packages/7zip/7z.msi", noise(70, 40_000))
        .publish();
    (env, before)
}

#[test]
fn a_client_reads_only_the_parts_of_its_folders() {
    let env = TestEnv::sftp("a_client_reads_only_the_parts_of_its_folders");
    let repo = env.repo();
    repo.write_sample().publish();
    env.write_ini(&env.ini().set("sync", "packages", "7zip"));
    // The parts of the folders this client does not mirror are not needed.
    for folder in ["firefox", "putty"] {
        fs::remove_file(repo.part_file(&repo.part_of(Some(folder)))).unwrap();
    }
    env.sync().assert_code(Code::Success);
    let store = env.store_tree();
    assert!(
        store.bytes("packages/7zip/7z.msi").is_some(),
        "7-Zip missing"
    );
    assert!(
        !store
            .files()
            .iter()
            .any(|f| f.starts_with("packages/firefox/")),
        "an unselected folder was mirrored"
    );
    assert!(store.bytes("packages/firefox.xml").is_some());
}

#[test]
fn a_missing_part_changes_nothing() {
    let (env, before) = changed_7zip("a_missing_part_changes_nothing");
    let repo = env.repo();
    let part = repo.part_file(&repo.part_of(Some("7zip")));
    fs::remove_file(&part).unwrap();
    fs::remove_dir_all(repo.meta().join("deltas")).unwrap();

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    assert!(out.stderr.contains(&name), "{out}");
    assert!(out.stderr.contains("is missing on the server"), "{out}");
    assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn a_part_larger_than_the_manifest_says_changes_nothing() {
    let (env, before) = changed_7zip("a_part_larger_than_the_manifest_says_changes_nothing");
    let repo = env.repo();
    let part = repo.part_of(Some("7zip"));
    let mut bytes = zstd::decode_all(&fs::read(repo.part_file(&part)).unwrap()[..]).unwrap();
    bytes.extend_from_slice(&[b' '; 4096]);
    repo.replace_part(&part, &bytes);

    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert!(
        out.stderr
            .contains(&format!("is larger than {} bytes", part.size)),
        "{out}"
    );
    assert_unchanged(&before, &env.store_tree(), "the store");
}

#[test]
fn a_lying_patch_costs_the_whole_part_and_nothing_else() {
    let (env, _) = changed_7zip("a_lying_patch_costs_the_whole_part_and_nothing_else");
    let deltas = env.repo().meta().join("deltas");
    let patches: Vec<_> = fs::read_dir(&deltas).unwrap().flatten().collect();
    assert!(!patches.is_empty(), "the publish wrote no patch");
    // Valid zstd frames that decode to other bytes, and garbage.
    for (i, patch) in patches.iter().enumerate() {
        let lie = if i % 2 == 0 {
            zstd::encode_all(&b"{\"format\":2,\"files\":[]}"[..], 3).unwrap()
        } else {
            noise(71, 300)
        };
        fs::write(patch.path(), lie).unwrap();
    }
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}

#[test]
fn deleted_cached_parts_are_fetched_again() {
    let (env, _) = changed_7zip("deleted_cached_parts_are_fetched_again");
    let cache = env.state().join("parts");
    assert!(fs::read_dir(&cache).unwrap().count() > 0, "no part cached");
    fs::remove_dir_all(&cache).unwrap();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    // Every part of a client of every folder is cached again.
    let parts = env.repo().manifest().parts.len();
    assert_eq!(fs::read_dir(&cache).unwrap().count(), parts);
    // And with none cached, a run with nothing to do still does nothing.
    fs::remove_dir_all(&cache).unwrap();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}
