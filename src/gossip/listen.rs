//! `wpkgsync listen`: the resident loop that receives datagrams on
//! `gossip.port`, lets a [`Node`] decide, and does what it decided: log, relay,
//! answer, and start one sync at a time after a random delay.
//!
//! A sync is the same executable run with the same INI (`--config FILE --quiet`)
//! as a child process, so it takes the run lock, verifies everything and writes
//! the state file exactly as a scheduled run does; afterwards the listener reads
//! the accepted version back from that file. The loop runs until the process is
//! stopped; a failed receive (Windows reports an ICMP "port unreachable" of an
//! earlier send this way) is logged and the loop goes on.
//!
//! Nothing a sender does can fill the disk: all datagrams together pass a
//! global rate limit before anything is decoded, each sender has its own
//! (the node's), and lines about ignored datagrams have a budget per minute,
//! past which they are counted and summed up in one line. Without `--bind`
//! the listener binds only the local address through which it reaches its
//! configured peers.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::clock::now_unix;
use crate::config::Config;
use crate::error::Error;
use crate::exit::Outcome;
use crate::runlog::RunLog;
use crate::startup;
use crate::store::state::State;

use super::datagram::Datagram;
use super::ignored::{IgnoredLog, LINES_PER_PERIOD};
use super::imp;
use super::node::{Action, Ignored, Node};
use super::pulse::SignedRecord;
use super::send::{self, Resolved, SEND_BOUND, SendReport};

/// How often quiet senders are forgotten and ignored datagrams summed up.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Datagrams from all senders together, per second, before any decoding.
const GLOBAL_PER_SECOND: u32 = 50;
/// Datagrams from all senders together at once.
const GLOBAL_BURST: u32 = 100;
/// Why a datagram over the global limit was ignored, for the summary.
const OVER_GLOBAL: &str = "over the listener's rate limit";
/// The largest payload of a UDP datagram over IPv4.
const MAX_UDP: usize = 65_507;
/// The state file is read again at most this often between syncs.
const STATE_REFRESH: Duration = Duration::from_secs(1);
/// How long past `sync.deadline` a sync child may take to end on its own
/// (ACL repair, state file) before the listener stops it.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// Runs the listener with the INI at `ini`, on `bind` (when `None`, the local
/// address that reaches the configured peers) and `gossip.port`. Returns
/// only on a fatal error.
pub(crate) async fn listen(
    ini: PathBuf,
    bind: Option<IpAddr>,
    log: &mut RunLog,
) -> Result<Outcome, Error> {
    // The syncs it starts must run elevated, with the same trust in its own
    // files as a sync: say so now rather than at the first pulse.
    let (config, warnings) = startup::load_trusted(&ini, log)?;
    let key = startup::pinned_key(&config)?;
    let bind = match bind {
        Some(bind) => bind,
        None => {
            let deadline = Instant::now() + SEND_BOUND;
            let peers = send::resolve(&config.gossip.peers, config.gossip.port, deadline).await;
            facing(&peers).map_err(|why| Error::Setting {
                key: "gossip.peers",
                source: why.into(),
            })?
        }
    };
    let local = SocketAddr::new(bind, config.gossip.port);
    let socket = bind_socket(local).await.map_err(|e| Error::Setting {
        key: "gossip.port",
        source: Box::new(e),
    })?;
    let state = State::load(&config.sync.state)?;
    let mut listener = Listener {
        node: Node::new(key, config.gossip.spread, state.accepted_version),
        socket,
        ini,
        config,
        log,
        state_read: Instant::now(),
        due: None,
        running: None,
        limited: HashSet::new(),
        global: RateLimiter::direct(global_quota()),
        ignored: IgnoredLog::new(LINES_PER_PERIOD),
    };
    for warning in &warnings {
        listener.say(&format!("warning: {warning}"));
    }
    listener.run(local, state.accepted_version).await
}

