//! wpkgsync: mirrors a signed WPKG repository from an SSH server into a local store.
//!
//! The library exists for the executable, its integration tests and the fuzz
//! target; only what they use is `pub`.

pub(crate) mod anchors;
pub(crate) mod app;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub(crate) mod config;
pub mod delta;
pub(crate) mod display;
pub(crate) mod error;
pub mod exit;
pub mod gossip;
pub mod manifest;
pub mod platform;
pub(crate) mod publish;
pub mod report;
pub mod runlog;
pub(crate) mod schedule;
pub(crate) mod select;
pub(crate) mod startup;
pub(crate) mod status;
pub mod store;
pub(crate) mod sync;
pub(crate) mod text;
pub(crate) mod transport;
