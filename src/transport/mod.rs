//! Where the repository's bytes come from: the [`Source`] trait, an SSH server
//! (`sftp`), a web server (`https`), a local folder (`folder`), the run's
//! sources as one with failover (`sources`), and the bandwidth cap, the window
//! of bytes in flight and the progress watchdog around them; and
//! [`ReportFolder`], the one place a client writes to.

mod connection;
mod folder;
mod https;
mod known_hosts;
mod progress;
mod reports;
mod sftp;
mod source;
mod sources;
mod throttle;
mod window;

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub(crate) use progress::Progress;
pub(crate) use reports::ReportFolder;
pub(crate) use source::{Source, TransportError, TransportErrorKind};
pub(crate) use sources::{Sources, connect};
pub(crate) use throttle::Throttled;
