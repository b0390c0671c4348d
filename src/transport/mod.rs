//! Where the repository's bytes come from: the [`Source`] trait, an SSH server
//! (`sftp`), a local folder (`folder`), and the bandwidth cap, the window of
//! bytes in flight and the session's progress watchdog that wrap either;
//! and [`ReportFolder`], the one place a client writes to.

mod connection;
mod folder;
mod known_hosts;
mod progress;
mod reports;
mod sftp;
mod source;
mod throttle;
mod window;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub(crate) use connection::{Connection, connect};
pub(crate) use progress::Progress;
pub(crate) use reports::ReportFolder;
pub(crate) use source::{Source, TransportError, TransportErrorKind};
pub(crate) use throttle::Throttled;
