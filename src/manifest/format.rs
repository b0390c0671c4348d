//! The two signed JSON records of the server layout and their file names.
//!
//! `timestamp.json` is small and names the exact `manifest.json` (sha256 and size);
//! `manifest.json` lists every published file. Each has a detached `.sig` beside it:
//! the raw RSA signature (PKCS#1 v1.5 or PSS, SHA-256) over the file's exact bytes.
//! Verification lives in `verify.rs`, signing in `sign.rs`; this file only says what
//! the records hold.

use serde::{Deserialize, Serialize};

/// Folder of the repository that holds the records; never mirrored as content.
pub const META_DIR: &str = ".wpkgsync";
/// The manifest's name inside [`META_DIR`].
pub const MANIFEST_FILE: &str = "manifest.json";
/// The timestamp record's name inside [`META_DIR`].
pub const TIMESTAMP_FILE: &str = "timestamp.json";
/// Folder of the block signatures inside [`META_DIR`].
pub const SIGS_DIR: &str = "sigs";
/// Prefix of the temporary files a sync writes beside their targets. A manifest
/// path with a component that starts with it (in any letter case) is refused,
/// so a published file can never be taken for, or overwrite, a download in
/// progress.
pub const TEMP_PREFIX: &str = ".wpkgsync-tmp-";
/// Suffix of a detached signature.
pub const SIGNATURE_SUFFIX: &str = ".sig";
/// Smallest RSA modulus, in bits, that a publisher signs with and a client
/// pins (DESIGN.md, "Trust").
pub const MIN_KEY_BITS: usize = 3072;
/// The only record format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Name of the detached signature of `record`: `manifest.json` is signed in
/// `manifest.json.sig`, and the block signature of a content in
/// `<sha256>.sig`.
pub fn signature_of(record: &str) -> String {
    format!("{record}{SIGNATURE_SUFFIX}")
}

/// Upper bound on the timestamp record read from a server (it is a few hundred bytes).
pub const TIMESTAMP_MAX_BYTES: u64 = 64 * 1024;
/// Upper bound on a signature file (a 16 384-bit key signs in 2 KiB).
pub const SIGNATURE_MAX_BYTES: u64 = 4 * 1024;
/// Upper bound on a manifest even before the timestamp names its size.
pub const MANIFEST_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// `timestamp.json`: which manifest is current and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    /// Record format, [`FORMAT`].
    pub format: u32,
    /// The manifest's version; only ever goes up.
    pub version: u64,
    /// Lowercase hex sha256 of the exact bytes of `manifest.json`.
    pub manifest_sha256: String,
    /// Size of `manifest.json` in bytes.
    pub manifest_size: u64,
    /// Unix seconds when this record was published.
    pub published: u64,
    /// Unix seconds after which clients refuse the record (freeze protection).
    pub expires: u64,
}

/// `manifest.json`: every published file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Record format, [`FORMAT`].
    pub format: u32,
    /// Same as the timestamp's version.
    pub version: u64,
    /// Files sorted by path.
    pub files: Vec<FileEntry>,
}

/// One published file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative, `/`-separated path inside the repository.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Path of the block signature of this content, relative to the repository,
    /// when one was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_signature: Option<String>,
}
