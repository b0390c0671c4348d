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

    /// The bytes read through `file` were wrong: the sources that served
    /// them are not asked again this run. Returns whether another source
    /// remains to ask; a single source has none.
    fn reject(&self, _file: &Self::File) -> bool {
        false
    }

    /// Reads a whole file, refusing one larger than `limit` bytes: the server
    /// may not feed the client endless data.
    async fn read_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>, TransportError> {
        self.read_checked(path, limit, |_| true).await
    }

    /// Reads a whole file as [`Source::read_limited`] does; bytes that fail
    /// `check` are rejected and read again from the next source while there
    /// is one. The last bytes read are returned either way: the caller's own
    /// verification says what is wrong with them.
    async fn read_checked(
        &self,
        path: &str,
        limit: u64,
        check: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<u8>, TransportError> {
        loop {
            let file = self.open(path).await?;
            let read = read_to_end(self, &file, path, limit).await;
            let again = matches!(&read, Ok(data) if !check(data)) && self.reject(&file);
            self.close(file).await;
            if !again {
                return read;
            }
        }
    }
}

/// Reads `file` from its start to its end, at most `limit` bytes.
async fn read_to_end<S: Source + ?Sized>(
    source: &S,
    file: &S::File,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, TransportError> {
    const CHUNK: u32 = 64 * 1024;
    let mut data = Vec::new();
    loop {
        let chunk = source.read_at(file, data.len() as u64, CHUNK).await?;
        if chunk.is_empty() {
            return Ok(data);
        }
        data.extend_from_slice(&chunk);
        if data.len() as u64 > limit {
            return Err(TransportError::new(
                TransportErrorKind::TooLarge,
                format!("{path} is larger than {limit} bytes"),
            ));
        }
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
