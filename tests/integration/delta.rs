//! Block deltas over the real sshd: a changed file costs about its changed
//! blocks, a moved file costs nothing, a lying signature costs a whole-file
//! fetch but never a wrong file, and a killed run resumes.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use wpkgsync::exit::Code;

use crate::support::{TestEnv, noise};

const SIZE: usize = 2 * 1024 * 1024;
const BIG: &str = "packages/big/big.msi";

/// Bytes the last run read from the source, from its summary in the local log.
fn fetched_bytes(env: &TestEnv) -> u64 {
    let log = fs::read_to_string(env.state().join("wpkgsync.log")).expect("local log");
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(": fetched "))
        .unwrap_or_else(|| panic!("no summary in the log:\n{log}"));
    let start = line.find(" files (").expect("byte count") + " files (".len();
    let end = line[start..].find(" bytes").expect("byte count") + start;
    line[start..end].parse().expect("a number")
}

fn synced_env(name: &str) -> (TestEnv, Vec<u8>) {
    let env = TestEnv::sftp(name);
    let content = noise(41, SIZE);
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write(BIG, &content)
        .publish();
    env.sync().assert_code(Code::Success);
    (env, content)
}

#[test]
fn changed_file_fetches_only_its_changed_blocks() {
    let (env, mut content) = synced_env("changed_file_fetches_only_its_changed_blocks");
    content[SIZE / 3..SIZE / 3 + 100].copy_from_slice(&[0xAB; 100]);
    content.splice(SIZE / 2..SIZE / 2, noise(42, 5000));
    env.repo().write(BIG, &content).publish();

    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let fetched = fetched_bytes(&env);
    // Two edits of a 2 MiB file (1.4 KiB blocks) plus the signature (~18 KiB).
    assert!(
        fetched < 64 * 1024,
        "fetched {fetched} bytes of a {SIZE}-byte file"
    );
}

#[test]
fn moved_file_is_copied_from_the_store() {
    let (env, content) = synced_env("moved_file_is_copied_from_the_store");
    env.repo()
        .remove_file(BIG)
        .write("packages/renamed/setup.msi", &content)
        .publish();

    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert_eq!(fetched_bytes(&env), 0, "a moved file was downloaded");
}

#[test]
fn lying_block_signature_falls_back_to_the_whole_file() {
    let (env, mut content) = synced_env("lying_block_signature_falls_back_to_the_whole_file");
    content[10] ^= 1;
    env.repo().write(BIG, &content).publish();
    // A signature claiming every block is unchanged: the matcher then "finds"
    // the old blocks, and only the sha256 can tell.
    let signature = env.repo().own_signature(BIG);
    let old = fs::read(env.store().join(BIG)).unwrap();
    let lie =
        wpkgsync::delta::signature::calculate(&old[..], content.len() as u64).expect("signature");
    fs::write(&signature, lie).unwrap();

    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(
        fetched_bytes(&env) >= SIZE as u64,
        "the whole file was not fetched"
    );
}

#[test]
fn garbage_block_signature_and_tampered_content_end_206_with_the_old_copy() {
    let (env, mut content) =
        synced_env("garbage_block_signature_and_tampered_content_end_206_with_the_old_copy");
    let before = fs::read(env.store().join(BIG)).unwrap();
    content[SIZE / 2] ^= 1;
    env.repo().write(BIG, &content).publish();
    fs::write(env.repo().own_signature(BIG), noise(7, 999)).unwrap();
    env.repo().tamper(BIG);

    let out = env.sync();
    env.assert_failed(&out, Code::Partial);
    assert_eq!(
        fs::read(env.store().join(BIG)).unwrap(),
        before,
        "old copy lost"
    );
}

#[test]
fn killed_run_leaves_the_old_file_and_the_next_run_resumes() {
    let (env, _) = synced_env("killed_run_leaves_the_old_file_and_the_next_run_resumes");
    let before = fs::read(env.store().join(BIG)).unwrap();
    // A new file that shares nothing with the old one, so the first run must
    // download it and the partial download is all the next run can reuse.
    let content = noise(43, SIZE);
    env.repo().write(BIG, &content).publish();
    env.write_ini(&env.ini().set("sync", "bwlimit", "400"));

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wpkgsync"))
        .arg("--config")
        .arg(env.ini_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wpkgsync");
    // Its temporary file, whatever unpredictable name it was given.
    let folder = env.store().join("packages/big");
    let partial_len = || {
        fs::read_dir(&folder).map_or(0, |entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(".wpkgsync-tmp-") && name.ends_with("-big.msi")
                })
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .max()
                .unwrap_or(0)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while partial_len() < (SIZE / 2) as u64 {
        assert!(Instant::now() < deadline, "the download never got half way");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        fs::read(env.store().join(BIG)).unwrap(),
        before,
        "old copy damaged"
    );

    env.write_ini(&env.ini());
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let fetched = fetched_bytes(&env);
    assert!(
        fetched < (SIZE / 2 + 128 * 1024) as u64,
        "the resumed run fetched {fetched} of {SIZE} bytes"
    );
}

#[test]
fn small_files_cost_their_changed_blocks_through_the_bundle() {
    let env = TestEnv::sftp("small_files_cost_their_changed_blocks_through_the_bundle");
    let files: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("packages/small/f{i}.bin"), noise(80 + i, 24 * 1024)))
        .collect();
    for (path, content) in &files {
        env.repo().write(path, content);
    }
    env.repo().write("config.xml", "<config />\r\n").publish();
    env.sync().assert_code(Code::Success);
    let part = env.repo().part(&env.repo().part_of(Some("small")));
    assert!(
        part.bundle.is_some(),
        "no signature bundle for the small files"
    );

    // 1 KiB overwritten in each: about two 1 KiB blocks and a signature each.
    for (path, content) in &files {
        let mut changed = content.clone();
        changed[5000..6024].copy_from_slice(&noise(90, 1024));
        env.repo().write(path, &changed);
    }
    env.repo().publish();
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    let fetched = fetched_bytes(&env);
    let whole = 8 * 24 * 1024;
    assert!(
        fetched < whole / 4,
        "fetched {fetched} bytes for 8 files of 24 KiB with 1 KiB changed each"
    );
}
