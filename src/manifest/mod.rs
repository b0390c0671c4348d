//! The signed manifest: its format, the publisher's signing, the client's
//! verification and the rules a path must pass before it may touch the store.

pub(crate) mod compress;
pub mod format;
pub(crate) mod load;
pub(crate) mod path;
pub(crate) mod sign;
pub(crate) mod verify;