/// Datagrams of all senders together: a burst of [`GLOBAL_BURST`], then
/// [`GLOBAL_PER_SECOND`] a second.
fn global_quota() -> Quota {
    let per_second = NonZeroU32::new(GLOBAL_PER_SECOND).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(GLOBAL_BURST).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

/// The one local address through which this machine reaches `peers` (the
/// system's route, asked with an unconnected UDP socket, nothing sent).
/// No peers, one that does not resolve, or peers behind different local
/// addresses need an explicit `--bind`.
fn facing(peers: &[Resolved]) -> Result<IpAddr, String> {
    let hint = "pass --bind ADDR (0.0.0.0 for every IPv4 interface)";
    if peers.is_empty() {
        return Err(format!(
            "no peers to choose the interface to listen on by: {hint}"
        ));
    }
    let mut locals = std::collections::BTreeSet::new();
    for peer in peers {
        let addr = peer
            .addr
            .as_ref()
            .map_err(|why| format!("{}: {why}: {hint}", peer.peer))?;
        let unspecified: SocketAddr = if addr.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let local = std::net::UdpSocket::bind(unspecified)
            .and_then(|probe| {
                probe.set_broadcast(true)?;
                probe.connect(addr)?;
                probe.local_addr()
            })
            .map_err(|e| format!("no route to peer {}: {e}: {hint}", peer.peer))?;
        locals.insert(local.ip());
    }
    match locals.len() {
        1 => Ok(locals
            .into_iter()
            .next()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))),
        _ => {
            let shown: Vec<String> = locals.iter().map(IpAddr::to_string).collect();
            Err(format!(
                "the peers are reached through several local addresses ({}): {hint}",
                shown.join(", ")
            ))
        }
    }
}

async fn bind_socket(local: SocketAddr) -> std::io::Result<UdpSocket> {
    let context = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("failed to listen on UDP {local}: {e}"))
    };
    let socket = UdpSocket::bind(local).await.map_err(context)?;
    // Relays may go to broadcast addresses.
    socket.set_broadcast(true).map_err(context)?;
    Ok(socket)
}

/// How a sync child ended: its status, and whether the listener stopped it
/// at the deadline.
type Ended = (std::io::Result<ExitStatus>, bool);

/// The running sync child: its pid and the news of its end.
struct Child {
    pid: u32,
    ended: oneshot::Receiver<Ended>,
}

struct Listener<'a> {
    node: Node,
    socket: UdpSocket,
    ini: PathBuf,
    config: Config,
    log: &'a mut RunLog,
    state_read: Instant,
    /// When the waiting sync starts.
    due: Option<Instant>,
    running: Option<Child>,
    /// Senders over their rate limit since the last housekeeping, each
    /// logged once (within the budget).
    limited: HashSet<IpAddr>,
    /// All senders together, checked before anything else.
    global: DefaultDirectRateLimiter,
    /// What reaches the log about ignored datagrams.
    ignored: IgnoredLog,
}

