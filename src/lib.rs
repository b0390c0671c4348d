//! wpkgsync: mirrors a signed WPKG repository from an SSH server into a local store.

pub mod anchors;
mod app;
pub mod cli;
mod clock;
pub mod commands;
pub mod config;
pub mod delta;
pub mod display;
pub mod error;
pub mod exit;
pub mod gossip;
pub mod manifest;
pub mod platform;
pub mod publish;
pub mod report;
pub mod runlog;
pub mod schedule;
pub mod select;
mod startup;
pub mod status;
pub mod store;
pub mod sync;
pub mod text;
pub mod transport;
