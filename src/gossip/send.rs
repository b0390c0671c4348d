//! Sending datagrams to the peers of the INI: `host`, `host:port`, `[v6]:port`,
//! names or addresses, broadcast addresses included (every socket sends with
//! SO_BROADCAST).
//!
//! Everything here is bounded by a deadline. Name lookups run on threads of
//! their own that nobody waits for once the deadline passes (a stuck resolver
//! must not hold up the exit of a sync, and tokio's blocking pool would make
//! the runtime wait for it at shutdown). Failures are returned, one per peer,
//! for the caller to log: a pulse is a courtesy, never a reason to fail a run.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

/// How long the pulse after a sync and an announcement may take in all.
pub(crate) const SEND_BOUND: Duration = Duration::from_secs(1);

/// One configured peer and where it resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The peer as the INI names it.
    pub peer: String,
    /// Its address, or why there is none.
    pub addr: Result<SocketAddr, String>,
}

/// What happened to each peer of one send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SendReport {
    /// Peers the datagram went to.
    pub sent: Vec<SocketAddr>,
    /// Peers it did not reach the network for, and why.
    pub failed: Vec<(String, String)>,
}

impl SendReport {
    /// A one-line summary for the log.
    pub(crate) fn summary(&self) -> String {
        let mut text = format!(
            "sent to {} of {} peers",
            self.sent.len(),
            self.sent.len() + self.failed.len()
        );
        for (peer, why) in &self.failed {
            text.push_str(&format!("; {peer}: {why}"));
        }
        text
    }
}

/// Splits `host[:port]` (`[v6]:port`, or a bare IPv6 address) into host and
/// port; `default_port` when none is given.
pub(crate) fn split_peer(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let text = text.trim();
    let bad_port = |port: &str| format!("{port:?} is not a UDP port");
    let parse_port = |port: &str| match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(port)),
        Ok(port) => Ok(port),
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?} lacks the closing ]"))?;
        let port = match after {
            "" => default_port,
            _ => parse_port(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| format!("{text:?}: expected :port after ]"))?,
            )?,
        };
        return Ok((host.to_owned(), port));
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_owned(), default_port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => Ok((host.to_owned(), parse_port(port)?)),
        Some(_) => Err(format!("{text:?} names no host")),
        None if text.is_empty() => Err("empty peer".to_owned()),
        None => Ok((text.to_owned(), default_port)),
    }
}

/// Looks a host up with the operating system's resolver.
pub(crate) fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Resolves every peer by `deadline`, with the system resolver.
pub(crate) async fn resolve(
    peers: &[String],
    default_port: u16,
    deadline: Instant,
) -> Vec<Resolved> {
    resolve_with(peers, default_port, deadline, system_lookup).await
}

/// Resolves every peer by `deadline` with `lookup`. Literal addresses need no
/// lookup; names are looked up all at once, each on its own thread. Of several
/// addresses the first IPv4 one is taken, since broadcast and most LANs are
/// IPv4, else the first.
pub(crate) async fn resolve_with(
    peers: &[String],
    default_port: u16,
    deadline: Instant,
    lookup: fn(&str, u16) -> io::Result<Vec<SocketAddr>>,
) -> Vec<Resolved> {
    let mut pending = Vec::new();
    let mut out: Vec<Resolved> = Vec::with_capacity(peers.len());
    for (index, peer) in peers.iter().enumerate() {
        let (host, port) = match split_peer(peer, default_port) {
            Ok(parts) => parts,
            Err(why) => {
                out.push(Resolved {
                    peer: peer.clone(),
                    addr: Err(why),
                });
                continue;
            }
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            out.push(Resolved {
                peer: peer.clone(),
                addr: Ok(SocketAddr::new(ip, port)),
            });
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("wpkgsync-resolve".into())
            .spawn(move || {
                let _ = tx.send(lookup(&host, port));
            });
        match spawned {
            Ok(_) => pending.push((index, peer.clone(), rx)),
            Err(e) => out.push(Resolved {
                peer: peer.clone(),
                addr: Err(format!("failed to start a lookup: {e}")),
            }),
        }
    }
    for (_, peer, rx) in pending {
        let addr = match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(addrs))) => addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| "the name has no address".to_owned()),
            Ok(Ok(Err(e))) => Err(format!("failed to resolve: {e}")),
            Ok(Err(_)) => Err("the lookup ended without an answer".to_owned()),
            Err(_) => Err("no address in time".to_owned()),
        };
        out.push(Resolved { peer, addr });
    }
    // In the INI's order, which the log follows.
    out.sort_by_key(|r| peers.iter().position(|p| *p == r.peer));
    out
}

/// Binds a socket for sending to `family`'s addresses, broadcast allowed.
pub(crate) async fn sending_socket(ipv6: bool) -> io::Result<UdpSocket> {
    let any: IpAddr = if ipv6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    socket.set_broadcast(true)?;
    Ok(socket)
}

