//! Failures of the local store and state folder (exit 208).

use std::path::{Path, PathBuf};

/// A local file operation that failed, naming the path.
#[derive(Debug, thiserror::Error)]
#[error("failed to {op} {}: {source}", path.display())]
pub struct StoreError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl StoreError {
    /// `op` is a verb phrase: "create", "write", "rename into place".
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        StoreError {
            op,
            path: path.to_owned(),
            source,
        }
    }
}
