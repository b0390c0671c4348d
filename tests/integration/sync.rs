//! Mirroring: a first sync copies everything, a later one applies changes,
//! additions and deletions, and one with nothing to do touches nothing.

use wpkgsync::exit::Code;

use crate::support::tree::assert_unchanged;
use crate::support::{TestEnv, Via, noise};

fn first_sync_mirrors_every_file(name: &str, via: Via) {
    let env = TestEnv::new(name, via);
    env.repo().write_sample().publish();

    env.sync().assert_code(Code::Success);

    env.assert_store_mirrors_repo();
    let state = env.state().join("state.json");
    assert!(state.is_file(), "no state file at {state:?}");
}

#[test]
fn first_sync_mirrors_every_file_over_sftp() {
    first_sync_mirrors_every_file("first_sync_mirrors_every_file_over_sftp", Via::Sftp);
}

#[test]
fn first_sync_mirrors_every_file_from_a_local_folder() {
    first_sync_mirrors_every_file(
        "first_sync_mirrors_every_file_from_a_local_folder",
        Via::Local,
    );
}

fn incremental_sync_applies_changes_additions_and_deletions(name: &str, via: Via) {
    let env = TestEnv::new(name, via);
    let repo = env.repo();
    repo.write_sample()
        .write("packages/old/legacy.msi", noise(10, 5_000))
        .write("packages/old/sub/notes.txt", "gone soon\n")
        .publish();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();

    // Changed (same size and different size), added, deleted, and a folder deleted.
    let mut msi = noise(1, 40_000);
    msi[20_000..20_100].copy_from_slice(&noise(11, 100));
    repo.write("packages/7zip/7z.msi", msi)
        .write("packages/firefox/setup.exe", noise(12, 130_000))
        .write("config.xml", "<config />\r\n")
        .write("packages/vlc.xml", "<packages />\r\n")
        .write("packages/vlc/vlc.msi", noise(13, 25_000))
        .remove_file("packages/putty/empty.txt")
        .remove_file("packages/7zip/readme.txt")
        .remove_dir("packages/old")
        .publish();

    env.sync().assert_code(Code::Success);

    env.assert_store_mirrors_repo();
    let store = env.store();
    assert!(
        !store.join("packages/old").exists(),
        "the deleted folder stays"
    );
    assert!(!store.join("packages/7zip/readme.txt").exists());
    assert!(store.join("packages/vlc/vlc.msi").is_file());
}

#[test]
fn incremental_sync_applies_changes_additions_and_deletions_over_sftp() {
    incremental_sync_applies_changes_additions_and_deletions(
        "incremental_sync_applies_changes_additions_and_deletions_over_sftp",
        Via::Sftp,
    );
}

#[test]
fn incremental_sync_applies_changes_additions_and_deletions_from_a_local_folder() {
    incremental_sync_applies_changes_additions_and_deletions(
        "incremental_sync_applies_changes_additions_and_deletions_from_a_local_folder",
        Via::Local,
    );
}

#[test]
fn second_sync_without_changes_touches_nothing() {
    let env = TestEnv::sftp("second_sync_without_changes_touches_nothing");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();

    env.sync().assert_code(Code::Success);

    // Same bytes, mtimes and inodes: no file was rewritten.
    assert_unchanged(&before, &env.store_tree(), "the store");
    env.assert_store_mirrors_repo();
}

#[test]
fn local_files_outside_the_manifest_are_deleted() {
    let env = TestEnv::local("local_files_outside_the_manifest_are_deleted");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    let stray = env.store().join("packages/stray/leftover.msi");
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, "not published").unwrap();
    std::fs::write(env.store().join("stray.xml"), "<x />").unwrap();

    env.sync().assert_code(Code::Success);

    env.assert_store_mirrors_repo();
}

#[test]
fn default_excludes_are_neither_fetched_nor_kept() {
    let env = TestEnv::local("default_excludes_are_neither_fetched_nor_kept");
    env.repo()
        .write_sample()
        .write("client/wpkgsync.exe", noise(20, 1_000))
        .write("lost+found/#1234", noise(21, 100))
        .write("profiles.sites/site-a.xml", "<profiles />\r\n")
        .publish();
    // A copy from before the folder was excluded goes too (--delete-excluded).
    let old = env.store().join("client/old.exe");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    std::fs::write(&old, "old").unwrap();

    env.sync().assert_code(Code::Success);

    crate::support::tree::assert_mirrors(
        &env.store(),
        env.repo().root(),
        &["client", "lost+found", "profiles.sites"],
    );
}

#[test]
fn unchanged_manifest_is_not_downloaded_again() {
    let env = TestEnv::sftp("unchanged_manifest_is_not_downloaded_again");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    // A changed manifest arrives as a patch against the one the client
    // verified last time: the server's whole copy is not needed.
    env.repo()
        .write("config.xml", "<config changed=\"1\" />")
        .publish();
    std::fs::remove_file(env.repo().meta().join("manifest.json")).unwrap();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    // The timestamp still names the manifest the client verified last time:
    // nothing is needed.
    env.sync().assert_code(Code::Success);
    // Published without the previous manifest there is no patch, and without
    // the whole copy no manifest.
    env.repo()
        .write("config.xml", "<config changed=\"2\" />")
        .publish();
    std::fs::remove_file(env.repo().meta().join("manifest.json")).unwrap();
    let out = env.sync();
    env.assert_failed(&out, Code::ManifestInvalid);
    assert!(out.stderr.contains("manifest.json is missing"), "{out}");
}

#[test]
fn content_changed_without_new_size_or_mtime_is_fetched() {
    let env = TestEnv::local("content_changed_without_new_size_or_mtime_is_fetched");
    env.repo().write_sample().publish();
    env.sync().assert_code(Code::Success);
    // Same size, same mtime, other bytes: rsync's quick check would miss it,
    // but the client knows which content it placed there.
    env.repo().tamper("config.xml");
    // The publisher's own hash cache has the same blind spot; without it the
    // new content is hashed, as it is for files written just before a publish.
    std::fs::remove_file(env.repo().meta().join("cache.json")).unwrap();
    env.repo().publish();
    let files = env.repo().files();
    let entry = files.iter().find(|f| f.path == "config.xml").unwrap();
    let published = std::fs::read(env.repo().path("config.xml")).unwrap();
    assert_eq!(
        entry.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&published))
    );
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
}
