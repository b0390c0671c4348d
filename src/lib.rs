//! wpkgsync: mirrors a signed WPKG repository from an SSH server into a local store.

pub mod exit;
pub mod manifest;
