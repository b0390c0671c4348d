//! Which package folders this machine needs, from WPKG's own files: the
//! package definitions say which folders below `%SOFTWARE%` each package uses,
//! and the WPKG log of the last run says which packages this host has.

pub mod log_file;
pub mod packages;
pub(crate) mod policy;
pub mod selection;
pub mod wpkg_log;

pub use selection::{Selection, select};
