//! Gossip: a UDP pulse that tells peers a newer signed version exists, so they
//! sync early instead of at their next scheduled run.
//!
//! `datagram` is the wire format, `pulse` the publisher's signed record inside
//! it, `node` the listener's decisions, `send` the bounded sending to peers,
//! `announce` the pulse after a sync and after `publish --announce`, `listen`
//! the resident loop, `ignored` the bounded logging of what it ignores.
//! Nothing here is needed to sync: a lost or refused pulse only means the
//! next scheduled run finds the version.

pub(crate) mod announce;
pub(crate) mod crc32;
pub mod datagram;
pub(crate) mod ignored;
pub(crate) mod listen;
pub(crate) mod node;
pub mod pulse;
pub(crate) mod send;

#[cfg(test)]
mod simulate;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;
