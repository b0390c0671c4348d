//! What a listener decides about each datagram, apart from any socket or process.
//!
//! A [`Node`] takes the bytes a sender sent and answers with an [`Action`]:
//! ignore them (and why), act on a newer version (start a sync unless one is
//! waiting or running, and relay once), or answer a peer's have with the pulse
//! this node holds. It also tracks the one sync it may run. `listen.rs` does the
//! I/O these decisions ask for; the gossip simulation drives a thousand of them.
//!
//! The rules, in the order they are applied:
//!
//! 1. Rate: each sender's address gets a small budget (governor); past it,
//!    its datagrams are dropped before anything is decoded or verified.
//! 2. Form: the datagram must decode (sizes, magic, protocol, type, CRC).
//! 3. Trust: a pulse's record must verify with the pinned key, not be expired,
//!    and not be older than the accepted version (the sync's own checks).
//! 4. News: only a version above both the accepted one and every version this
//!    node has acted on counts. Versions only go up, so one number suffices,
//!    and since it rises on the first pulse of a version, no version is synced
//!    for or relayed twice, and no pulse circulates for ever.
//! 5. Relay: when the pulse allows spreading, this node's INI does too, and TTL
//!    is above 0: the same record with TTL - 1.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::manifest::verify::{ManifestError, PinnedKey};

use super::datagram::{Datagram, DecodeError, Message};
use super::pulse::SignedRecord;

/// Datagrams a sender may send at once.
const BURST: u32 = 8;
/// Datagrams a sender may send per minute once its burst is spent.
const PER_MINUTE: u32 = 30;

/// The per-sender budget: a burst of [`BURST`], refilled at [`PER_MINUTE`].
pub(crate) fn sender_quota() -> Quota {
    let per_minute = NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

/// What to do about one datagram.
#[derive(Debug)]
pub(crate) enum Action {
    /// Nothing.
    Ignore(Ignored),
    /// A verified pulse of a version newer than any this node had.
    Newer {
        /// That version.
        version: u64,
        /// TTL of the pulse as received.
        ttl: u8,
        /// Start a sync: none is waiting or running.
        sync: bool,
        /// The datagram to relay to the peers, if this pulse spreads.
        relay: Option<Vec<u8>>,
    },
    /// A peer reported an older version: send it this pulse (TTL 0, no spread).
    Answer {
        /// The version the peer reported.
        theirs: u64,
        /// The version of the pulse sent back.
        ours: u64,
        /// The datagram.
        pulse: Vec<u8>,
    },
}

/// Why a datagram leads to nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ignored {
    /// The sender exceeded its budget.
    #[error("over the rate limit of its sender")]
    RateLimited,
    /// Not a datagram of this protocol, damaged, or a CRC mismatch.
    #[error("malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// A pulse that fails the checks of a sync: bad signature, malformed
    /// record, expired, or older than the accepted version.
    #[error("pulse refused: {0}")]
    Refused(#[from] ManifestError),
    /// A genuine pulse of a version this node has or has already acted on.
    #[error("version {version} is not newer than {known}")]
    NotNewer {
        /// The pulse's version.
        version: u64,
        /// The newest version this node knows.
        known: u64,
    },
    /// A have from an address that is not one of the configured peers.
    #[error("have of version {0} from an address that is not a configured peer")]
    NotAPeer(u64),
    /// A have from a peer that has what this node has, or more.
    #[error("have of version {0}: nothing newer to answer with")]
    NothingNewer(u64),
}

impl Ignored {
    /// A short name of the reason, for counting many of them.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Ignored::RateLimited => "over the rate limit of their sender",
            Ignored::Malformed(_) => "malformed",
            Ignored::Refused(_) => "refused pulses",
            Ignored::NotNewer { .. } => "not newer",
            Ignored::NotAPeer(_) => "haves from strangers",
            Ignored::NothingNewer(_) => "haves with nothing newer to answer",
        }
    }
}

