//! The records of the server layout and their file names.
//!
//! `timestamp.json` is small and names the exact `manifest.json` (sha256 and size);
//! `manifest.json` names one part per folder below `packages/` and one for every
//! other file, each by the sha256 and size of its exact bytes; a part lists its
//! files. The two signed records have a detached `.sig` beside them: the raw RSA
//! signature (PKCS#1 v1.5 or PSS, SHA-256) over the file's exact bytes. A part
//! needs no signature of its own: the signed manifest names its sha256.
//!
//! Parts are stored zstd-compressed under their sha256 (`parts/`), and a part
//! or manifest that changed can also be fetched as a zstd patch against the
//! one before it (`deltas/`), so a client pays for what changed in the folders
//! it mirrors. Verification lives in `verify.rs`, signing in `sign.rs`; this
//! file only says what the records hold and where they are.

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
/// Folder of the compressed parts inside [`META_DIR`].
pub const PARTS_DIR: &str = "parts";
/// Folder of the patches from one version of a record to the next inside [`META_DIR`].
pub const DELTAS_DIR: &str = "deltas";
/// Suffix of a signature bundle in [`SIGS_DIR`].
pub const BUNDLE_SUFFIX: &str = ".sigs";
/// The folder below the repository root whose folders each get a part.
pub const PACKAGES_DIR: &str = "packages";
/// The only record format this build reads and writes. Format 1 listed every
/// file in `manifest.json` itself.
pub const FORMAT: u32 = 2;

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
/// Upper bound on one part, whatever the manifest says.
pub const PART_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Upper bound on the compressed form (whole or patch) of a record of `size`
/// bytes: zstd never expands data by more than a few bytes per 128 KiB block.
pub fn compressed_limit(size: u64) -> u64 {
    size + size / 256 + 1024
}

/// Repository-relative path of the compressed part whose exact bytes have
/// sha256 `sha256` (lowercase hex).
pub fn part_path(sha256: &str) -> String {
    format!("{META_DIR}/{PARTS_DIR}/{sha256}.json.zst")
}

/// Repository-relative path of the patch that turns the record of sha256
/// `from` into the one of sha256 `to`.
pub fn delta_path(to: &str, from: &str) -> String {
    format!("{META_DIR}/{DELTAS_DIR}/{to}-{from}.zst")
}

/// Repository-relative path of the signature bundle of sha256 `sha256`.
pub fn bundle_path(sha256: &str) -> String {
    format!("{META_DIR}/{SIGS_DIR}/{sha256}{BUNDLE_SUFFIX}")
}

/// Repository-relative path of the block signature of the content `sha256`.
pub fn own_signature_path(sha256: &str) -> String {
    format!("{META_DIR}/{SIGS_DIR}/{}", signature_of(sha256))
}

/// The folder below `packages/` whose part lists `path`, or `None` when the
/// part of every other file does (the top level, `packages/*.xml`, other
/// folders). `packages` is matched in any letter case, as the store's NTFS does.
pub fn part_folder(path: &str) -> Option<&str> {
    let mut parts = path.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(top), Some(folder), Some(_)) if top.eq_ignore_ascii_case(PACKAGES_DIR) => {
            Some(folder)
        }
        _ => None,
    }
}

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

/// `manifest.json`: the parts of one version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Record format, [`FORMAT`].
    pub format: u32,
    /// Same as the timestamp's version.
    pub version: u64,
    /// One part without a folder (every file outside `packages/<folder>/`),
    /// then one per package folder, sorted by folder.
    pub parts: Vec<PartRef>,
}

/// A part as the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartRef {
    /// The folder below `packages/` whose files the part lists; absent for
    /// the part of every other file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    /// Lowercase hex sha256 of the part's exact (uncompressed) bytes.
    pub sha256: String,
    /// Size of those bytes.
    pub size: u64,
}

/// A part: the files of one package folder, or of everything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Record format, [`FORMAT`].
    pub format: u32,
    /// Lowercase hex sha256 of the signature bundle (`sigs/<sha256>.sigs`)
    /// that [`SignatureAt::Bundle`] offsets point into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
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
    /// Where the block signature of this content is, when one was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureAt>,
}

/// Where a file's block signature is. Its length follows from the file's size
/// (`delta::signature::signature_len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureAt {
    /// In a file of its own, `sigs/<sha256 of the content>.sig`.
    Own,
    /// At this offset of the part's signature bundle, with the signatures of
    /// the part's other small files, so that they cost one read together.
    Bundle(u64),
}

/// `items` (sorted by the path `path_of` gives) split into parts: the part
/// without a folder first, always there, then one per package folder in the
/// order of folder names.
pub fn group_into_parts<T>(
    items: Vec<T>,
    path_of: impl Fn(&T) -> &str,
) -> Vec<(Option<String>, Vec<T>)> {
    let mut folders: std::collections::BTreeMap<String, Vec<T>> = Default::default();
    let mut rest = Vec::new();
    for item in items {
        match part_folder(path_of(&item)) {
            Some(folder) => folders.entry(folder.to_owned()).or_default().push(item),
            None => rest.push(item),
        }
    }
    std::iter::once((None, rest))
        .chain(folders.into_iter().map(|(f, items)| (Some(f), items)))
        .collect()
}