impl Listener<'_> {
    /// Sets the next sync a random time within `jitter` from now, so that a
    /// pulse does not bring every client to the server at once; returns it.
    fn schedule_sync(&mut self) -> Duration {
        let jitter = self.config.gossip.jitter.as_millis();
        let delay = rand::thread_rng().gen_range(0..=jitter);
        let delay = Duration::from_millis(u64::try_from(delay).unwrap_or(u64::MAX));
        self.due = Some(Instant::now() + delay);
        delay
    }

    /// Logs a line to stderr and the local log.
    fn say(&mut self, text: &str) {
        eprintln!("{text}");
        self.log.line(text);
    }

    async fn run(mut self, local: SocketAddr, accepted: Option<u64>) -> Result<Outcome, Error> {
        if let Some(kept) = SignedRecord::kept(&self.config.sync.state) {
            self.node.hold(kept, now_unix());
        }
        let peers = self.resolve_peers().await;
        let gossip = &self.config.gossip;
        let line = format!(
            "listening on {local}: version {}, peers {}, spread {}, ttl {}, jitter {}s",
            shown(accepted),
            if gossip.peers.is_empty() {
                "none".to_owned()
            } else {
                gossip.peers.join(", ")
            },
            if gossip.spread { "yes" } else { "no" },
            gossip.ttl,
            gossip.jitter.as_secs()
        );
        self.say(&line);
        // Ask the peers whether a version passed by while this node was away.
        if let Ok(have) = Datagram::have(accepted.unwrap_or(0)).encode() {
            let deadline = Instant::now() + SEND_BOUND;
            let report = send::send_all(&self.socket, &peers, None, &have, deadline).await;
            if !peers.is_empty() {
                self.say(&format!(
                    "have of version {}: {}",
                    shown(accepted),
                    report.summary()
                ));
            }
        }

        // Room for any UDP datagram, so an oversized one is seen whole and
        // logged with its size (Windows fails a read into too small a buffer).
        let mut buf = vec![0u8; MAX_UDP];
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            let due = self.due;
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => self.receive(from, &buf[..len]).await,
                    Err(e) => {
                        self.say(&format!("receive failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = sleep_until(due) => {
                    self.due = None;
                    self.start_sync();
                }
                ended = child_end(&mut self.running) => self.sync_ended(ended),
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
    }

    async fn resolve_peers(&mut self) -> Vec<Resolved> {
        let deadline = Instant::now() + SEND_BOUND;
        let peers =
            send::resolve(&self.config.gossip.peers, self.config.gossip.port, deadline).await;
        self.node.set_peers(
            peers
                .iter()
                .filter_map(|r| r.addr.as_ref().ok())
                .map(|a| a.ip()),
        );
        peers
    }

    fn refresh_accepted(&mut self) {
        if self.state_read.elapsed() >= STATE_REFRESH {
            self.state_read = Instant::now();
            if let Ok(state) = State::load(&self.config.sync.state) {
                self.node.note_accepted(state.accepted_version);
            }
        }
    }

    /// Logs an ignored datagram if the budget allows, else only counts it.
    fn ignore(&mut self, reason: &'static str, line: impl FnOnce() -> String) {
        if let Some(line) = self.ignored.note(reason, line) {
            self.say(&line);
        }
    }

    async fn receive(&mut self, from: SocketAddr, bytes: &[u8]) {
        // Before anything is decoded: a flood from many addresses must not
        // cost more than a bounded amount of work.
        if self.global.check().is_err() {
            self.ignore(OVER_GLOBAL, || {
                format!("from {from}: ignored: {OVER_GLOBAL}")
            });
            return;
        }
        self.refresh_accepted();
        let known = self.node.known();
        match self.node.receive(from, bytes, now_unix()) {
            Action::Ignore(Ignored::RateLimited) => {
                let first = self.limited.insert(from.ip());
                let reason = Ignored::RateLimited.reason();
                if first {
                    self.ignore(reason, || {
                        format!(
                            "from {from}: ignored: {}; more from it are counted, not logged",
                            Ignored::RateLimited
                        )
                    });
                } else {
                    self.ignored.count(reason);
                }
            }
            Action::Ignore(why) => {
                self.ignore(why.reason(), || format!("from {from}: ignored: {why}"));
            }
            Action::Newer {
                version,
                ttl,
                sync,
                relay,
            } => {
                self.say(&format!(
                    "from {from}: pulse of version {version}, ttl {ttl}: newer than {}",
                    shown(known)
                ));
                if sync {
                    let delay = self.schedule_sync();
                    self.say(&format!(
                        "sync for version {version} starts in {:.1}s",
                        delay.as_secs_f64()
                    ));
                } else {
                    self.say(&format!(
                        "a sync is already waiting or running; version {version} comes next"
                    ));
                }
                if let Some(relay) = relay {
                    let report = self.relay(from, &relay).await;
                    self.say(&format!(
                        "relayed version {version} with ttl {}: {}",
                        ttl - 1,
                        report.summary()
                    ));
                }
            }
            Action::Answer {
                theirs,
                ours,
                pulse,
            } => {
                let result = self.socket.send_to(&pulse, from).await;
                let how = match result {
                    Ok(_) => "sent".to_owned(),
                    Err(e) => format!("failed: {e}"),
                };
                self.say(&format!(
                    "from {from}: have of version {theirs}: answered with the pulse of version {ours}: {how}"
                ));
            }
        }
    }

    /// Sends `relay` to every peer but `from`: from the listening socket, so
    /// receivers see this node's address, except to peers of the other IP
    /// family, which get it from a fresh socket of theirs.
    async fn relay(&mut self, from: SocketAddr, relay: &[u8]) -> SendReport {
        let peers = self.resolve_peers().await;
        let deadline = Instant::now() + SEND_BOUND;
        let own_v4 = self.socket.local_addr().map_or(true, |a| a.is_ipv4());
        let (same, other): (Vec<Resolved>, Vec<Resolved>) = peers
            .into_iter()
            .partition(|p| p.addr.as_ref().map_or(true, |a| a.is_ipv4() == own_v4));
        let mut report = send::send_all(&self.socket, &same, Some(from), relay, deadline).await;
        if !other.is_empty() {
            // The other family: IPv6 when this socket is IPv4, and the reverse.
            match send::sending_socket(own_v4).await {
                Ok(socket) => {
                    let part = send::send_all(&socket, &other, Some(from), relay, deadline).await;
                    report.sent.extend(part.sent);
                    report.failed.extend(part.failed);
                }
                Err(e) => report.failed.extend(
                    other
                        .into_iter()
                        .map(|p| (p.peer, format!("failed to open a UDP socket: {e}"))),
                ),
            }
        }
        report
    }

    fn start_sync(&mut self) {
        let accepted = self.accepted_now();
        self.node.note_accepted(accepted);
        let Some(version) = self.node.sync_started() else {
            self.say(&format!(
                "version {} was accepted meanwhile: no sync needed",
                shown(accepted)
            ));
            return;
        };
        let limit = self.config.sync.deadline + DEADLINE_GRACE;
        match spawn_sync(&self.ini, limit) {
            Ok(child) => {
                self.say(&format!(
                    "sync started for version {version} (pid {})",
                    child.pid
                ));
                self.running = Some(child);
            }
            Err(e) => {
                self.say(&format!(
                    "failed to start a sync for version {version}: {e}"
                ));
                let accepted = self.accepted_now();
                self.node.sync_ended(accepted);
            }
        }
    }

    fn accepted_now(&mut self) -> Option<u64> {
        self.state_read = Instant::now();
        State::load(&self.config.sync.state)
            .ok()
            .and_then(|s| s.accepted_version)
    }

    fn sync_ended(&mut self, (ended, stopped): Ended) {
        let pid = self.running.take().map_or(0, |c| c.pid);
        let accepted = self.accepted_now();
        if stopped {
            self.say(&format!(
                "sync (pid {pid}) passed sync.deadline of {}s and was stopped",
                self.config.sync.deadline.as_secs()
            ));
        }
        let how = match ended {
            Ok(status) => match status.code() {
                Some(code) => format!("exit {code}"),
                None => format!("{status}"),
            },
            Err(e) => format!("lost track of it: {e}"),
        };
        self.say(&format!(
            "sync ended (pid {pid}): {how}, accepted version {}",
            shown(accepted)
        ));
        if let Some(kept) = SignedRecord::kept(&self.config.sync.state) {
            self.node.hold(kept, now_unix());
        }
        if self.node.sync_ended(accepted) {
            let delay = self.schedule_sync();
            self.say(&format!(
                "a newer version was announced meanwhile: next sync in {:.1}s",
                delay.as_secs_f64()
            ));
        }
    }

    fn housekeeping(&mut self) {
        self.node.forget_quiet_senders();
        self.limited.clear();
        if let Some(summary) = self.ignored.summary() {
            self.say(&summary);
        }
        self.refresh_accepted();
    }
}

/// Starts `wpkgsync --config <ini> --quiet` and a thread that waits for it
/// and stops it once it runs longer than `limit`.
fn spawn_sync(ini: &Path, limit: Duration) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--config")
        .arg(ini)
        .arg("--quiet")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    imp::without_console(&mut command);
    watch_child(command.spawn()?, limit)
}

