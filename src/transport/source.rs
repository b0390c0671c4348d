//! The small interface every source of repository bytes offers.
//!
//! Paths are relative to the repository root and `/`-separated; each source
//! resolves them against its own base. Size caps, hashing and throttling are
//! wrappers or callers' concerns, not the source's.

use std::fmt;

/// Bytes of a published repository, read-only.
pub(crate) trait Source {
    /// An open file.
    type File;

    /// Opens a file of the repository for reading.
    async fn open(&self, path: &str) -> Result<Self::File, TransportError>;

    /// Reads up to `len` bytes at `offset`; fewer only at the end of the file,
    /// none past it.
    async fn read_at(
        &self,
        file: &Self::File,
        offset: u64,
        len: u32,
    ) -> Result<Vec<u8>, TransportError>;

    /// Closes a file; a failure to close a read-only file loses nothing.
    async fn close(&self, file: Self::File);

    /// Reads a whole file, refusing one larger than `limit` bytes: the server
    /// may not feed the client endless data.
    async fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, TransportError> {
        const CHUNK: u32 = 32 * 1024;
        let file = self.open(path).await?;
        let mut data = Vec::new();
        let result = loop {
            match self.read_at(&file, data.len() as u64, CHUNK).await {
                Ok(chunk) if chunk.is_empty() => break Ok(data),
                Ok(chunk) => {
                    data.extend_from_slice(&chunk);
                    if data.len() as u64 > limit {
                        break Err(TransportError::new(
                            TransportErrorKind::TooLarge,
                            format!("{path} is larger than {limit} bytes"),
                        ));
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.close(file).await;
        result
    }
}

/// What went wrong, for callers that must branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Name resolution, TCP connect or the SSH handshake failed, or the
    /// connection was lost.
    Unreachable,
    /// The server refused the client's key.
    AuthRefused,
    /// The server's host key is unknown or changed.
    HostKey,
    /// The client's own key or known_hosts file cannot be used.
    ClientKey,
    /// No such file in the repository.
    NotFound,
    /// The server or folder refused access to this file.
    PermissionDenied,
    /// More data than allowed.
    TooLarge,
    /// No answer within the timeout.
    Timeout,
    /// Anything else about one file.
    Other,
}

/// A failure of a source, with the host, folder or file it concerns.
#[derive(Clone, Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// An error of `kind`, with a message naming what it concerns.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// The family, for exit codes and per-file decisions.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {}
