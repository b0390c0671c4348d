//! Where the repository's bytes come from: the [`Source`] trait, an SSH server
//! (`sftp`), a local folder (`folder`), and the bandwidth cap that wraps either;
//! and [`ReportFolder`], the one place a client writes to.

mod folder;
mod known_hosts;
mod reports;
mod sftp;
mod source;
mod throttle;

pub use folder::FolderSource;
pub use reports::ReportFolder;
pub use sftp::{HostKeyPolicy, SftpSource, SshTarget};
pub use source::{Source, TransportError, TransportErrorKind};
pub use throttle::Throttled;
