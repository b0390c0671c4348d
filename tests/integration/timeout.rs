//! "No progress" means no progress. A server that goes
//! silent mid-transfer: the run ends 207 after `timeout` seconds without
//! progress, the store keeps its old copy, and the partial download waits,
//! hidden, for the next run. A slow link that delivers steadily is progress,
//! however long a file takes; a whole run still has a deadline.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use wpkgsync::exit::Code;

use crate::support::env::Ini;
use crate::support::{TestEnv, noise};

/// How a relay passes the server's bytes to the client.
#[derive(Clone, Copy)]
enum Pace {
    /// Everything until this many bytes, then nothing more: a server that
    /// hangs without closing.
    StallAfter(usize),
    /// Steadily, at this many KiB a second: a slow link.
    KibPerSecond(u64),
    /// Everything until this many bytes, then the connection is cut.
    CloseAfter(usize),
}

/// A TCP relay to the shared sshd: the client's bytes pass as they come, the
/// server's at `pace`.
fn relay(target: u16, pace: Pace) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let port = listener.local_addr().expect("relay address").port();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let (mut to_server, mut from_client) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            let (client_gone, wait_for_client) = std::sync::mpsc::channel::<()>();
            thread::spawn(move || {
                let _ = std::io::copy(&mut from_client, &mut to_server);
                let _ = to_server.shutdown(Shutdown::Write);
                drop(client_gone);
            });
            let (mut from_server, mut to_client) = (server, client);
            thread::spawn(move || {
                let started = Instant::now();
                let mut passed = 0;
                let mut buffer = [0u8; 4 * 1024];
                loop {
                    let want = match pace {
                        Pace::StallAfter(limit) if passed >= limit => break,
                        Pace::StallAfter(limit) => buffer.len().min(limit - passed),
                        Pace::CloseAfter(limit) if passed >= limit => {
                            let _ = to_client.shutdown(Shutdown::Both);
                            let _ = from_server.shutdown(Shutdown::Both);
                            return;
                        }
                        Pace::CloseAfter(limit) => buffer.len().min(limit - passed),
                        Pace::KibPerSecond(_) => buffer.len(),
                    };
                    match from_server.read(&mut buffer[..want]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if to_client.write_all(&buffer[..n]).is_err() {
                                return;
                            }
                            passed += n;
                        }
                    }
                    if let Pace::KibPerSecond(rate) = pace {
                        let due = Duration::from_secs_f64(passed as f64 / (rate as f64 * 1024.0));
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            thread::sleep(wait);
                        }
                    }
                }
                // Silent from here on, until the client gives up.
                let _ = wait_for_client.recv();
            });
        }
    });
    port
}

/// Points known_hosts of `env` at a relay to the shared sshd; returns the
/// INI that uses it, for the test to adjust and write.
fn through_relay(env: &TestEnv, pace: Pace) -> Ini {
    let sshd = env.sshd();
    let relay = relay(sshd.port, pace);
    let line =
        sshd.known_hosts_line()
            .replacen(&format!(":{} ", sshd.port), &format!(":{relay} "), 1);
    env.write_known_hosts(&line);
    env.ini().set("server", "port", relay.to_string())
}

#[test]
fn silent_server_mid_transfer_times_out() {
    let env = TestEnv::sftp("silent_server_mid_transfer_times_out");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", noise(31, 2 * 1024 * 1024))
        .publish();
    env.sync().assert_code(Code::Success);
    let before = env.store_tree();

    env.repo()
        .write("packages/big/big.msi", noise(32, 4 * 1024 * 1024))
        .publish();
    env.write_ini(&through_relay(&env, Pace::StallAfter(1024 * 1024)).set("sync", "timeout", "2"));

    let out = env.sync();
    let message = env.assert_failed(&out, Code::Timeout);
    assert!(
        out.elapsed < Duration::from_secs(15),
        "took {:?}",
        out.elapsed
    );
    assert!(
        message.to_lowercase().contains("timeout") || message.contains("no progress"),
        "{message}"
    );
    // The server is gone; the upload does not wait for it
    // twice more, and says so.
    let log = std::fs::read_to_string(env.state().join("wpkgsync.log")).unwrap();
    assert!(
        log.contains("report upload skipped: the session with the server ended (exit 207)"),
        "{log}"
    );
    let mut after = env.store_tree();
    let temps: Vec<String> = after.temp_files().into_iter().map(String::from).collect();
    assert!(
        matches!(temps.as_slice(), [temp] if temp.starts_with("packages/big/.wpkgsync-tmp-")
            && temp.ends_with("-big.msi")),
        "the interrupted download was not kept for resuming: {temps:?}"
    );
    after.0.retain(|path, _| !temps.contains(path));
    crate::support::tree::assert_unchanged(&before, &after, "the store");
    let partial = env.store().join(&temps[0]);

    // Back to the real server: the run completes, and the partial download is
    // gone once the file is in place.
    env.write_known_hosts(&env.sshd().known_hosts_line());
    env.write_ini(&env.ini());
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(!partial.exists());
}

