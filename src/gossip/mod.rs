//! Gossip: a UDP pulse that tells peers a newer signed version exists, so they
//! sync early instead of at their next scheduled run.
//!
//! `datagram` is the wire format, with `crc32` for the messages no publisher
//! signed; `pulse` the publisher's signed record inside it; `node` the
//! listener's decisions, apart from any socket.

pub mod crc32;
pub mod datagram;
pub mod node;
pub mod pulse;

#[cfg(test)]
mod simulate;
