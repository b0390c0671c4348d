//! Making the store match a verified manifest: which paths are in scope, what the
//! store holds, what to fetch and delete, and doing it with atomic writes.

pub mod apply;
pub mod events;
pub mod inventory;
pub mod package_files;
pub mod plan;
pub(crate) mod run;
pub mod scope;
pub(crate) mod watchdog;
