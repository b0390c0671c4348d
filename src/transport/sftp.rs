//! The repository on an OpenSSH server, read over SFTP with russh and russh-sftp.
//!
//! The server runs nothing for us but its own `internal-sftp`, so every byte is a
//! plain SFTP read. The host key is always checked against the client's
//! known_hosts file: an unknown or changed key ends the connection before
//! authentication. Reads of one file are independent requests, so the caller
//! may keep many in flight.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use super::known_hosts;
use super::progress::Progress;
use super::reports::ReportFolder;
use super::source::{Source, TransportError, TransportErrorKind};
use crate::text::escape_controls;

/// Everything needed to reach the repository on a server.
#[derive(Clone, Debug)]
pub(crate) struct SshTarget {
    /// Account name.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The client's OpenSSH private key.
    pub identity: PathBuf,
    /// OpenSSH known_hosts file.
    pub known_hosts: PathBuf,
    /// Repository folder on the server.
    pub root: String,
    /// Limit for connecting, authenticating and starting SFTP.
    pub timeout: Duration,
    /// Limit for one SFTP request: the run's deadline. Silence is judged for
    /// the whole session by [`Progress`], never by a request's age, which on
    /// a slow link counts the requests queued before it.
    pub request_limit: Duration,
}

/// What the host key check concluded, kept for the error message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum HostKeyVerdict {
    Known,
    Unknown(String),
    Changed(String),
    Revoked(String),
    Unusable(String),
}

/// Whether an unknown host key may be recorded; a scheduled run never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostKeyPolicy {
    /// Only keys already in known_hosts are accepted.
    Strict,
    /// An administrator at a console (`/setup`) is shown the fingerprint of an
    /// unknown key and may record it (trust on first use). A changed key is
    /// still refused.
    AskAtConsole,
}

/// The russh handler: it only checks the host key.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    verdict: Arc<Mutex<Option<HostKeyVerdict>>>,
}

impl HostKeyCheck {
    fn judge(&self, offered: &PublicKeyOrCertificate) -> HostKeyVerdict {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return HostKeyVerdict::Unusable("the server offered a certificate, not a key".into());
        };
        let fingerprint = key.fingerprint(Default::default()).to_string();
        // A revoked key is refused even where another line accepts it.
        if let Some(verdict) = self.revocation(key, &fingerprint) {
            return verdict;
        }
        let known = match russh::keys::known_hosts::known_host_keys_path(
            &self.host,
            self.port,
            &self.known_hosts,
        ) {
            Ok(known) => known,
            Err(e) => {
                return HostKeyVerdict::Unusable(format!(
                    "failed to read known_hosts {}: {e}",
                    self.known_hosts.display()
                ));
            }
        };
        if known
            .iter()
            .any(|(_, recorded)| recorded.key_data() == key.key_data())
        {
            HostKeyVerdict::Known
        } else if let Some((line, _)) = known.first() {
            HostKeyVerdict::Changed(format!(
                "host key of {} changed: server offers {} {fingerprint}, {} line {line} records another",
                self.endpoint(),
                key.algorithm(),
                self.known_hosts.display()
            ))
        } else {
            HostKeyVerdict::Unknown(format!(
                "host key of {} is not in {}: server offers {} {fingerprint}",
                self.endpoint(),
                self.known_hosts.display(),
                key.algorithm()
            ))
        }
    }

    /// The verdict when known_hosts lists the offered key as `@revoked`, or its
    /// revocations cannot be read; `None` when the key is not revoked.
    fn revocation(
        &self,
        key: &russh::keys::PublicKey,
        fingerprint: &str,
    ) -> Option<HostKeyVerdict> {
        let path = self.known_hosts.display();
        let text = match std::fs::read(&self.known_hosts) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            // No file, no revocations; the ordinary check reports the unknown key.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                return Some(HostKeyVerdict::Unusable(format!(
                    "failed to read known_hosts {path}: {e}"
                )));
            }
        };
        match known_hosts::revoked_at(&text, key) {
            Ok(None) => None,
            Ok(Some(line)) => Some(HostKeyVerdict::Revoked(format!(
                "host key of {} is revoked: server offers {} {fingerprint}, {path} line {line} revokes it",
                self.endpoint(),
                key.algorithm(),
            ))),
            Err(why) => Some(HostKeyVerdict::Unusable(format!(
                "known_hosts {path}: {why}"
            ))),
        }
    }

    /// Shows the unknown key and records it in known_hosts if the administrator
    /// answers yes.
    fn ask_and_record(&self, why: &str, key: &russh::keys::PublicKey) -> HostKeyVerdict {
        eprint!(
            "{why}\nRecord this key in {} and trust it from now on? [y/N] ",
            self.known_hosts.display()
        );
        let mut answer = String::new();
        if std::io::stdin().read_line(&mut answer).is_err()
            || !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        {
            return HostKeyVerdict::Unknown(format!("{why} (not accepted)"));
        }
        match russh::keys::known_hosts::learn_known_hosts_path(
            &self.host,
            self.port,
            key,
            &self.known_hosts,
        ) {
            Ok(()) => HostKeyVerdict::Known,
            Err(e) => HostKeyVerdict::Unusable(format!(
                "failed to record the host key in {}: {e}",
                self.known_hosts.display()
            )),
        }
    }

    fn endpoint(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let mut verdict = self.judge(offered);
        if let (
            HostKeyVerdict::Unknown(why),
            HostKeyPolicy::AskAtConsole,
            PublicKeyOrCertificate::PublicKey { key, .. },
        ) = (&verdict, self.policy, offered)
        {
            verdict = self.ask_and_record(why, key);
        }
        let accepted = verdict == HostKeyVerdict::Known;
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(accepted)
    }
}