/// At 100 KiB/s, a file of far more than `timeout` seconds
/// of data arrives whole, with a 3-second timeout. Before, every range request
/// had its own timer from the moment it was sent, all at once, so the last of
/// them timed out while the link was busy with the first.
#[test]
fn a_slow_steady_link_is_progress() {
    let env = TestEnv::sftp("a_slow_steady_link_is_progress");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", noise(33, 700 * 1024))
        .publish();
    env.write_ini(&through_relay(&env, Pace::KibPerSecond(100)).set("sync", "timeout", "3"));

    let out = env.sync();
    out.assert_code(Code::Success);
    assert!(
        out.elapsed > Duration::from_secs(6),
        "the relay was not slow: {:?}",
        out.elapsed
    );
    env.assert_store_mirrors_repo();
}

/// The same slow link with `sync.deadline` shorter than the transfer: the run
/// ends 207 at the deadline, naming the key, and keeps its partial download.
#[test]
fn a_run_past_its_deadline_ends_207() {
    let env = TestEnv::sftp("a_run_past_its_deadline_ends_207");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", noise(34, 1536 * 1024))
        .publish();
    env.write_ini(
        &through_relay(&env, Pace::KibPerSecond(100))
            .set("sync", "timeout", "3")
            .set("sync", "deadline", "3"),
    );

    let out = env.sync();
    let message = env.assert_failed(&out, Code::Timeout);
    assert!(message.contains("sync.deadline"), "{message}");
    assert!(
        out.elapsed < Duration::from_secs(12),
        "took {:?}",
        out.elapsed
    );
    let log = std::fs::read_to_string(env.state().join("wpkgsync.log")).unwrap();
    assert!(log.contains("report upload skipped"), "{log}");
    assert!(
        partial_of(&env, "packages/big", "big.msi").is_some(),
        "the partial download was not kept"
    );
    // The deadline may have cut other files short too: every partial stays.
    for temp in env.store_tree().temp_files() {
        std::fs::remove_file(env.store().join(temp)).unwrap();
    }
}

/// a folder source whose file turned into a FIFO (or a
/// share that hangs) must not hang the run. Before, opening the FIFO waited
/// for a writer for ever, on the runtime's own thread, so not even the
/// timeout could end the run. Now it is refused at once, by name, and the
/// rest of the repository is applied.
#[test]
fn a_fifo_in_a_folder_source_is_refused_not_waited_for() {
    let env = TestEnv::local("a_fifo_in_a_folder_source_is_refused_not_waited_for");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/app/setup.msi", noise(35, 64 * 1024))
        .publish();
    let fifo = env.repo().path("packages/app/setup.msi");
    std::fs::remove_file(&fifo).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    env.write_ini(&env.ini().set("sync", "timeout", "3"));

    let out = env.sync();
    let message = env.assert_failed(&out, Code::Partial);
    assert!(message.contains("not a regular file"), "{message}");
    assert!(message.contains("setup.msi"), "{message}");
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?}",
        out.elapsed
    );
    assert!(env.store().join("config.xml").is_file());
    std::fs::remove_file(&fifo).unwrap();
}

/// a server lost mid-transfer ends the run 201 at once,
/// and the report upload, which could only fail against it, is skipped with
/// one line instead of tried.
#[test]
fn a_server_lost_mid_transfer_gets_no_upload_attempt() {
    let env = TestEnv::sftp("a_server_lost_mid_transfer_gets_no_upload_attempt");
    env.repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/big/big.msi", noise(36, 2 * 1024 * 1024))
        .publish();
    env.write_ini(&through_relay(&env, Pace::CloseAfter(512 * 1024)).set("sync", "timeout", "5"));

    let out = env.sync();
    env.assert_failed(&out, Code::Unreachable);
    let log = std::fs::read_to_string(env.state().join("wpkgsync.log")).unwrap();
    assert!(
        log.contains("report upload skipped: the session with the server ended (exit 201)"),
        "{log}"
    );
    assert!(
        std::fs::read_dir(env.reports()).unwrap().next().is_none(),
        "something was uploaded"
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    if let Some(partial) = partial_of(&env, "packages/big", "big.msi") {
        std::fs::remove_file(partial).unwrap();
    }
}

/// A server that goes silent while many files are queued ends the run once,
/// about `timeout` after the last byte, not once per batch of files: the
/// session, found silent, fails every later request at once.
#[test]
fn a_silent_server_ends_the_run_once_not_once_per_file() {
    let env = TestEnv::sftp("a_silent_server_ends_the_run_once_not_once_per_file");
    let repo = env.repo();
    repo.write("config.xml", "<config />\r\n");
    for n in 0..64 {
        repo.write(
            &format!("packages/many/f{n:02}.bin"),
            noise(100 + n, 32 * 1024),
        );
    }
    repo.publish();
    env.write_ini(&through_relay(&env, Pace::StallAfter(256 * 1024)).set("sync", "timeout", "2"));

    let out = env.sync();
    env.assert_failed(&out, Code::Timeout);
    assert!(
        out.elapsed < Duration::from_secs(5),
        "took {:?}",
        out.elapsed
    );
    for temp in env.store_tree().temp_files() {
        std::fs::remove_file(env.store().join(temp)).unwrap();
    }
}

/// The partial download of `name` in the store folder `folder`, whatever
/// unpredictable name it was given.
fn partial_of(env: &TestEnv, folder: &str, name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(env.store().join(folder))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file.starts_with(".wpkgsync-tmp-") && file.ends_with(&format!("-{name}"))
        })
}
