//! Where the repository's bytes come from: the [`Source`] trait, an SSH server
//! (`sftp`), a local folder (`folder`), and the bandwidth cap that wraps either.

mod folder;
mod sftp;
mod source;
mod throttle;

pub use folder::FolderSource;
pub use sftp::{HostKeyPolicy, SftpSource, SshTarget};
pub use source::{Source, TransportError, TransportErrorKind};
pub use throttle::Throttled;