/// An authenticated SFTP session on the repository.
pub(crate) struct SftpSource {
    sftp: RawSftpSession,
    root: String,
    endpoint: String,
    // Keeps the SSH connection open as long as the session lives.
    _ssh: client::Handle<HostKeyCheck>,
}

/// An open remote file: the SFTP handle and its path for messages.
pub(crate) struct RemoteFile {
    handle: String,
    path: String,
}

impl SftpSource {
    /// Connects, checks the host key, authenticates and opens the SFTP subsystem.
    /// Every byte the SFTP channel receives touches `progress`.
    pub(crate) async fn connect(
        target: &SshTarget,
        policy: HostKeyPolicy,
        progress: &Progress,
    ) -> Result<SftpSource, TransportError> {
        let endpoint = format!("{}@{}:{}", target.user, target.host, target.port);
        let key = load_identity(target)?;
        let mut ssh = connect_checking_host_key(target, policy, &endpoint).await?;
        authenticate(&mut ssh, target, key, &endpoint).await?;
        let channel = open_sftp_channel(&ssh, target, &endpoint).await?;
        let sftp = start_sftp(channel, target, &endpoint, progress).await?;
        Ok(SftpSource {
            sftp,
            root: target.root.trim_end_matches('/').to_owned(),
            endpoint,
            _ssh: ssh,
        })
    }

    fn resolve(&self, path: &str) -> String {
        format!("{}/{path}", self.root)
    }

    fn error(&self, path: &str, e: SftpError) -> TransportError {
        let kind = kind_of(&e);
        TransportError::new(
            kind,
            format!(
                "failed to read {} on {}: {}",
                self.resolve(path),
                self.endpoint,
                said(&e)
            ),
        )
    }
}

/// The SSH settings of every session.
fn client_config() -> Arc<client::Config> {
    Arc::new(client::Config {
        // A silent server is the run's timeout (207), judged by the
        // session's progress watchdog; russh's own inactivity limit would
        // end the session first and look like a lost server.
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        // AES-GCM runs on the CPU's AES instructions and decrypts faster
        // than ChaCha20 where they exist; the rest of the default order
        // stays as a fallback.
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(&[
                russh::cipher::AES_256_GCM,
                russh::cipher::CHACHA20_POLY1305,
                russh::cipher::AES_256_CTR,
                russh::cipher::AES_192_CTR,
                russh::cipher::AES_128_CTR,
            ]),
            ..russh::Preferred::DEFAULT
        },
        ..Default::default()
    })
}

/// Opens the TCP connection and runs the SSH handshake within the target's
/// timeout; the handshake ends before authentication unless the host key is
/// known (or, at a console, accepted).
async fn connect_checking_host_key(
    target: &SshTarget,
    policy: HostKeyPolicy,
    endpoint: &str,
) -> Result<client::Handle<HostKeyCheck>, TransportError> {
    let verdict = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck {
        host: target.host.clone(),
        port: target.port,
        known_hosts: target.known_hosts.clone(),
        policy,
        verdict: verdict.clone(),
    };
    let connecting = client::connect(
        client_config(),
        (target.host.as_str(), target.port),
        handler,
    );
    match tokio::time::timeout(target.timeout, connecting).await {
        Err(_) => Err(TransportError::new(
            TransportErrorKind::Unreachable,
            format!(
                "no answer from {endpoint} within {}s",
                target.timeout.as_secs()
            ),
        )),
        Ok(Ok(ssh)) => Ok(ssh),
        Ok(Err(e)) => {
            let verdict = verdict.lock().ok().and_then(|mut v| v.take());
            Err(connect_error(verdict, &e, endpoint))
        }
    }
}

