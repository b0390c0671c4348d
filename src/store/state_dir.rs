//! The state folder (`sync.state`) and the names of its files, in one place:
//! the state file, the lock, the local log, and the caches of the last
//! verified records (the manifest, and its parts in `parts/`).

use std::path::{Path, PathBuf};

use super::{StoreError, write_atomically};

/// The state folder: the administrators' alone, beside the store, never in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir(PathBuf);

/// The folder of the state folder that caches the last verified part of each
/// package folder.
const PARTS_FOLDER: &str = "parts";

/// A file of the state folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFile {
    /// `state.json`: versions accepted, runs and their codes.
    State,
    /// `wpkgsync.lock`: held while a sync runs.
    Lock,
    /// `wpkgsync.log`: the local log.
    Log,
    /// `wpkgsync.log.1`: the log before the last rotation.
    OlderLog,
    /// `store-index.json`: the files the last sync verified, with their identity.
    StoreIndex,
    /// The last verified `manifest.json`.
    Manifest,
    /// Its signature.
    ManifestSignature,
    /// The last verified `timestamp.json`, for the gossip pulse.
    Timestamp,
    /// Its signature.
    TimestampSignature,
}

impl StateFile {
    /// The file's name in the state folder. The kept records have the names
    /// they have on the server, so one reader serves both folders.
    pub const fn name(self) -> &'static str {
        match self {
            StateFile::State => "state.json",
            StateFile::Lock => "wpkgsync.lock",
            StateFile::Log => "wpkgsync.log",
            StateFile::OlderLog => "wpkgsync.log.1",
            StateFile::StoreIndex => "store-index.json",
            StateFile::Manifest => "manifest.json",
            StateFile::ManifestSignature => "manifest.json.sig",
            StateFile::Timestamp => "timestamp.json",
            StateFile::TimestampSignature => "timestamp.json.sig",
        }
    }
}

impl StateDir {
    /// The state folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir(path.into())
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Where `file` is.
    pub fn file(&self, file: StateFile) -> PathBuf {
        self.0.join(file.name())
    }

    /// The folder of the cached manifest parts.
    pub(crate) fn parts(&self) -> PathBuf {
        self.0.join(PARTS_FOLDER)
    }

    /// Replaces `file` with `bytes` through a temporary file and a rename.
    pub fn write(&self, file: StateFile, bytes: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.0, file.name(), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::format::{MANIFEST_FILE, TIMESTAMP_FILE, signature_of};

    #[test]
    fn kept_records_have_their_names_on_the_server() {
        let signature = signature_of;
        assert_eq!(StateFile::Manifest.name(), MANIFEST_FILE);
        assert_eq!(StateFile::Timestamp.name(), TIMESTAMP_FILE);
        assert_eq!(
            StateFile::ManifestSignature.name(),
            signature(MANIFEST_FILE)
        );
        assert_eq!(
            StateFile::TimestampSignature.name(),
            signature(TIMESTAMP_FILE)
        );
    }
}
