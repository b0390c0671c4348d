//! The source of one run, whichever kind the INI names, as one value: the
//! run reads, and uploads its reports, through [`Connection`] without
//! knowing which kind it is.

use super::folder::{FolderFile, FolderSource};
use super::https::{Conditional, HttpsSource, WebFile, WebTarget, WebWriter};
use super::progress::Progress;
use super::reports::ReportFolder;
use super::sftp::{HostKeyPolicy, RemoteFile, SftpSource, SshTarget};
use super::source::{Source, TransportError, TransportErrorKind};
use crate::config::{Config, Remote};

/// A connected source of repository bytes that also takes the reports.
pub(crate) enum Connection {
    /// A local folder or share.
    Folder(FolderSource),
    /// An SSH server's SFTP subsystem.
    Sftp(Box<SftpSource>),
    /// A web server, CDN or object store.
    Https(Box<HttpsSource>),
}

/// A file open on a [`Connection`], of the same kind.
pub(crate) enum ConnectionFile {
    /// A file of a folder source.
    Folder(FolderFile),
    /// A file on the SSH server.
    Sftp(RemoteFile),
    /// A file of a web source.
    Https(WebFile),
    /// A report on its way to a web server.
    Report(WebWriter),
}

/// Connects to one source the INI names: `remote` or one of `mirrors`. The
/// source's requests touch `progress`. `ask` lets an administrator at a
/// console record an unknown SSH host key (`/setup`); `validators` is the
/// state folder, where HTTPS sources keep what makes a request conditional.
pub(crate) async fn connect_one(
    remote: &Remote,
    config: &Config,
    ask: bool,
    validators: Option<&std::path::Path>,
    progress: &Progress,
) -> Result<Connection, TransportError> {
    let timeout = config.sync.timeout;
    Ok(match remote {
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
            let policy = if ask {
                HostKeyPolicy::AskAtConsole
            } else {
                HostKeyPolicy::Strict
            };
            let source = SftpSource::connect(&target, policy, progress).await?;
            Connection::Sftp(Box::new(source))
        }
        Remote::Http(url) => {
            let target = WebTarget {
                url,
                web: &config.server.web,
                timeout,
                validators: validators.map(std::path::Path::to_path_buf),
            };
            Connection::Https(Box::new(HttpsSource::connect(&target, progress.clone())?))
        }
    })
}

impl Connection {
    /// Reads a small record whole; over HTTPS with a conditional request, so
    /// an unchanged record costs an answer without a body.
    pub(crate) async fn read_record(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<Conditional, TransportError> {
        match self {
            Connection::Https(source) => source.read_conditional(path, limit).await,
            other => other
                .read_limited(path, limit)
                .await
                .map(|bytes| Conditional {
                    bytes,
                    unchanged: false,
                }),
        }
    }

    /// Whether bytes cross the network in the clear (`http://`).
    pub(crate) fn is_plain(&self) -> bool {
        matches!(self, Connection::Https(source) if source.is_plain())
    }

    /// Whether the server answered a range request with the whole file.
    pub(crate) fn ignores_ranges(&self) -> bool {
        matches!(self, Connection::Https(source) if source.ignores_ranges())
    }
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
            Connection::Https(source) => source.open(path).await.map(ConnectionFile::Https),
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
            (Connection::Https(source), ConnectionFile::Https(file)) => {
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

    async fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, TransportError> {
        match self {
            Connection::Https(source) => source.read_limited(path, limit).await,
            other => other.read_checked(path, limit, |_| true).await,
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
            Connection::Https(server) => server
                .create(path, append)
                .await
                .map(ConnectionFile::Report),
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
            (Connection::Https(server), ConnectionFile::Report(file)) => {
                server.write_at(file, offset, data).await
            }
            _ => Err(other_kind()),
        }
    }

    async fn finish(&self, file: ConnectionFile) -> Result<(), TransportError> {
        match (self, file) {
            (Connection::Folder(folder), ConnectionFile::Folder(file)) => folder.finish(file).await,
            (Connection::Sftp(server), ConnectionFile::Sftp(file)) => server.finish(file).await,
            (Connection::Https(server), ConnectionFile::Report(file)) => server.finish(file).await,
            _ => Err(other_kind()),
        }
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        match self {
            Connection::Folder(folder) => folder.rename(from, to).await,
            Connection::Sftp(server) => server.rename(from, to).await,
            Connection::Https(server) => server.rename(from, to).await,
        }
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        match self {
            Connection::Folder(folder) => folder.remove(path).await,
            Connection::Sftp(server) => server.remove(path).await,
            Connection::Https(server) => server.remove(path).await,
        }
    }
}
