//! Gossip: a UDP pulse that tells peers a newer signed version exists, so they
//! sync early instead of at their next scheduled run.
//!
//! `datagram` is the wire format, with `crc32` for the messages no publisher
//! signed.

pub mod crc32;
pub mod datagram;
