//! A server that goes silent mid-transfer: the run ends 207 after `timeout`
//! seconds without progress, the store keeps its old copy, and the partial
//! download waits, hidden, for the next run.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use wpkgsync::exit::Code;

use crate::support::{TestEnv, noise};

/// A TCP relay to the shared sshd that forwards both ways until `stall_after`
/// bytes went from the server to the client, then keeps the connection open
/// and passes nothing more: a server that hangs without closing.
fn stalling_relay(target: u16, stall_after: usize) -> u16 {
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
                let mut passed = 0;
                let mut buffer = [0u8; 16 * 1024];
                while passed < stall_after {
                    let want = buffer.len().min(stall_after - passed);
                    match from_server.read(&mut buffer[..want]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if to_client.write_all(&buffer[..n]).is_err() {
                                return;
                            }
                            passed += n;
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
    let sshd = env.sshd();
    let relay = stalling_relay(sshd.port, 1024 * 1024);
    let line =
        sshd.known_hosts_line()
            .replacen(&format!(":{} ", sshd.port), &format!(":{relay} "), 1);
    env.write_known_hosts(&line);
    env.write_ini(
        &env.ini()
            .set("server", "port", relay.to_string())
            .set("sync", "timeout", "2"),
    );

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
    env.write_known_hosts(&sshd.known_hosts_line());
    env.write_ini(&env.ini());
    env.sync().assert_code(Code::Success);
    env.assert_store_mirrors_repo();
    assert!(!partial.exists());
}
