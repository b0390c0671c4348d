//! The local side: errors of the store and the state folder, and the state file.

pub(crate) mod acl;
pub(crate) mod atomic;
pub(crate) mod dir;
mod error;
pub(crate) mod index;
pub(crate) mod lock;
pub(crate) mod manifest_cache;
pub(crate) mod ownership;
pub(crate) mod path;
pub mod state;
pub mod state_dir;
pub(crate) mod walk;

pub(crate) use atomic::write_atomically;
pub(crate) use error::StoreError;
