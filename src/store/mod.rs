//! The local side: errors of the store and the state folder, and the state file.

mod error;
pub mod state;

pub use error::StoreError;
