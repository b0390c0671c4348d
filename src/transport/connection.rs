//! The source of one run, whichever kind the INI names, as one value: the
//! run reads, and uploads its reports, through [`Connection`] without
//! knowing which kind it is.

use std::io::IsTerminal;

use super::folder::{FolderFile, FolderSource};
use super::progress::Progress;
use super::reports::ReportFolder;
use super::sftp::{HostKeyPolicy, RemoteFile, SftpSource, SshTarget};
use super::source::{Source, TransportError, TransportErrorKind};
use super::throttle::Throttled;
use crate::config::{Config, Remote};

/// A connected source of repository bytes that also takes the reports.
pub(crate) enum Connection {
    /// A local folder or share.
    Folder(FolderSource),
    /// An SSH server's SFTP subsystem.
    Sftp(Box<SftpSource>),
}

/// A file open on a [`Connection`], of the same kind.
pub(crate) enum ConnectionFile {
    /// A file of a folder source.
    Folder(FolderFile),
    /// A file on the SSH server.
    Sftp(RemoteFile),
}

/// Connects to the source the INI names, under the run's bandwidth cap
/// (`cap_kib`, none with `/fast`) and its "no progress" timeout. `setup` is
/// `/setup`: only then, at a console, may an unknown SSH host key be recorded.
pub(crate) async fn connect(
    config: &Config,
    cap_kib: Option<u32>,
    setup: bool,
) -> Result<Throttled<Connection>, TransportError> {
    let progress = Progress::new();
    let timeout = config.sync.timeout;
    let connection = match &config.server.remote {
        Remote::Folder(path) => Connection::Folder(FolderSource::connect(path, timeout).await?),
        Remote::Ssh { user, host } => {
            let target = SshTarget {
                user: user.clone(),
                host: host.clone(),
                port: config.server.port,
                identity: config.server.identity.clone(),
                known_hosts: config.server.known_hosts.clone(),
                root: config.server.path.clone(),
                timeout,
                request_limit: config.sync.deadline,
            };
            // Trust on first use only for an administrator at a console running
            // /setup; a scheduled run has no one to ask and never records a key.
            let console = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            let policy = if setup && console {
                HostKeyPolicy::AskAtConsole
            } else {
                HostKeyPolicy::Strict
            };
            let source = SftpSource::connect(&target, policy, &progress).await?;
            Connection::Sftp(Box::new(source))
        }
    };
    Ok(Throttled::new(connection, cap_kib, progress, timeout))
}

/// A file of one kind handed to a connection of the other: a bug, reported
/// as a failure of that file rather than a panic.
fn other_kind() -> TransportError {
    TransportError::new(
        TransportErrorKind::Other,
        "a file of another source was passed to this one",
    )
}

impl Source for Connection {
    type File = ConnectionFile;

    async fn open(&self, path: &str) -> Result<ConnectionFile, TransportError> {
        match self {
            Connection::Folder(source) => source.open(path).await.map(ConnectionFile::Folder),
            Connection::Sftp(source) => source.open(path).await.map(ConnectionFile::Sftp),
        }
    }

    async fn read_at(
        &self,
        file: &ConnectionFile,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        match (self, file) {
            (Connection::Folder(source), ConnectionFile::Folder(file)) => {
                source.read_at(file, offset, len).await
            }
            (Connection::Sftp(source), ConnectionFile::Sftp(file)) => {
                source.read_at(file, offset, len).await
            }
            _ => Err(other_kind()),
        }
    }

    async fn close(&self, file: ConnectionFile) {
        match (self, file) {
            (Connection::Folder(source), ConnectionFile::Folder(file)) => source.close(file).await,
            (Connection::Sftp(source), ConnectionFile::Sftp(file)) => source.close(file).await,
            _ => {}
        }
    }
}

impl ReportFolder for Connection {
    type Writer = ConnectionFile;

    async fn create(&self, path: &str, append: bool) -> Result<ConnectionFile, TransportError> {
        match self {
            Connection::Folder(folder) => folder
                .create(path, append)
                .await
                .map(ConnectionFile::Folder),
            Connection::Sftp(server) => server.create(path, append).await.map(ConnectionFile::Sftp),
        }
    }

    async fn write_at(
        &self,
        file: &ConnectionFile,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        match (self, file) {
            (Connection::Folder(folder), ConnectionFile::Folder(file)) => {
                folder.write_at(file, offset, data).await
            }
            (Connection::Sftp(server), ConnectionFile::Sftp(file)) => {
                server.write_at(file, offset, data).await
            }
            _ => Err(other_kind()),
        }
    }

    async fn finish(&self, file: ConnectionFile) -> Result<(), TransportError> {
        match (self, file) {
            (Connection::Folder(folder), ConnectionFile::Folder(file)) => folder.finish(file).await,
            (Connection::Sftp(server), ConnectionFile::Sftp(file)) => server.finish(file).await,
            _ => Err(other_kind()),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        match self {
            Connection::Folder(folder) => folder.rename(from, to).await,
            Connection::Sftp(server) => server.rename(from, to).await,
        }
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        match self {
            Connection::Folder(folder) => folder.remove(path).await,
            Connection::Sftp(server) => server.remove(path).await,
        }
    }
}
