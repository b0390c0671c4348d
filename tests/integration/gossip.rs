//! Gossip on loopback: the pulse after a sync, `publish --announce`, and real
//! `wpkgsync listen` processes (each with its own INI, store and state, syncing
//! from a local folder) that receive, verify, sync and relay.
//!
//! Datagrams are counted from both ends: what each sender logged it sent, and
//! what each listener logged it received, one line per datagram. Every address
//! is in 127.0.0.0/8; each test takes its own free port.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use wpkgsync::exit::Code;
use wpkgsync::gossip::datagram::{Datagram, MAX_DATAGRAM, Message};
use wpkgsync::gossip::pulse::SignedRecord;
use wpkgsync::store::state::State;
use wpkgsync::store::state_dir::StateDir;

use crate::support::TestEnv;
use crate::support::env::Ini;

/// How long a listener may take to start, and a wave to settle.
const PATIENCE: Duration = Duration::from_secs(120);

fn ip(c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, c, d))
}

/// A UDP port free on 127.0.0.1 at the time of asking.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// A socket standing in for a peer, with a short read timeout.
fn peer_socket(addr: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    socket
}

/// Every datagram that arrives at `socket` within `quiet` of the last one.
fn drain(socket: &UdpSocket, quiet: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    let mut last = Instant::now();
    let mut buf = [0u8; 2048];
    while last.elapsed() < quiet {
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            got.push((from, buf[..len].to_vec()));
            last = Instant::now();
        }
    }
    got
}

/// The decoded pulses among `datagrams`, with their senders.
fn pulses(datagrams: &[(SocketAddr, Vec<u8>)]) -> Vec<(SocketAddr, Datagram, SignedRecord)> {
    datagrams
        .iter()
        .filter_map(|(from, bytes)| {
            let datagram = Datagram::decode(bytes).expect("a datagram of ours");
            let record = SignedRecord::from_message(datagram.message.clone())?;
            Some((*from, datagram, record))
        })
        .collect()
}

/// The signed timestamp record as published in `env`'s repository.
fn published(env: &TestEnv) -> SignedRecord {
    SignedRecord::read(&env.repo().meta()).expect("the published timestamp record")
}

fn accepted(env: &TestEnv) -> Option<u64> {
    State::load(&StateDir::new(env.state()))
        .ok()
        .and_then(|s| s.accepted_version)
}

fn version_of(record: &SignedRecord) -> u64 {
    let value: serde_json::Value = serde_json::from_slice(&record.record).expect("json");
    value["version"].as_u64().expect("a version")
}

/// Sends `bytes` to `to` from a fresh socket on `from` (port chosen by the system).
fn send_from(from: IpAddr, to: SocketAddr, bytes: &[u8]) {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).expect("bind a sender");
    socket.send_to(bytes, to).expect("send");
}

/// Waits until `done` holds, panicking with `what` and `context()` past `PATIENCE`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", context());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The INI of a gossiping client of `env`, syncing from the folder `source`.
fn gossip_ini(env: &TestEnv, source: &Path, port: u16, peers: &str) -> Ini {
    env.ini()
        .set("server", "remote", source.to_str().expect("utf-8 path"))
        .set("gossip", "peers", peers)
        .set("gossip", "port", port.to_string())
        .set("gossip", "spread", "yes")
        .set("gossip", "ttl", "2")
        .set("gossip", "jitter", "0")
}

/// A running `wpkgsync listen`, stopped when dropped. Its stderr goes to a file
/// that the test reads as it grows.
struct Listener {
    child: Child,
    stderr: PathBuf,
    addr: SocketAddr,
}

impl Listener {
    fn start(env: &TestEnv, bind: IpAddr, port: u16) -> Listener {
        Listener::spawn(env, Some(bind), port)
    }