/// Where this node's one sync stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncState {
    /// None waiting or running.
    Idle,
    /// Due after the random delay.
    Waiting,
    /// Running, started when `for_version` was the newest known.
    Running { for_version: u64 },
}

/// One listener's knowledge and its sync.
pub(crate) struct Node<C: Clock = DefaultClock> {
    key: PinnedKey,
    spread: bool,
    accepted: Option<u64>,
    /// The highest version acted on (synced for or relayed).
    acted: Option<u64>,
    /// The newest verified record this node holds, to answer haves with.
    holding: Option<(u64, SignedRecord)>,
    peers: HashSet<IpAddr>,
    sync: SyncState,
    limiter: Limiter<C>,
}

/// A budget per sender address.
type Limiter<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

impl Node<DefaultClock> {
    /// A node on the system clock.
    pub(crate) fn new(key: PinnedKey, spread: bool, accepted: Option<u64>) -> Node<DefaultClock> {
        Node::with_clock(key, spread, accepted, DefaultClock::default())
    }
}

impl<C: Clock> Node<C> {
    /// A node whose rate limit runs on `clock` (a fake one in tests).
    pub(crate) fn with_clock(
        key: PinnedKey,
        spread: bool,
        accepted: Option<u64>,
        clock: C,
    ) -> Node<C> {
        Node {
            key,
            spread,
            accepted,
            acted: None,
            holding: None,
            peers: HashSet::new(),
            sync: SyncState::Idle,
            limiter: RateLimiter::dashmap_with_clock(sender_quota(), clock),
        }
    }

    /// The addresses of the configured peers; haves from others get no answer.
    pub(crate) fn set_peers(&mut self, peers: impl IntoIterator<Item = IpAddr>) {
        self.peers = peers.into_iter().collect();
    }

    /// The last version accepted according to the state file, which a
    /// scheduled sync may have raised since.
    pub(crate) fn note_accepted(&mut self, accepted: Option<u64>) {
        self.accepted = self.accepted.max(accepted);
    }

    /// Offers a record to answer haves with, such as the one the last sync
    /// kept; taken only if it verifies and is newer than the one held.
    pub(crate) fn hold(&mut self, record: SignedRecord, now_unix: u64) -> bool {
        match record.verify(&self.key, None, now_unix) {
            Ok(verified)
                if self
                    .holding
                    .as_ref()
                    .is_none_or(|(v, _)| verified.version() > *v) =>
            {
                self.holding = Some((verified.version(), record));
                true
            }
            _ => false,
        }
    }

    /// The newest version this node knows of: accepted or acted on.
    pub(crate) fn known(&self) -> Option<u64> {
        self.accepted.max(self.acted)
    }

