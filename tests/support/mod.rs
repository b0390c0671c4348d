//! The test harness: a private OpenSSH sshd configured from the shipped template,
//! published repositories, a builder that runs the real binary, and tree
//! snapshots. Everything here runs as root on Linux (the chroot demands it).

pub mod env;
pub mod repo;
pub mod run;
pub mod sshd;
pub mod tree;
pub mod workspace;

pub use env::{TestEnv, Via};
pub use repo::{noise, publisher};
pub use run::{Command, Output};
pub use sshd::Sshd;