/// Why the handshake failed: the host key check's verdict when it refused the
/// key, otherwise the SSH library's error.
fn connect_error(
    verdict: Option<HostKeyVerdict>,
    e: &russh::Error,
    endpoint: &str,
) -> TransportError {
    match verdict {
        Some(
            HostKeyVerdict::Unknown(why)
            | HostKeyVerdict::Changed(why)
            | HostKeyVerdict::Revoked(why),
        ) => TransportError::new(TransportErrorKind::HostKey, why),
        Some(HostKeyVerdict::Unusable(why)) => {
            TransportError::new(TransportErrorKind::HostKey, why)
        }
        _ => TransportError::new(
            TransportErrorKind::Unreachable,
            format!("failed to connect to {endpoint}: {}", said(e)),
        ),
    }
}

/// Offers the client's key within the target's timeout.
async fn authenticate(
    ssh: &mut client::Handle<HostKeyCheck>,
    target: &SshTarget,
    key: russh::keys::PrivateKey,
    endpoint: &str,
) -> Result<(), TransportError> {
    let authenticating = async {
        // Only an RSA key needs to know which hashes the server takes, and
        // asking waits up to a second for a server that does not say.
        let hash = if key.algorithm().is_rsa() {
            ssh.best_supported_rsa_hash().await?.flatten()
        } else {
            None
        };
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        ssh.authenticate_publickey(target.user.clone(), key).await
    };
    match tokio::time::timeout(target.timeout, authenticating).await {
        Err(_) => Err(TransportError::new(
            TransportErrorKind::Unreachable,
            format!("authentication at {endpoint} timed out"),
        )),
        Ok(Err(e)) => Err(TransportError::new(
            TransportErrorKind::Unreachable,
            format!("failed to authenticate at {endpoint}: {}", said(&e)),
        )),
        Ok(Ok(result)) if !result.success() => Err(TransportError::new(
            TransportErrorKind::AuthRefused,
            format!("{endpoint} refused the key {}", target.identity.display()),
        )),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Opens a session channel and requests the `sftp` subsystem within the
/// target's timeout.
async fn open_sftp_channel(
    ssh: &client::Handle<HostKeyCheck>,
    target: &SshTarget,
    endpoint: &str,
) -> Result<russh::Channel<client::Msg>, TransportError> {
    let opening = async {
        let channel = ssh.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        Ok::<_, russh::Error>(channel)
    };
    match tokio::time::timeout(target.timeout, opening).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(e)) => Err(TransportError::new(
            TransportErrorKind::Unreachable,
            format!("failed to open SFTP at {endpoint}: {}", said(&e)),
        )),
        Err(_) => Err(TransportError::new(
            TransportErrorKind::Unreachable,
            format!(
                "SFTP at {endpoint} did not start within {}s",
                target.timeout.as_secs()
            ),
        )),
    }
}

/// Runs the SFTP handshake on `channel` within the target's timeout, then
/// lets each request take up to the run's deadline.
async fn start_sftp(
    channel: russh::Channel<client::Msg>,
    target: &SshTarget,
    endpoint: &str,
    progress: &Progress,
) -> Result<RawSftpSession, TransportError> {
    let stream = Arrivals {
        inner: channel.into_stream(),
        progress: progress.clone(),
    };
    let sftp = RawSftpSession::new(stream);
    sftp.set_timeout(target.timeout.as_secs().max(1));
    sftp.init().await.map_err(|e| {
        TransportError::new(
            TransportErrorKind::Unreachable,
            format!("SFTP handshake with {endpoint} failed: {}", said(&e)),
        )
    })?;
    sftp.set_timeout(
        target
            .request_limit
            .as_secs()
            .max(target.timeout.as_secs())
            .max(1),
    );
    Ok(sftp)
}

/// The SFTP channel's byte stream, touching the session's clock whenever
/// bytes arrive: a 64 KiB answer on a slow link is progress long before it
/// is complete.
struct Arrivals<S> {
    inner: S,
    progress: Progress,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Arrivals<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.progress.touch();
        }
        polled
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Arrivals<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An error as the server or the SSH library put it, which may quote the
/// server (an SFTP status message, a disconnect reason), with control
/// characters escaped.
fn said(e: &impl std::fmt::Display) -> String {
    escape_controls(&e.to_string()).into_owned()
}

/// What an SFTP failure means to callers that branch.
fn kind_of(e: &SftpError) -> TransportErrorKind {
    match e {
        SftpError::Status(status) => match status.status_code {
            StatusCode::NoSuchFile => TransportErrorKind::NotFound,
            StatusCode::PermissionDenied => TransportErrorKind::PermissionDenied,
            StatusCode::NoConnection | StatusCode::ConnectionLost => {
                TransportErrorKind::Unreachable
            }
            _ => TransportErrorKind::Other,
        },
        SftpError::Timeout => TransportErrorKind::Timeout,
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => TransportErrorKind::Unreachable,
        SftpError::Limited(_) | SftpError::UnexpectedPacket => TransportErrorKind::Other,
    }
}

