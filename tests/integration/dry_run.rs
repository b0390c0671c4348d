//! `/dry-run` changes nothing and tells what a sync would do: each download
//! whole or as a delta with its bytes, each deletion, and a total.

use std::fs;

use wpkgsync::exit::Code;

use crate::support::{TestEnv, noise};

#[test]
fn dry_run_reports_the_work_and_changes_nothing() {
    let env = TestEnv::sftp("dry_run_reports_the_work_and_changes_nothing");
    let mut big = noise(51, 600_000);
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", &big)
        .write("packages/old/gone.txt", "old")
        .publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();
    let state = fs::read(env.state().join("state.json")).unwrap();

    big[300_000] ^= 1;
    env.repo()
        .write("packages/big/big.msi", &big)
        .write("packages/new/new.msi", noise(52, 70_000))
        .remove_dir("packages/old")
        .publish();

    let out = env.sync_with(&["/dry-run"]);
    out.assert_code(Code::Success);
    crate::support::tree::assert_unchanged(&before, &env.store_tree(), "the store");
    assert_eq!(
        fs::read(env.state().join("state.json")).unwrap(),
        state,
        "state changed"
    );

    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", out.stdout))
            .to_owned()
    };
    let delta = line("fetch  packages/big/big.msi (delta, ");
    let fetched: u64 = delta
        .trim_start_matches("fetch  packages/big/big.msi (delta, ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(fetched < 60_000, "{delta}");
    line("fetch  packages/new/new.msi (whole, 70000 bytes)");
    line("delete packages/old");
    assert!(
        line("total: ").contains("2 files to fetch"),
        "{}",
        out.stdout
    );
}