/// Sends `datagram` from `socket` to each address, skipping `except` (the
/// sender a relay came from); returns what was sent and what failed.
pub(crate) async fn send_all(
    socket: &UdpSocket,
    targets: &[Resolved],
    except: Option<SocketAddr>,
    datagram: &[u8],
    deadline: Instant,
) -> SendReport {
    let mut report = SendReport::default();
    for target in targets {
        let addr = match &target.addr {
            Ok(addr) if Some(*addr) == except => continue,
            Ok(addr) => *addr,
            Err(why) => {
                report.failed.push((target.peer.clone(), why.clone()));
                continue;
            }
        };
        let sent = tokio::time::timeout_at(deadline, socket.send_to(datagram, addr)).await;
        match sent {
            Ok(Ok(_)) => report.sent.push(addr),
            Ok(Err(e)) => report.failed.push((target.peer.clone(), e.to_string())),
            Err(_) => report
                .failed
                .push((target.peer.clone(), "not sent in time".to_owned())),
        }
    }
    report
}

/// Sends `datagram` to every peer from fresh sockets, within [`SEND_BOUND`].
pub(crate) async fn to_peers(peers: &[String], default_port: u16, datagram: &[u8]) -> SendReport {
    let deadline = Instant::now() + SEND_BOUND;
    let resolved = resolve(peers, default_port, deadline).await;
    let mut report = SendReport::default();
    for ipv6 in [false, true] {
        let (family, others): (Vec<Resolved>, Vec<Resolved>) = resolved
            .iter()
            .cloned()
            .partition(|r| r.addr.as_ref().is_ok_and(|a| a.is_ipv6() == ipv6));
        if !ipv6 {
            // Failed lookups are reported once, with the IPv4 group.
            for failed in others.into_iter().filter(|r| r.addr.is_err()) {
                if let Err(why) = failed.addr {
                    report.failed.push((failed.peer, why));
                }
            }
        }
        if family.is_empty() {
            continue;
        }
        match sending_socket(ipv6).await {
            Ok(socket) => {
                let part = send_all(&socket, &family, None, datagram, deadline).await;
                report.sent.extend(part.sent);
                report.failed.extend(part.failed);
            }
            Err(e) => {
                for target in family {
                    report
                        .failed
                        .push((target.peer, format!("failed to open a UDP socket: {e}")));
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_split_into_host_and_port() {
        let ok = |text: &str| split_peer(text, 40400).unwrap();
        assert_eq!(ok("pc042"), ("pc042".into(), 40400));
        assert_eq!(ok(" 10.1.2.255:4000 "), ("10.1.2.255".into(), 4000));
        assert_eq!(ok("host.example.org:1"), ("host.example.org".into(), 1));
        assert_eq!(ok("[::1]:9"), ("::1".into(), 9));
        assert_eq!(ok("[fe80::1]"), ("fe80::1".into(), 40400));
        assert_eq!(ok("fe80::1"), ("fe80::1".into(), 40400));
        for bad in ["", "h:0", "h:x", "h:70000", ":5", "[::1", "[::1]x"] {
            assert!(split_peer(bad, 40400).is_err(), "{bad:?} accepted");
        }
    }

    fn slow_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if host == "slow" {
            std::thread::sleep(Duration::from_secs(5));
        }
        Ok(vec![
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
            SocketAddr::from(([127, 0, 0, 9], port)),
        ])
    }

    #[tokio::test]
    async fn a_stuck_lookup_does_not_hold_the_others_past_the_deadline() {
        let peers = ["slow", "fast:7", "127.0.0.3", "bad:port"].map(String::from);
        let started = Instant::now();
        let resolved = resolve_with(
            &peers,
            40400,
            started + Duration::from_millis(300),
            slow_lookup,
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(1));
        let addrs: Vec<_> = resolved.iter().map(|r| r.addr.clone()).collect();
        assert_eq!(addrs[0], Err("no address in time".into()));
        // IPv4 is preferred.
        assert_eq!(addrs[1], Ok(SocketAddr::from(([127, 0, 0, 9], 7))));
        assert_eq!(addrs[2], Ok(SocketAddr::from(([127, 0, 0, 3], 40400))));
        assert!(addrs[3].is_err());
    }

    #[tokio::test]
    async fn datagrams_reach_loopback_peers_and_failures_are_reported() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let port = receiver.local_addr().unwrap().port();
        let peers = [format!("127.0.0.1:{port}"), "nohost:99999".to_owned()];
        let report = to_peers(&peers, 40400, b"hello").await;
        assert_eq!(report.sent, [SocketAddr::from(([127, 0, 0, 1], port))]);
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.summary().starts_with("sent to 1 of 2 peers"));
        let mut buf = [0u8; 16];
        let (len, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"hello");
    }
}
