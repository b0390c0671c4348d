//! The publisher side: `keygen` makes the publisher's key pair, `publish` walks the
//! WPKG tree and writes the signed records of DESIGN.md's server layout.
//!
//! Nothing here runs on the client path: clients only read what this module
//! writes, through `manifest::verify`. Owner-only key files, world-readable
//! records and file identities differ per OS and live in the `imp` twin modules.

mod block_signatures;
mod error;
mod hash_cache;
mod keygen;
mod parallel;
mod parts;
mod repo;
mod staged;
mod version;
mod walk;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub(crate) use error::PublishError;
pub(crate) use keygen::keygen;
pub(crate) use repo::publish;
