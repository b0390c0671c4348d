//! Integration tests: the real `wpkgsync` binary against a real OpenSSH sshd on
//! 127.0.0.1, locked down by `config/sshd_config.template` as administrators
//! deploy it, and against local-folder sources.
//!
//! They run as root on Linux (the sshd chroots its account). Each test is named
//! after the behaviour it checks and asserts both the exit code and what
//! happened to the store.

#![cfg(unix)]

#[path = "../support/mod.rs"]
mod support;

mod bandwidth;
mod cli;
mod delta;
mod dry_run;
mod gossip;
mod lockdown;
mod parts;
mod publish;
mod report;
mod schedule;
mod selection;
mod ssh;
mod store;
mod sync;
mod timeout;
mod trust;
