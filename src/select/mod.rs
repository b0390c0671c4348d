//! Which package folders this machine needs, from WPKG's own files: the
//! package definitions say which folders below `%SOFTWARE%` each package uses,
//! and the WPKG log of the last run says which packages this host has.

pub(crate) mod log_file;
pub(crate) mod packages;
pub(crate) mod policy;
pub(crate) mod selection;
pub(crate) mod wpkg_log;

pub(crate) use selection::select;
