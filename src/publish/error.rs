//! The publisher's error: every variant names the file or folder at fault, so the
//! one line `main` prints tells the administrator where to look.

use std::io;
use std::path::PathBuf;

use crate::manifest::format::{MANIFEST_FILE, META_DIR, SIGNATURE_SUFFIX, TIMESTAMP_FILE};
use crate::manifest::sign::SignError;

/// Why `keygen` or `publish` stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A key file is already there and `--force` was not given.
    #[error("refusing to overwrite {path} (use --force)")]
    Exists {
        /// The file that would have been overwritten.
        path: PathBuf,
    },
    /// A folder could not be created.
    #[error("failed to create folder {path}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// The repository is missing or is not a folder.
    #[error("repository {path} is not a folder")]
    NotAFolder {
        /// The repository as given.
        path: PathBuf,
    },
    /// A folder of the repository could not be listed.
    #[error("failed to list folder {path}")]
    List {
        /// The folder.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// Size, type or mtime of a file could not be read.
    #[error("failed to read metadata of {path}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A file could not be read.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A file could not be written (or its temporary twin created or flushed).
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A written file could not be renamed into place.
    #[error("failed to replace {path}")]
    Rename {
        /// The file being replaced.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A file or folder could not be made readable for the SFTP account.
    #[error("failed to set permissions of {path}")]
    Permissions {
        /// The file or folder.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// A record could not be turned into JSON.
    #[error("failed to encode {path}")]
    Encode {
        /// The record's file.
        path: PathBuf,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The private key file could not be read.
    #[error("failed to read private key {path}")]
    KeyRead {
        /// The key file.
        path: PathBuf,
        /// What the OS reported.
        #[source]
        source: io::Error,
    },
    /// The private key is not a PKCS#8 RSA key, or is too small to sign with.
    #[error("unusable private key {path}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Which check failed.
        #[source]
        source: SignError,
    },
    /// The private key lies inside the repository, where every client could fetch it.
    #[error("private key {key} lies inside the repository {repo}, where clients could read it")]
    KeyInRepository {
        /// The key file.
        key: PathBuf,
        /// The repository.
        repo: PathBuf,
    },
    /// Generating the key pair failed.
    #[error("failed to generate the publisher key pair")]
    Generate(#[source] SignError),
    /// Signing a record failed.
    #[error("failed to sign {path}")]
    Sign {
        /// The record's file.
        path: PathBuf,
        /// What the signer reported.
        #[source]
        source: SignError,
    },
    /// The previous timestamp record is missing beside the other records,
    /// damaged, or not signed with this key: there is no version a client would
    /// trust to go up from.
    #[error(
        "refusing to publish: previous record {path} {why}; restore the {META_DIR} records from a backup, or remove {TIMESTAMP_FILE}, {MANIFEST_FILE} and their {SIGNATURE_SUFFIX} files to publish anew"
    )]
    PreviousRecord {
        /// The record at fault.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The previous version is the largest there is.
    #[error("refusing to publish: version {version} in {path} cannot go up")]
    VersionExhausted {
        /// The previous timestamp record.
        path: PathBuf,
        /// Its version.
        version: u64,
    },
    /// The clock reads a time before 1970, so no version or expiry can be set.
    #[error("system clock is before 1970")]
    Clock,
}
