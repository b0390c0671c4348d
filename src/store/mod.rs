//! The local side: errors of the store and the state folder, and the state file.

pub mod acl;
mod atomic;
pub mod dir;
mod error;
pub mod index;
pub mod lock;
pub mod manifest_cache;
pub mod ownership;
pub mod path;
pub mod state;
pub mod state_dir;
pub mod walk;

pub use atomic::write_atomically;
pub use error::StoreError;
