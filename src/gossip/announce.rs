//! The two pulses that start a wave: the one a client sends after a sync that
//! verified a version, and the publisher's `publish --announce`.
//!
//! Both send the timestamp record exactly as published, with `spread` and `ttl`
//! from the INI, to every peer of `gossip.peers`, within [`send::SEND_BOUND`] in all.
//! Neither fails its command: what happened comes back as a line to log.

use std::path::Path;

use crate::config::GossipConfig;
use crate::manifest::format::META_DIR;
use crate::store::state_dir::StateDir;

use super::pulse::SignedRecord;
use super::send;

/// Pulses the record the sync kept in `state_dir` (version `version`) to the
/// peers; `None` when no peers are configured.
pub(crate) async fn after_sync(
    gossip: &GossipConfig,
    state_dir: &StateDir,
    version: u64,
) -> Option<String> {
    if gossip.peers.is_empty() {
        return None;
    }
    let Some(record) = SignedRecord::kept(state_dir) else {
        return Some(format!(
            "pulse not sent: no timestamp record kept in {}",
            state_dir.path().display()
        ));
    };
    Some(format!(
        "pulse of version {version}: {}",
        pulse(gossip, &record).await
    ))
}

/// Pulses the timestamp record just published in `repo` (version `version`).
pub(crate) async fn published(gossip: &GossipConfig, repo: &Path, version: u64) -> String {
    if gossip.peers.is_empty() {
        return "nothing announced: gossip.peers is empty".to_owned();
    }
    let meta = repo.join(META_DIR);
    match SignedRecord::read(&meta) {
        Ok(record) => format!(
            "announced version {version}: {}",
            pulse(gossip, &record).await
        ),
        Err(e) => format!(
            "nothing announced: failed to read the timestamp record in {}: {e}",
            meta.display()
        ),
    }
}

async fn pulse(gossip: &GossipConfig, record: &SignedRecord) -> String {
    match record.datagram(gossip.spread, gossip.ttl) {
        Ok(datagram) => send::to_peers(&gossip.peers, gossip.port, &datagram)
            .await
            .summary(),
        Err(e) => format!("not sent: {e}"),
    }
}
