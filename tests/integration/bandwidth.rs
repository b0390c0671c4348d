//! The bandwidth cap over SFTP: `bwlimit` slows a large transfer to the cap and
//! `--fast` lifts it.

use std::time::Duration;

use wpkgsync::exit::Code;

use crate::support::{TestEnv, noise};

/// 4 MiB at 1000 KiB/s is 4.1 s; bursts of at most 0.2 s of the cap leave 3.9 s.
const SIZE: usize = 4 * 1024 * 1024;
const CAP_KIB: &str = "1000";
const AT_LEAST: Duration = Duration::from_millis(3_500);

fn capped_env(name: &str) -> TestEnv {
    let env = TestEnv::sftp(name);
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", noise(90, SIZE))
        .publish();
    env.write_ini(&env.ini().set("sync", "bwlimit", CAP_KIB));
    env
}

#[test]
fn bandwidth_cap_slows_a_large_file() {
    let env = capped_env("bandwidth_cap_slows_a_large_file");

    let out = env.sync();
    out.assert_code(Code::Success);

    env.assert_store_mirrors_repo();
    assert!(
        out.elapsed >= AT_LEAST,
        "4 MiB at {CAP_KIB} KiB/s took only {:?}\n{out}",
        out.elapsed
    );
}

#[test]
fn fast_switch_lifts_the_cap() {
    let env = capped_env("fast_switch_lifts_the_cap");

    let out = env.sync_with(&["--fast"]);
    out.assert_code(Code::Success);

    env.assert_store_mirrors_repo();
    assert!(
        out.elapsed < AT_LEAST,
        "4 MiB with --fast took {:?}, as if capped\n{out}",
        out.elapsed
    );
}
