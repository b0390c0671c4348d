//! Making the store match a verified manifest: which paths are in scope, what the
//! store holds, what to fetch and delete, and doing it with atomic writes.

pub(crate) mod apply;
pub(crate) mod events;
pub(crate) mod inventory;
pub(crate) mod package_files;
pub(crate) mod plan;
pub(crate) mod run;
pub(crate) mod scope;
mod signatures;
pub(crate) mod watchdog;
mod writeback;