    /// Drops the budgets of senders not heard from for a while, so spoofed
    /// addresses cannot grow the table without bound.
    pub(crate) fn forget_quiet_senders(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Decides about `bytes` received from `from`.
    pub(crate) fn receive(&mut self, from: SocketAddr, bytes: &[u8], now_unix: u64) -> Action {
        match self.judge(from, bytes, now_unix) {
            Ok(action) => action,
            Err(ignored) => Action::Ignore(ignored),
        }
    }

    fn judge(&mut self, from: SocketAddr, bytes: &[u8], now_unix: u64) -> Result<Action, Ignored> {
        // Rate first: decoding is cheap, an RSA verification is not.
        if self.limiter.check_key(&from.ip()).is_err() {
            return Err(Ignored::RateLimited);
        }
        let datagram = Datagram::decode(bytes)?;
        let (spread, ttl) = (datagram.spread, datagram.ttl);
        let record = match datagram.message {
            Message::Have { version } => return self.answer(from, version),
            Message::Pulse { record, signature } => SignedRecord { record, signature },
        };
        // Trust: the sync's own checks, signature over the exact bytes first.
        let verified = record.verify(&self.key, self.accepted, now_unix)?;
        let version = verified.version();
        // News: an equal or older version is neither acted on nor relayed.
        if let Some(known) = self.known()
            && version <= known
        {
            return Err(Ignored::NotNewer { version, known });
        }
        self.acted = Some(version);
        let relay = if spread && self.spread && ttl > 0 {
            record.datagram(true, ttl - 1).ok()
        } else {
            None
        };
        self.holding = Some((version, record));
        let sync = self.sync == SyncState::Idle;
        if sync {
            self.sync = SyncState::Waiting;
        }
        Ok(Action::Newer {
            version,
            ttl,
            sync,
            relay,
        })
    }

    fn answer(&self, from: SocketAddr, theirs: u64) -> Result<Action, Ignored> {
        // Only configured peers get an answer: a have with a forged sender
        // address must not turn this node into an amplifier aimed elsewhere.
        if !self.peers.contains(&from.ip()) {
            return Err(Ignored::NotAPeer(theirs));
        }
        match &self.holding {
            Some((ours, record)) if *ours > theirs => Ok(Action::Answer {
                theirs,
                ours: *ours,
                pulse: record
                    .datagram(false, 0)
                    .map_err(|_| Ignored::NothingNewer(theirs))?,
            }),
            _ => Err(Ignored::NothingNewer(theirs)),
        }
    }

    /// The waiting sync is due; returns the version it is meant to reach, or
    /// `None` when that version was accepted meanwhile (by a scheduled run, as
    /// [`Node::note_accepted`] learnt) and no sync is needed.
    pub(crate) fn sync_started(&mut self) -> Option<u64> {
        match self.acted {
            Some(for_version) if self.acted > self.accepted => {
                self.sync = SyncState::Running { for_version };
                Some(for_version)
            }
            _ => {
                self.sync = SyncState::Idle;
                None
            }
        }
    }

    /// The running sync ended and the state file now says `accepted`. Returns
    /// whether another sync is due: only when a newer version was announced
    /// while it ran. A sync that failed to reach the version it was started
    /// for is not repeated for the same pulse; the scheduled run retries.
    pub(crate) fn sync_ended(&mut self, accepted: Option<u64>) -> bool {
        self.note_accepted(accepted);
        let again = match self.sync {
            SyncState::Running { for_version } => {
                self.acted > Some(for_version) && self.acted > self.accepted
            }
            SyncState::Idle | SyncState::Waiting => false,
        };
        self.sync = if again {
            SyncState::Waiting
        } else {
            SyncState::Idle
        };
        again
    }

    /// Whether a sync is waiting for its delay to pass.
    #[cfg(test)]
    pub(crate) fn sync_waiting(&self) -> bool {
        self.sync == SyncState::Waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gossip::pulse::tests::{NEVER, public_key, signed};
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    const NOW: u64 = 1_800_000_000;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 40400))
    }

    fn node(accepted: Option<u64>) -> (Node<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let node = Node::with_clock(public_key(), true, accepted, clock.clone());
        (node, clock)
    }

    fn pulse(version: u64, ttl: u8) -> Vec<u8> {
        signed(version, NEVER).datagram(true, ttl).unwrap()
    }

    #[test]
    fn a_newer_pulse_starts_one_sync_and_relays_once_with_one_less_ttl() {
        let (mut node, _) = node(Some(5));
        let Action::Newer {
            version,
            ttl,
            sync,
            relay,
        } = node.receive(addr(2), &pulse(6, 3), NOW)
        else {
            panic!("not acted on");
        };
        assert_eq!((version, ttl, sync), (6, 3, true));
        let relayed = Datagram::decode(&relay.unwrap()).unwrap();
        assert_eq!((relayed.ttl, relayed.spread), (2, true));

        // The same version again, from anyone, with any TTL: nothing.
        for from in [addr(2), addr(3)] {
            assert!(matches!(
                node.receive(from, &pulse(6, 5), NOW),
                Action::Ignore(Ignored::NotNewer {
                    version: 6,
                    known: 6
                })
            ));
        }
    }

    #[test]
    fn equal_and_older_versions_are_ignored() {
        let (mut node, _) = node(Some(5));
        assert!(matches!(
            node.receive(addr(2), &pulse(5, 3), NOW),
            Action::Ignore(Ignored::NotNewer { .. })
        ));
        assert!(matches!(
            node.receive(addr(2), &pulse(4, 3), NOW),
            Action::Ignore(Ignored::Refused(ManifestError::Rollback { .. }))
        ));
    }

    #[test]
    fn forged_expired_and_garbled_pulses_are_ignored() {
        let (mut node, _) = node(Some(5));
        let genuine = signed(9, NEVER);
        let text = String::from_utf8(genuine.record.clone()).unwrap();
        let forged = SignedRecord {
            record: text
                .replace("\"version\": 9", "\"version\": 10")
                .into_bytes(),
            signature: genuine.signature.clone(),
        };
        assert_ne!(forged.record, genuine.record);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (forged.datagram(true, 3).unwrap(), "pulse refused"),
            (signed(9, NOW).datagram(true, 3).unwrap(), "expired"),
            (pulse(9, 3)[..100].to_vec(), "truncated"),
            (
                {
                    let mut bytes = pulse(9, 3);
                    bytes[0] ^= 0xFF;
                    bytes
                },
                "not a wpkgsync datagram",
            ),
            (
                {
                    let mut bytes = pulse(9, 3);
                    bytes[4] = 9;
                    bytes
                },
                "unknown protocol",
            ),
            (
                {
                    let mut bytes = pulse(9, 3);
                    bytes[5] = 7;
                    bytes
                },
                "unknown message type",
            ),
            (
                {
                    let mut bytes = pulse(9, 3);
                    let last = bytes.len() - 1;
                    bytes[last] ^= 1;
                    bytes
                },
                "not valid for the pinned",
            ),
            (
                {
                    let mut bytes = Datagram::have(1).encode().unwrap();
                    bytes[12] ^= 1;
                    bytes
                },
                "bad CRC",
            ),
            (vec![0; 1300], "oversized"),
        ];
        for (bytes, why) in cases {
            match node.receive(addr(2), &bytes, NOW) {
                Action::Ignore(ignored) => {
                    assert!(ignored.to_string().contains(why), "{ignored} lacks {why}");
                }
                other => panic!("{why}: {other:?}"),
            }
            // A burst of bad datagrams must not exhaust the budget of the test.
            node.limiter = RateLimiter::dashmap_with_clock(sender_quota(), Default::default());
        }
        assert_eq!(node.known(), Some(5));
        assert!(!node.sync_waiting());
    }

    #[test]
    fn no_relay_without_spread_at_ttl_zero_or_when_the_ini_says_no() {
        let (mut node, _) = node(None);
        let no_spread = signed(1, NEVER).datagram(false, 3).unwrap();
        assert!(matches!(
            node.receive(addr(2), &no_spread, NOW),
            Action::Newer { relay: None, .. }
        ));
        assert!(matches!(
            node.receive(addr(2), &pulse(2, 0), NOW),
            Action::Newer { relay: None, .. }
        ));
        let clock = FakeRelativeClock::default();
        let mut quiet = Node::with_clock(public_key(), false, None, clock);
        assert!(matches!(
            quiet.receive(addr(2), &pulse(3, 3), NOW),
            Action::Newer {
                relay: None,
                sync: true,
                ..
            }
        ));
    }

    #[test]
    fn never_two_syncs_at_once_and_a_newer_version_during_a_run_queues_one() {
        let (mut node, _) = node(Some(1));
        assert!(matches!(
            node.receive(addr(2), &pulse(2, 1), NOW),
            Action::Newer { sync: true, .. }
        ));
        assert!(node.sync_waiting());
        // Newer again before the delay passed: the waiting sync covers it.
        assert!(matches!(
            node.receive(addr(2), &pulse(3, 1), NOW),
            Action::Newer { sync: false, .. }
        ));
        assert_eq!(node.sync_started(), Some(3));
        // Newer while running: no second sync now, one after.
        assert!(matches!(
            node.receive(addr(2), &pulse(4, 1), NOW),
            Action::Newer { sync: false, .. }
        ));
        assert!(node.sync_ended(Some(3)));
        assert!(node.sync_waiting());
        assert_eq!(node.sync_started(), Some(4));
        assert!(!node.sync_ended(Some(4)));
        assert!(!node.sync_waiting());
    }

    #[test]
    fn no_sync_when_a_scheduled_run_accepted_the_version_during_the_delay() {
        let (mut node, _) = node(Some(1));
        node.receive(addr(2), &pulse(2, 1), NOW);
        assert!(node.sync_waiting());
        node.note_accepted(Some(2));
        assert_eq!(node.sync_started(), None);
        assert!(!node.sync_waiting());
        // And the next newer version starts one again.
        assert!(matches!(
            node.receive(addr(2), &pulse(3, 1), NOW),
            Action::Newer { sync: true, .. }
        ));
    }

    #[test]
    fn a_failed_sync_is_not_repeated_for_the_same_pulse() {
        let (mut node, _) = node(Some(1));
        node.receive(addr(2), &pulse(2, 1), NOW);
        node.sync_started();
        assert!(!node.sync_ended(Some(1)));
        assert!(matches!(
            node.receive(addr(3), &pulse(2, 1), NOW),
            Action::Ignore(Ignored::NotNewer { .. })
        ));
    }

    #[test]
    fn haves_from_peers_with_older_versions_get_the_pulse_back() {
        let (mut node, _) = node(Some(7));
        let have = |v| Datagram::have(v).encode().unwrap();
        // Nothing held yet.
        node.set_peers([addr(3).ip()]);
        assert!(matches!(
            node.receive(addr(3), &have(1), NOW),
            Action::Ignore(Ignored::NothingNewer(1))
        ));
        assert!(node.hold(signed(7, NEVER), NOW));
        assert!(
            !node.hold(signed(6, NEVER), NOW),
            "an older record replaced"
        );
        let Action::Answer {
            theirs,
            ours,
            pulse,
        } = node.receive(addr(3), &have(1), NOW)
        else {
            panic!("no answer");
        };
        assert_eq!((theirs, ours), (1, 7));
        let answer = Datagram::decode(&pulse).unwrap();
        assert_eq!((answer.ttl, answer.spread), (0, false));
        // Up to date peers and strangers get nothing.
        assert!(matches!(
            node.receive(addr(3), &have(7), NOW),
            Action::Ignore(Ignored::NothingNewer(7))
        ));
        assert!(matches!(
            node.receive(addr(4), &have(1), NOW),
            Action::Ignore(Ignored::NotAPeer(1))
        ));
        assert_eq!(node.known(), Some(7), "a have changed what the node knows");
    }

    #[test]
    fn each_sender_has_its_own_budget_that_refills() {
        let (mut node, clock) = node(Some(100));
        let old = pulse(100, 1);
        for _ in 0..BURST {
            assert!(matches!(
                node.receive(addr(2), &old, NOW),
                Action::Ignore(Ignored::NotNewer { .. })
            ));
        }
        assert!(matches!(
            node.receive(addr(2), &old, NOW),
            Action::Ignore(Ignored::RateLimited)
        ));
        // Another sender is not held back by the first.
        assert!(matches!(
            node.receive(addr(3), &old, NOW),
            Action::Ignore(Ignored::NotNewer { .. })
        ));
        // Even a genuine newer pulse waits for the budget.
        assert!(matches!(
            node.receive(addr(2), &pulse(101, 1), NOW),
            Action::Ignore(Ignored::RateLimited)
        ));
        clock.advance(Duration::from_secs(60 / u64::from(PER_MINUTE)));
        assert!(matches!(
            node.receive(addr(2), &pulse(101, 1), NOW),
            Action::Newer { version: 101, .. }
        ));
    }
}