    /// Without `--bind` when `bind` is `None`; `addr` then says 127.0.0.1.
    fn spawn(env: &TestEnv, bind: Option<IpAddr>, port: u16) -> Listener {
        let stderr = env.tmp().join("listen.stderr");
        let file = fs::File::create(&stderr).expect("create the listener's stderr file");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wpkgsync"));
        command.arg("listen").arg("--config").arg(env.ini_path());
        if let Some(bind) = bind {
            command.arg("--bind").arg(bind.to_string());
        }
        let bind = bind.unwrap_or(ip(0, 1));
        let child = command
            .current_dir(env.cwd())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start wpkgsync listen");
        Listener {
            child,
            stderr,
            addr: SocketAddr::new(bind, port),
        }
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn count(&self, pattern: &str) -> usize {
        self.text().lines().filter(|l| l.contains(pattern)).count()
    }

    /// Waits for the line that says it listens and has asked its peers.
    fn wait_ready(&mut self, asks_peers: bool) {
        let marker = if asks_peers {
            "have of version"
        } else {
            "listening on"
        };
        let deadline = Instant::now() + PATIENCE;
        while self.count(marker) == 0 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("listener {} ended: {status}\n{}", self.addr, self.text());
            }
            assert!(
                Instant::now() < deadline,
                "listener {} not ready:\n{}",
                self.addr,
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Datagrams sent, per line matching `pattern`: the N of "sent to N of M peers".
    fn sent(&self, pattern: &str) -> usize {
        sent_counts(&self.text(), pattern)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sums the N of "sent to N of M peers" over the lines containing `pattern`.
fn sent_counts(text: &str, pattern: &str) -> usize {
    text.lines()
        .filter(|l| l.contains(pattern))
        .map(|l| {
            let after = l.split("sent to ").nth(1).expect("a sent-to count");
            after
                .split(' ')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .expect("a number of peers")
        })
        .sum()
}

/// Lines of a listener's stderr that stand for one received pulse datagram.
const RECEIVED: [&str; 3] = ["pulse of version", "is not newer than", "pulse refused"];

fn received_pulses(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("from ") && RECEIVED.iter().any(|p| l.contains(p)))
        .count()
}

#[test]
fn a_sync_pulses_its_peers_with_the_record_it_verified() {
    let env = TestEnv::local("a_sync_pulses_its_peers_with_the_record_it_verified");
    env.repo().write_sample().publish();
    let port = free_port();
    let peer = peer_socket(SocketAddr::new(ip(0, 80), port));
    let ini = gossip_ini(
        &env,
        env.repo().root(),
        port,
        "127.0.0.80, 127.0.0.81:notaport",
    )
    .set("gossip", "spread", "no")
    .set("gossip", "ttl", "5");
    env.write_ini(&ini);

    let out = env.sync();
    out.assert_code(Code::Success);
    assert!(
        out.elapsed < Duration::from_secs(20),
        "the sync took {:?}",
        out.elapsed
    );

    let got = pulses(&drain(&peer, Duration::from_millis(500)));
    assert_eq!(got.len(), 1, "expected one pulse\n{out}");
    let (_, datagram, record) = &got[0];
    assert_eq!(*record, published(&env), "not the record as published");
    assert_eq!((datagram.spread, datagram.ttl), (false, 5));
    let log = fs::read_to_string(env.state().join("wpkgsync.log")).expect("the local log");
    assert!(
        log.contains(&format!(
            "pulse of version {}: sent to 1 of 2 peers",
            version_of(record)
        )),
        "the send is not logged:\n{log}"
    );
    assert!(
        log.contains("notaport"),
        "the bad peer is not named:\n{log}"
    );
}

#[test]
fn a_failed_sync_sends_no_pulse() {
    let env = TestEnv::local("a_failed_sync_sends_no_pulse");
    env.repo().write_sample().publish();
    let port = free_port();
    let peer = peer_socket(SocketAddr::new(ip(0, 82), port));
    env.write_ini(&gossip_ini(&env, env.repo().root(), port, "127.0.0.82"));
    let sig = env.repo().meta().join("timestamp.json.sig");
    let mut bytes = fs::read(&sig).expect("signature");
    bytes[10] ^= 0xFF;
    fs::write(&sig, bytes).expect("write signature");

    env.assert_failed(&env.sync(), Code::ManifestInvalid);

    assert!(drain(&peer, Duration::from_millis(500)).is_empty());
}

#[test]
fn publish_announce_sends_the_new_version_to_the_configured_peers() {
    let env = TestEnv::local("publish_announce_sends_the_new_version_to_the_configured_peers");
    let port = free_port();
    let peer = peer_socket(SocketAddr::new(ip(0, 83), port));
    // A server's INI may hold nothing but the [gossip] section.
    let ini = env.tmp().join("server.ini");
    fs::write(
        &ini,
        format!("[gossip]\npeers = 127.0.0.83\nport = {port}\nttl = 4\n"),
    )
    .expect("write the INI");

    let out = env.repo().write_sample().publish_with(&[
        "--announce",
        "--config",
        ini.to_str().expect("utf-8"),
    ]);

    let record = published(&env);
    let version = version_of(&record);
    assert!(
        out.stdout.contains(&format!(
            "announced version {version}: sent to 1 of 1 peers"
        )),
        "{out}"
    );
    let got = pulses(&drain(&peer, Duration::from_millis(500)));
    assert_eq!(got.len(), 1);
    let (_, datagram, sent) = &got[0];
    assert_eq!(*sent, record);
    assert_eq!((datagram.spread, datagram.ttl), (true, 4));
}

#[test]
fn publish_announce_without_its_ini_publishes_nothing() {
    let env = TestEnv::local("publish_announce_without_its_ini_publishes_nothing");
    env.repo().write_sample();
    let out = crate::support::run::wpkgsync()
        .arg("publish")
        .arg("--repo")
        .arg(env.repo().root())
        .arg("--key")
        .arg(&crate::support::publisher().private)
        .arg("--announce")
        .arg("--config")
        .arg(env.tmp().join("absent.ini"))
        .run();
    out.assert_code(Code::IniMissing);
    assert!(!env.repo().meta().exists(), "published anyway\n{out}");
}

#[test]
fn listen_on_a_port_in_use_names_the_key() {
    let env = TestEnv::local("listen_on_a_port_in_use_names_the_key");
    let port = free_port();
    let _taken = peer_socket(SocketAddr::new(ip(0, 84), port));
    env.write_ini(&gossip_ini(&env, env.repo().root(), port, ""));

    let out = env.run(
        env.command()
            .arg("listen")
            .arg("--config")
            .arg(env.ini_path())
            .arg("--bind")
            .arg("127.0.0.84"),
    );

    let line = env.assert_failed(&out, Code::IniInvalid);
    assert!(line.contains("gossip.port"), "{line}");
}

#[test]
fn forged_old_truncated_and_garbled_pulses_cause_no_sync_and_no_relay() {
    let env = TestEnv::local("forged_old_truncated_and_garbled_pulses_cause_no_sync_and_no_relay");
    let repo = env.repo();
    let port = free_port();
    env.write_ini(&gossip_ini(&env, repo.root(), port, "127.0.0.71"));
    repo.write_sample().publish();
    let oldest = published(&env);
    repo.write("packages/7zip/readme.txt", "v2\r\n").publish();
    env.sync().assert_code(Code::Success);
    let current = published(&env);
    repo.write("packages/7zip/readme.txt", "v3\r\n").publish();
    let newest = published(&env);
    let (v1, v2) = (version_of(&current), version_of(&newest));
    assert_eq!(accepted(&env), Some(v1));

    let peer = peer_socket(SocketAddr::new(ip(0, 71), port));
    let mut listener = Listener::start(&env, ip(0, 70), port);
    listener.wait_ready(true);
    // On start it asks its peers, with a have of its version.
    let asked = drain(&peer, Duration::from_millis(300));
    let haves: Vec<_> = asked
        .iter()
        .map(|(_, b)| Datagram::decode(b).expect("a datagram").message)
        .collect();
    assert_eq!(haves, [Message::Have { version: v1 }]);

    let good = newest.datagram(true, 2).expect("a pulse");
    let forged = {
        let text = String::from_utf8(newest.record.clone()).expect("utf-8");
        let raised = text.replace(&v2.to_string(), &(v2 + 1000).to_string());
        SignedRecord {
            record: raised.into_bytes(),
            signature: newest.signature.clone(),
        }
        .datagram(true, 2)
        .expect("a pulse")
    };
    let flip = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x55;
        bytes
    };
    let mut bad_have = Datagram::have(v2).encode().expect("a have");
    bad_have[12] ^= 1;
    let mut oversized = good.clone();
    oversized.resize(MAX_DATAGRAM + 50, b' ');
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("forged version", forged),
        ("old record", oldest.datagram(true, 2).expect("a pulse")),
        (
            "current record",
            current.datagram(true, 2).expect("a pulse"),
        ),
        ("truncated header", good[..7].to_vec()),
        ("truncated record", good[..200].to_vec()),
        ("truncated signature", good[..good.len() - 1].to_vec()),
        ("one byte more", [good.as_slice(), &[0]].concat()),
        ("oversized", oversized),
        ("garbled magic", flip(1)),
        ("garbled protocol", flip(4)),
        ("garbled type", flip(5)),
        ("garbled flags", flip(6)),
        ("garbled length", flip(9)),
        ("garbled record", flip(40)),
        ("garbled signature", flip(good.len() - 20)),
        ("have with a bad CRC", bad_have),
        ("empty", Vec::new()),
    ];
    // Each from its own address: one sender would hit its rate limit.
    for (n, (_, bytes)) in bad.iter().enumerate() {
        send_from(ip(1, 1 + n as u8), listener.addr, bytes);
    }
    wait_until(
        "every bad datagram to be logged",
        || listener.count(": ignored: ") >= bad.len(),
        || listener.text(),
    );
    thread::sleep(Duration::from_millis(300));

    let text = listener.text();
    assert_eq!(listener.count(": ignored: "), bad.len(), "{text}");
    for (n, (what, _)) in bad.iter().enumerate() {
        let from = format!("from 127.0.1.{}:", 1 + n);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&from) && l.contains("ignored")),
            "{what} is not logged as ignored:\n{text}"
        );
    }
    assert_eq!(listener.count("sync started"), 0, "{text}");
    assert_eq!(listener.count("relayed"), 0, "{text}");
    assert!(
        drain(&peer, Duration::from_millis(300)).is_empty(),
        "{text}"
    );
    assert_eq!(accepted(&env), Some(v1));

    // The listener still works: the genuine pulse is synced for and relayed
    // once, and a repeat of it does nothing.
    send_from(ip(1, 200), listener.addr, &good);
    wait_until(
        "the sync of the genuine pulse",
        || listener.count("sync ended") == 1,
        || listener.text(),
    );
    assert_eq!(accepted(&env), Some(v2), "{}", listener.text());
    send_from(ip(1, 201), listener.addr, &good);
    wait_until(
        "the repeat to be logged",
        || listener.count("is not newer than") == 2,
        || listener.text(),
    );
    let got = pulses(&drain(&peer, Duration::from_millis(500)));
    let relays: Vec<_> = got
        .iter()
        .filter(|(from, _, _)| *from == listener.addr)
        .collect();
    assert_eq!(relays.len(), 1, "{}", listener.text());
    assert_eq!(relays[0].1.ttl, 1);
    assert_eq!(relays[0].2, newest);
    assert_eq!(listener.count("sync started"), 1);

    // A peer that reports an older version gets the newest pulse back, with
    // nothing left to relay; an address that is no peer gets nothing.
    let have = Datagram::have(v1).encode().expect("a have");
    peer.send_to(&have, listener.addr).expect("send a have");
    let answers = pulses(&drain(&peer, Duration::from_millis(500)));
    assert_eq!(answers.len(), 1, "{}", listener.text());
    let (from, answer, record) = &answers[0];
    assert_eq!(*from, listener.addr);
    assert_eq!((answer.spread, answer.ttl), (false, 0));
    assert_eq!(*record, newest);
    send_from(ip(1, 202), listener.addr, &have);
    wait_until(
        "the stranger's have to be logged",
        || listener.count("not a configured peer") == 1,
        || listener.text(),
    );
    assert!(drain(&peer, Duration::from_millis(300)).is_empty());
}