/// Reads the client's OpenSSH private key (ed25519, RSA, ECDSA; no passphrase:
/// a scheduled task has no one to ask).
fn load_identity(target: &SshTarget) -> Result<russh::keys::PrivateKey, TransportError> {
    russh::keys::load_secret_key(&target.identity, None).map_err(|e| {
        TransportError::new(
            TransportErrorKind::ClientKey,
            format!("failed to load identity {}: {e}", target.identity.display()),
        )
    })
}

impl Source for SftpSource {
    type File = RemoteFile;

    async fn open(&self, path: &str) -> Result<RemoteFile, TransportError> {
        let handle = self
            .sftp
            .open(self.resolve(path), OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| self.error(path, e))?;
        Ok(RemoteFile {
            handle: handle.handle,
            path: path.to_owned(),
        })
    }

    async fn read_at(
        &self,
        file: &RemoteFile,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError> {
        match self.sftp.read(file.handle.as_str(), offset, len).await {
            Ok(data) => Ok(data.data),
            Err(SftpError::Status(status)) if status.status_code == StatusCode::Eof => {
                Ok(Vec::new())
            }
            Err(e) => Err(self.error(&file.path, e)),
        }
    }

    async fn close(&self, file: RemoteFile) {
        // A read-only handle that fails to close costs the server one slot until
        // the session ends; nothing to repair.
        let _ = self.sftp.close(file.handle).await;
    }
}

impl SftpSource {
    fn write_error(&self, path: &str, e: SftpError) -> TransportError {
        let kind = kind_of(&e);
        TransportError::new(
            kind,
            format!(
                "failed to write {} on {}: {}",
                escape_controls(path),
                self.endpoint,
                said(&e)
            ),
        )
    }
}

/// OpenSSH's rename that replaces an existing target atomically; plain SFTP
/// v3 rename refuses to.
const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// Two SSH strings, the request data of `posix-rename@openssh.com`.
fn two_strings(first: &str, second: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(8 + first.len() + second.len());
    for text in [first, second] {
        data.extend_from_slice(&(text.len() as u32).to_be_bytes());
        data.extend_from_slice(text.as_bytes());
    }
    data
}

/// Reports go to paths of their own (the reports folder), not below the
/// repository root.
impl ReportFolder for SftpSource {
    type Writer = RemoteFile;

    async fn create(&self, path: &str, append: bool) -> Result<RemoteFile, TransportError> {
        let flags = OpenFlags::WRITE
            | OpenFlags::CREATE
            | if append {
                OpenFlags::APPEND
            } else {
                // A temporary name: never an existing file or link.
                OpenFlags::EXCLUDE
            };
        let handle = self
            .sftp
            .open(path, flags, FileAttributes::empty())
            .await
            .map_err(|e| self.write_error(path, e))?;
        Ok(RemoteFile {
            handle: handle.handle,
            path: path.to_owned(),
        })
    }

    async fn write_at(
        &self,
        file: &RemoteFile,
        offset: u64,
        data: &[u8],
    ) -> Result<(), TransportError> {
        self.sftp
            .write(file.handle.as_str(), offset, data.to_vec())
            .await
            .map(drop)
            .map_err(|e| self.write_error(&file.path, e))
    }

    async fn finish(&self, file: RemoteFile) -> Result<(), TransportError> {
        self.sftp
            .close(file.handle)
            .await
            .map(drop)
            .map_err(|e| self.write_error(&file.path, e))
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransportError> {
        match self
            .sftp
            .extended(POSIX_RENAME, two_strings(from, to))
            .await
        {
            Ok(Packet::Status(status)) if status.status_code == StatusCode::Ok => Ok(()),
            Ok(Packet::Status(status)) if status.status_code != StatusCode::OpUnsupported => {
                Err(self.write_error(to, SftpError::Status(status)))
            }
            Ok(Packet::Status(_)) => {
                // A server without the extension: replace in two steps.
                let _ = self.sftp.remove(to).await;
                self.sftp
                    .rename(from, to)
                    .await
                    .map(drop)
                    .map_err(|e| self.write_error(to, e))
            }
            Ok(_) => Err(self.write_error(to, SftpError::UnexpectedPacket)),
            Err(e) => Err(self.write_error(to, e)),
        }
    }

    async fn remove(&self, path: &str) -> Result<(), TransportError> {
        self.sftp
            .remove(path)
            .await
            .map(drop)
            .map_err(|e| self.write_error(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::Status;

    #[test]
    fn a_server_status_message_cannot_forge_a_log_line() {
        let status = Status {
            id: 7,
            status_code: StatusCode::Failure,
            error_message: "denied\n2026-12-01T00:00:00Z [1] exit 0\u{1b}[2J".into(),
            language_tag: "en".into(),
        };
        let text = said(&SftpError::Status(status));
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("denied\\n2026"), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
    }
}