/// A thread that waits for `child` and kills it once it runs longer than
/// `limit`: a sync stuck where its own deadline cannot reach (a hung share
/// holding a thread in the kernel) must not keep the listener from syncing
/// again.
fn watch_child(mut child: std::process::Child, limit: Duration) -> std::io::Result<Child> {
    const POLL: Duration = Duration::from_millis(200);
    let pid = child.id();
    let (tx, ended) = oneshot::channel();
    let started = std::time::Instant::now();
    std::thread::Builder::new()
        .name("wpkgsync-sync".into())
        .spawn(move || {
            let mut stopped = false;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if !stopped && started.elapsed() >= limit => {
                        stopped = true;
                        let _ = child.kill();
                    }
                    Ok(None) => std::thread::sleep(POLL),
                    Err(e) => break Err(e),
                }
            };
            let _ = tx.send((status, stopped));
        })?;
    Ok(Child { pid, ended })
}

/// Resolves at `due`, never when there is none.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the running child ends, never when there is none.
async fn child_end(running: &mut Option<Child>) -> Ended {
    match running {
        Some(child) => match (&mut child.ended).await {
            Ok(ended) => ended,
            Err(_) => (
                Err(std::io::Error::other("the waiting thread ended")),
                false,
            ),
        },
        None => std::future::pending().await,
    }
}

fn shown(version: Option<u64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

// Its tests need Unix permissions and processes.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_sync_past_its_deadline_is_stopped() {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let watched = watch_child(child, Duration::from_millis(300)).unwrap();
        let (status, stopped) = watched.ended.blocking_recv().unwrap();
        assert!(stopped);
        assert!(!status.unwrap().success());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_sync_within_its_deadline_is_left_alone() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let watched = watch_child(child, Duration::from_secs(30)).unwrap();
        let (status, stopped) = watched.ended.blocking_recv().unwrap();
        assert!(!stopped);
        assert!(status.unwrap().success());
    }
}