#[test]
fn one_pulse_reaches_fifty_listeners_and_each_relays_at_most_once() {
    const NODES: usize = 50;
    let origin = TestEnv::local("one_pulse_reaches_fifty_listeners_origin");
    origin
        .repo()
        .write("config.xml", "<config />\r\n")
        .write("packages/tool/tool.msi", crate::support::noise(70, 3_000))
        .publish();
    let record = published(&origin);
    let version = version_of(&record);
    let port = free_port();
    let address = |n: usize| ip(0, 10 + n as u8);
    // A tree of three children per node, plus one edge across it, so that
    // some nodes hear the version twice and must not relay it twice.
    let peers_of = |n: usize| {
        let mut peers: Vec<usize> = (3 * n + 1..=3 * n + 3).filter(|&c| c < NODES).collect();
        let across = (7 * n + 3) % NODES;
        if across != n && !peers.contains(&across) {
            peers.push(across);
        }
        peers
            .iter()
            .map(|&p| address(p).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };

    let envs: Vec<TestEnv> = (0..NODES)
        .map(|n| {
            let env = TestEnv::local(&format!("one_pulse_reaches_fifty_listeners_{n}"));
            env.write_ini(&gossip_ini(&env, origin.repo().root(), port, &peers_of(n)));
            env
        })
        .collect();
    let mut listeners: Vec<Listener> = envs
        .iter()
        .enumerate()
        .map(|(n, env)| Listener::start(env, address(n), port))
        .collect();
    for listener in &mut listeners {
        listener.wait_ready(true);
    }

    // The publisher's announcement, to the root only; TTL 4 reaches the
    // deepest level of the tree by relays alone.
    let started = Instant::now();
    send_from(
        ip(0, 1),
        listeners[0].addr,
        &record.datagram(true, 4).expect("a pulse"),
    );

    let summary = || {
        listeners
            .iter()
            .map(|l| format!("--- {}\n{}", l.addr, l.text()))
            .collect::<String>()
    };
    let sync_logs = || -> String {
        envs.iter()
            .map(|e| fs::read_to_string(e.state().join("wpkgsync.log")).unwrap_or_default())
            .collect()
    };
    // Sent: the announcement, every relay, every pulse after a sync (logged by
    // the sync in the local log as "] pulse of version").
    let sent = || {
        1 + listeners
            .iter()
            .map(|l| l.sent("relayed version"))
            .sum::<usize>()
            + sent_counts(&sync_logs(), "] pulse of version")
    };
    let received = || {
        listeners
            .iter()
            .map(|l| received_pulses(&l.text()))
            .sum::<usize>()
    };
    wait_until(
        "every listener to sync and every datagram to arrive",
        || {
            envs.iter().all(|e| accepted(e) == Some(version))
                && listeners.iter().all(|l| l.count("sync ended") == 1)
                && received() == sent()
        },
        summary,
    );
    let wave = started.elapsed();
    thread::sleep(Duration::from_millis(500));

    let (sent, received) = (sent(), received());
    assert_eq!(sent, received, "datagrams sent and received differ");
    let relays: Vec<usize> = listeners
        .iter()
        .map(|l| l.count("relayed version"))
        .collect();
    for (n, listener) in listeners.iter().enumerate() {
        assert_eq!(
            listener.count("sync started"),
            1,
            "listener {n}\n{}",
            listener.text()
        );
        assert!(relays[n] <= 1, "listener {n} relayed {} times", relays[n]);
        assert_eq!(listener.count("pulse of version"), 1, "{}", listener.text());
        assert_eq!(listener.count("ignored: pulse refused"), 0);
    }
    // Every relayed datagram was sent with one TTL less than it arrived with.
    let relayed: usize = listeners.iter().map(|l| l.sent("relayed version")).sum();
    println!(
        "{NODES} listeners: {received} pulse datagrams (1 announcement, {relayed} relays from {} listeners, {} after syncs), all synced in {wave:?}",
        relays.iter().sum::<usize>(),
        received - 1 - relayed
    );
}

/// A flood of 16 000 ten-byte datagrams from 200 addresses
/// writes a small, bounded number of lines (before: 12 204), and the listener
/// still acts on a genuine pulse afterwards.
#[test]
fn a_flood_of_garbage_cannot_fill_the_log() {
    let env = TestEnv::local("a_flood_of_garbage_cannot_fill_the_log");
    let repo = env.repo();
    let port = free_port();
    env.write_ini(&gossip_ini(&env, repo.root(), port, "127.0.5.2"));
    repo.write_sample().publish();
    env.sync().assert_code(Code::Success);
    repo.write("packages/7zip/readme.txt", "v2\r\n").publish();
    let newest = published(&env);

    let mut listener = Listener::start(&env, ip(5, 1), port);
    listener.wait_ready(true);
    let before = listener.text().lines().count();
    let senders: Vec<UdpSocket> = (1..=200)
        .map(|d| UdpSocket::bind(SocketAddr::new(ip(6, d), 0)).expect("bind a sender"))
        .collect();
    for n in 0..16_000usize {
        let garbage = [n as u8; 10];
        let _ = senders[n % senders.len()].send_to(&garbage, listener.addr);
    }
    // Let the listener drain its socket and the global budget refill.
    thread::sleep(Duration::from_secs(2));
    let flood_lines = listener.text().lines().count() - before;
    assert!(
        flood_lines <= 40,
        "{flood_lines} lines for the flood:\n{}",
        listener.text()
    );
    assert!(
        listener.text().contains("counted, not logged"),
        "{}",
        listener.text()
    );

    send_from(
        ip(7, 1),
        listener.addr,
        &newest.datagram(true, 2).expect("a pulse"),
    );
    wait_until(
        "the sync of the genuine pulse",
        || listener.count("sync ended") == 1,
        || listener.text(),
    );
    assert_eq!(
        accepted(&env),
        Some(version_of(&newest)),
        "{}",
        listener.text()
    );
    let log = fs::read_to_string(env.state().join("wpkgsync.log")).unwrap_or_default();
    assert!(
        log.lines().count() < 100,
        "{} log lines",
        log.lines().count()
    );
}

/// Without `--bind`, the listener binds the local address
/// through which it reaches its peers (127.0.0.1 for peers on loopback), not
/// every interface; with no peers to judge by it asks for `--bind`.
#[test]
fn without_bind_the_listener_binds_the_address_facing_its_peers() {
    let env = TestEnv::local("without_bind_the_listener_binds_the_address_facing_its_peers");
    let port = free_port();
    env.write_ini(&gossip_ini(&env, env.repo().root(), port, "127.0.5.9"));
    env.repo().write_sample().publish();
    let mut listener = Listener::spawn(&env, None, port);
    listener.wait_ready(false);
    assert!(
        listener
            .text()
            .contains(&format!("listening on 127.0.0.1:{port}")),
        "{}",
        listener.text()
    );
    drop(listener);

    env.write_ini(&gossip_ini(&env, env.repo().root(), port, ""));
    let out = env.run(
        env.command()
            .arg("listen")
            .arg("--config")
            .arg(env.ini_path()),
    );
    let line = env.assert_failed(&out, Code::IniInvalid);
    assert!(
        line.contains("gossip.peers") && line.contains("--bind"),
        "{line}"
    );
}
