//! A seeded simulation of a thousand listeners, to see what a fan-out costs in
//! datagrams and how many hops a version needs to reach everyone.
//!
//! Every node is a real [`Node`] with the real checks (each datagram is decoded
//! and its signature verified); only the network and the sync are simulated.
//! Time runs in rounds: a datagram sent in one round arrives in the next, and
//! a sync (jitter 0) ends one round after its node heard of the version, then
//! sends the pulse that ends every run to the node's peers. Peers come from
//! `fanout` random rings over all nodes, so every node lists `fanout` peers and
//! is listed by as many (an administrator spreading peers evenly); the first
//! ring alone connects everyone. The publisher announces to `fanout` nodes.

use std::net::SocketAddr;
use std::rc::Rc;

use governor::clock::FakeRelativeClock;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::node::{Action, Node};
use super::pulse::tests::{NEVER, public_key, signed};

const NOW: u64 = 1_800_000_000;

/// What one simulated wave cost.
#[derive(Debug)]
struct Figures {
    nodes: usize,
    fanout: usize,
    ttl: u8,
    announced: usize,
    relayed: usize,
    after_sync: usize,
    rate_limited: usize,
    /// Round by which every node had heard of the version.
    informed: usize,
    /// Round by which every node had synced.
    synced: usize,
    /// Most relays one node sent.
    max_relays: usize,
}

impl Figures {
    fn datagrams(&self) -> usize {
        self.announced + self.relayed + self.after_sync
    }
}

fn address(node: usize) -> SocketAddr {
    let n = u32::try_from(node + 1).unwrap();
    SocketAddr::from(([127, (n >> 16) as u8, (n >> 8) as u8, n as u8], 40400))
}

/// A datagram on its way: from, to, bytes.
type InFlight = Vec<(SocketAddr, usize, Rc<Vec<u8>>)>;

fn simulate(nodes: usize, fanout: usize, ttl: u8, seed: u64) -> Figures {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut peers = vec![Vec::new(); nodes];
    for _ in 0..fanout {
        let mut ring: Vec<usize> = (0..nodes).collect();
        ring.shuffle(&mut rng);
        for (at, &node) in ring.iter().enumerate() {
            let next = ring[(at + 1) % nodes];
            if !peers[node].contains(&next) {
                peers[node].push(next);
            }
        }
    }
    let clock = FakeRelativeClock::default();
    let key = public_key();
    let mut swarm: Vec<Node<FakeRelativeClock>> = (0..nodes)
        .map(|_| Node::with_clock(key.clone(), true, Some(1), clock.clone()))
        .collect();
    let record = signed(2, NEVER);
    let publisher = SocketAddr::from(([127, 255, 255, 254], 40400));
    let mut figures = Figures {
        nodes,
        fanout,
        ttl,
        announced: 0,
        relayed: 0,
        after_sync: 0,
        rate_limited: 0,
        informed: 0,
        synced: 0,
        max_relays: 0,
    };

    let announcement = Rc::new(record.datagram(true, ttl).unwrap());
    let mut in_flight: InFlight = Vec::new();
    while in_flight.len() < fanout {
        let to = rng.gen_range(0..nodes);
        if !in_flight.iter().any(|(_, t, _)| *t == to) {
            in_flight.push((publisher, to, announcement.clone()));
        }
    }
    figures.announced = in_flight.len();
    let mut informed = vec![None; nodes];
    let mut synced = vec![None; nodes];
    let mut relays = vec![0usize; nodes];
    // Syncs waiting to end: node, round.
    let mut due: Vec<(usize, usize)> = Vec::new();
    let mut round = 0;
    while !in_flight.is_empty() || !due.is_empty() {
        round += 1;
        clock.advance(std::time::Duration::from_secs(1));
        let mut next: InFlight = Vec::new();
        for (from, to, bytes) in std::mem::take(&mut in_flight) {
            match swarm[to].receive(from, &bytes, NOW) {
                Action::Newer { sync, relay, .. } => {
                    informed[to].get_or_insert(round);
                    if sync {
                        due.push((to, round + 1));
                    }
                    if let Some(relay) = relay {
                        relays[to] += 1;
                        let relay = Rc::new(relay);
                        for &peer in peers[to].iter().filter(|&&p| address(p) != from) {
                            next.push((address(to), peer, relay.clone()));
                            figures.relayed += 1;
                        }
                    }
                }
                Action::Ignore(super::node::Ignored::RateLimited) => figures.rate_limited += 1,
                Action::Ignore(_) | Action::Answer { .. } => {}
            }
        }
        // Syncs that are due end now and send the pulse of every finished run.
        let (ending, later): (Vec<_>, Vec<_>) = due.into_iter().partition(|&(_, r)| r == round);
        due = later;
        for (node, _) in ending {
            swarm[node].sync_started();
            assert!(!swarm[node].sync_ended(Some(2)));
            synced[node] = Some(round);
            let pulse = Rc::new(record.datagram(true, ttl).unwrap());
            for &peer in &peers[node] {
                next.push((address(node), peer, pulse.clone()));
                figures.after_sync += 1;
            }
        }
        in_flight = next;
    }
    let missing: Vec<usize> = (0..nodes).filter(|&n| synced[n].is_none()).collect();
    assert!(missing.is_empty(), "never synced: {missing:?}");
    figures.informed = informed.iter().flatten().copied().max().unwrap_or(0);
    figures.synced = synced.iter().flatten().copied().max().unwrap_or(0);
    figures.max_relays = relays.iter().copied().max().unwrap_or(0);
    figures
}

#[test]
fn a_thousand_nodes_all_get_the_version() {
    println!("gossip simulation, seed 7, one publisher announcement, jitter 0:");
    for fanout in [2, 3, 4, 6] {
        let f = simulate(1000, fanout, 3, 7);
        println!(
            "  {} nodes, fan-out {}, ttl {}: {} datagrams ({} announce, {} relays, {} after syncs), \
             every node informed after {} rounds and synced after {}; at most {} relay per node, {} over the rate limit",
            f.nodes,
            f.fanout,
            f.ttl,
            f.datagrams(),
            f.announced,
            f.relayed,
            f.after_sync,
            f.informed,
            f.synced,
            f.max_relays,
            f.rate_limited,
        );
        assert_eq!(f.max_relays, 1, "a node relayed twice");
        assert_eq!(f.rate_limited, 0);
        // One relay and one pulse after the sync per node, each to its peers.
        assert!(f.datagrams() <= f.announced + 2 * f.nodes * f.fanout);
    }
}
