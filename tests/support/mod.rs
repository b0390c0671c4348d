//! The test harness: a private OpenSSH sshd configured from the shipped template,
//! published repositories, a builder that runs the real binary, and tree
//! snapshots. Everything here runs as root on Linux (the chroot demands it).

pub(crate) mod env;
pub(crate) mod repo;
pub(crate) mod run;
pub(crate) mod sshd;
pub(crate) mod tree;
pub(crate) mod workspace;

pub(crate) use env::{TestEnv, Via};
pub(crate) use repo::{noise, publisher};
pub(crate) use run::{Command, Output};
pub(crate) use sshd::Sshd;
