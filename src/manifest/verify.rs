//! The client's side of the trust chain: pinned key, timestamp, manifest, parts.
//!
//! Each step bounds the size, checks the signature (or, for a part, the sha256
//! the signed manifest names) over the exact bytes, and only then parses. Only
//! this file builds a [`VerifiedManifest`] and adds files to it; the sync code
//! takes nothing else, so an unverified list of files cannot reach the store.
//! Fetching the bytes is the transport's job, checking each file's content after
//! download is the sync's (against the sha256 kept here).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use super::format::{
    FORMAT, FileEntry, MANIFEST_FILE, MIN_KEY_BITS, Manifest, PACKAGES_DIR, PART_MAX_BYTES, Part,
    SignatureAt, TIMESTAMP_FILE, Timestamp, bundle_path, own_signature_path, part_folder,
};
use super::path::{PathError, RelPath, check_case_duplicates};

/// The publisher's public key, pinned on the client.
#[derive(Clone, Debug)]
pub struct PinnedKey(RsaPublicKey);

/// What is wrong with the key, a record or its signature.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The pinned key file could not be read.
    #[error("failed to read publisher key {path}")]
    KeyRead {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The pinned key file is not an SPKI PEM RSA public key of enough bits.
    #[error("publisher key {path} is not usable: {why}")]
    KeyInvalid {
        /// The key file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A record or its signature is missing on the server.
    #[error("{name} is missing on the server")]
    Missing {
        /// Record name.
        name: String,
    },
    /// A record is larger than any genuine one.
    #[error("{name} is larger than {limit} bytes")]
    TooLarge {
        /// Record name.
        name: String,
        /// The bound.
        limit: u64,
    },
    /// The signature does not verify with the pinned key.
    #[error("signature of {name} is not valid for the pinned publisher key")]
    BadSignature {
        /// Record name.
        name: String,
    },
    /// The manifest's bytes are not the ones the timestamp names.
    #[error("{MANIFEST_FILE} does not match the sha256 and size in {TIMESTAMP_FILE}")]
    ManifestMismatch,
    /// A part's bytes are not the ones the manifest names.
    #[error("the part of {0} does not match the sha256 and size in {MANIFEST_FILE}")]
    PartMismatch(String),
    /// The record is signed but not what this client understands.
    #[error("{name} is malformed: {why}")]
    Malformed {
        /// Record name.
        name: String,
        /// Why.
        why: String,
    },
    /// A signed manifest names a path that could leave the store.
    #[error("{MANIFEST_FILE} names a refused path: {0}")]
    HostilePath(#[from] PathError),
    /// Rollback: version must not go down.
    #[error("manifest version {offered} is older than the last accepted version {accepted}")]
    Rollback {
        /// Version on the server.
        offered: u64,
        /// Last version this client accepted.
        accepted: u64,
    },
    /// Replay: one version, one manifest. A version already accepted may come
    /// again only with the manifest accepted under it.
    #[error(
        "manifest version {version} names another manifest than the one accepted under that version (replay)"
    )]
    Replay {
        /// The version on the server, equal to the accepted one.
        version: u64,
    },
    /// Freeze: an expired record means the publisher stopped vouching for it.
    #[error("{TIMESTAMP_FILE} version {version} expired at unix time {expires}")]
    Expired {
        /// Version on the server.
        version: u64,
        /// When it expired.
        expires: u64,
    },
}

/// The two exit codes manifest errors map to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestErrorKind {
    /// Missing, malformed, or badly signed (204), or the pinned key is unusable.
    Invalid,
    /// Older than accepted, or expired (205).
    Stale,
}

impl ManifestError {
    /// Which family this error belongs to, for the exit code.
    pub fn kind(&self) -> ManifestErrorKind {
        match self {
            ManifestError::Rollback { .. }
            | ManifestError::Replay { .. }
            | ManifestError::Expired { .. } => ManifestErrorKind::Stale,
            ManifestError::KeyRead { .. }
            | ManifestError::KeyInvalid { .. }
            | ManifestError::Missing { .. }
            | ManifestError::TooLarge { .. }
            | ManifestError::BadSignature { .. }
            | ManifestError::ManifestMismatch
            | ManifestError::PartMismatch(_)
            | ManifestError::Malformed { .. }
            | ManifestError::HostilePath(_) => ManifestErrorKind::Invalid,
        }
    }
}

impl PinnedKey {
    /// Reads the pinned SPKI PEM key and refuses one below [`MIN_KEY_BITS`].
    pub fn load(path: &Path) -> Result<PinnedKey, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::KeyRead {
            path: path.to_owned(),
            source,
        })?;
        PinnedKey::from_pem(&text).map_err(|why| ManifestError::KeyInvalid {
            path: path.to_owned(),
            why,
        })
    }

    /// Parses an SPKI PEM key.
    pub fn from_pem(text: &str) -> Result<PinnedKey, String> {
        let key = RsaPublicKey::from_public_key_pem(text)
            .map_err(|e| format!("not an SPKI PEM RSA public key ({e})"))?;
        PinnedKey::from_public(key)
    }

    /// Wraps a public key of at least [`MIN_KEY_BITS`].
    pub fn from_public(key: RsaPublicKey) -> Result<PinnedKey, String> {
        // The modulus's exact bit length: `size()` rounds up to whole bytes, so
        // a 3065-bit modulus would pass as 3072.
        let bits = key.n().bits();
        if bits < MIN_KEY_BITS {
            return Err(format!("{bits}-bit key, at least {MIN_KEY_BITS} required"));
        }
        Ok(PinnedKey(key))
    }

    /// Checks an RSA SHA-256 signature, PKCS#1 v1.5 or PSS, over exactly `bytes`.
    pub fn verifies(&self, bytes: &[u8], signature: &[u8]) -> bool {
        let pkcs1 = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(self.0.clone());
        if let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature)
            && pkcs1.verify(bytes, &sig).is_ok()
        {
            return true;
        }
        let pss = rsa::pss::VerifyingKey::<Sha256>::new(self.0.clone());
        rsa::pss::Signature::try_from(signature).is_ok_and(|sig| pss.verify(bytes, &sig).is_ok())
    }
}

/// What this client accepted last: the floor for the rollback and replay checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The highest version accepted.
    pub version: u64,
    /// The sha256 of the manifest accepted under it; `None` when not known
    /// (a state written before it was kept, or a gossip listener, to which an
    /// equal version is no news anyway).
    pub manifest_sha256: Option<[u8; 32]>,
}

impl Accepted {
    /// A floor of `version` whose manifest is not known.
    pub fn version(version: u64) -> Accepted {
        Accepted {
            version,
            manifest_sha256: None,
        }
    }
}

/// A timestamp record whose signature, version and expiry were checked.
#[derive(Clone, Debug)]
pub struct VerifiedTimestamp {
    record: Timestamp,
    manifest_sha256: [u8; 32],
}

impl VerifiedTimestamp {
    /// The version it vouches for.
    pub fn version(&self) -> u64 {
        self.record.version
    }

    /// The sha256 of the manifest it names.
    pub fn manifest_sha256(&self) -> &[u8; 32] {
        &self.manifest_sha256
    }

    /// The exact size of the manifest it names: the read limit for it.
    pub fn manifest_size(&self) -> u64 {
        self.record.manifest_size
    }
}

/// Where a file's block signature can be read: `len` bytes at `offset` of
/// `path`, a file of its own or a part's bundle. Unsigned data: it only guides
/// which blocks to reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignatureLocation {
    path: RelPath,
    offset: Option<u64>,
}

impl SignatureLocation {
    /// The file that holds it, repository-relative.
    pub(crate) fn path(&self) -> &RelPath {
        &self.path
    }

    /// Where in that file it starts; `None` for a file of its own.
    pub(crate) fn offset(&self) -> Option<u64> {
        self.offset
    }
}

/// One file the publisher vouches for. Only this file makes one, so a file
/// the store receives is always one the signed manifest lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedFile {
    path: RelPath,
    size: u64,
    mtime: i64,
    sha256: [u8; 32],
    block_signature: Option<SignatureLocation>,
}

impl VerifiedFile {
    /// Where it goes in the store.
    pub(crate) fn path(&self) -> &RelPath {
        &self.path
    }

    /// Its exact size; reading more is refused (endless data).
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Modification time to give the local copy, Unix seconds.
    pub(crate) fn mtime(&self) -> i64 {
        self.mtime
    }

    /// The content's sha256; the only test of a good file.
    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Where the publisher put this content's block signature, if anywhere.
    pub(crate) fn block_signature(&self) -> Option<&SignatureLocation> {
        self.block_signature.as_ref()
    }
}

/// A part the verified manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartInfo {
    folder: Option<String>,
    sha256: [u8; 32],
    size: u64,
    loaded: bool,
}

impl PartInfo {
    /// The folder below `packages/` it lists; `None` for every other file.
    pub(crate) fn folder(&self) -> Option<&str> {
        self.folder.as_deref()
    }

    /// The sha256 of its exact bytes.
    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// The exact size of those bytes: the read limit for it.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Its files are among the manifest's.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }
}

/// The signed list of parts, checked against the timestamp, and the files of
/// the parts added so far, checked against every path rule.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedManifest {
    version: u64,
    sha256: [u8; 32],
    parts: Vec<PartInfo>,
    files: Vec<VerifiedFile>,
}

impl VerifiedManifest {
    /// The accepted version.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The sha256 of the manifest's exact bytes, to remember with its version.
    pub(crate) fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    /// Every part the manifest names: the one without a folder first, then
    /// the package folders in order.
    pub(crate) fn parts(&self) -> &[PartInfo] {
        &self.parts
    }

    /// The files of the parts added so far, sorted by path.
    pub(crate) fn files(&self) -> &[VerifiedFile] {
        &self.files
    }

    /// Checks each part's bytes (`parts[index]`) against the sha256 and size
    /// the manifest names, then every path in it, and adds its files. A part
    /// lists only the files of its folder; the one without a folder lists no
    /// file inside a package folder and none whose name is a package folder's.
    pub(crate) fn add_parts(&mut self, parts: &[(usize, Vec<u8>)]) -> Result<(), ManifestError> {
        for (index, bytes) in parts {
            let index = *index;
            let info = &self.parts[index];
            let name = info.folder.as_deref().unwrap_or("the top level").to_owned();
            let digest: [u8; 32] = Sha256::digest(bytes).into();
            if bytes.len() as u64 != info.size || digest != info.sha256 {
                return Err(ManifestError::PartMismatch(name));
            }
            let part_name = format!("the part of {name}");
            let record: Part = parse(&part_name, bytes)?;
            check_format(&part_name, record.format)?;
            let malformed = |why: String| ManifestError::Malformed {
                name: part_name.clone(),
                why,
            };
            let bundle = record
                .bundle
                .as_deref()
                .map(|text| {
                    parse_sha256(text)
                        .map(|_| text.to_ascii_lowercase())
                        .ok_or_else(|| malformed("bundle is not 64 hex digits".into()))
                })
                .transpose()?;
            let folder = info.folder.clone();
            let mut files = Vec::with_capacity(record.files.len());
            for entry in record.files {
                if part_folder(&entry.path) != folder.as_deref() {
                    return Err(malformed(format!(
                        "{:?} belongs to another part",
                        entry.path
                    )));
                }
                files.push(verified_file(entry, bundle.as_deref(), &malformed)?);
            }
            if folder.is_none() {
                self.check_no_file_is_a_package_folder(&files)?;
            }
            check_case_duplicates(files.iter().map(|f| &f.path))?;
            self.parts[index].loaded = true;
            self.files.extend(files);
        }
        self.files.sort_by(|a, b| a.path.cmp(&b.path));
        check_file_folder_conflicts(&self.files)
    }

    /// The files outside the package folders must not take a package
    /// folder's name (or `packages` itself), whether or not this client loads
    /// that folder's part.
    fn check_no_file_is_a_package_folder(
        &self,
        files: &[VerifiedFile],
    ) -> Result<(), ManifestError> {
        let packages = PACKAGES_DIR.to_lowercase();
        let folders: HashSet<String> = self
            .parts
            .iter()
            .filter_map(|p| p.folder.as_deref())
            .map(|f| format!("{packages}/{}", f.to_lowercase()))
            .chain((self.parts.len() > 1).then(|| packages.clone()))
            .collect();
        match files.iter().find(|f| folders.contains(&f.path.fold_key())) {
            Some(file) => Err(ManifestError::Malformed {
                name: MANIFEST_FILE.into(),
                why: format!("{:?} is both a file and a folder", file.path.as_str()),
            }),
            None => Ok(()),
        }
    }
}

/// One entry of a part, its path and digests checked.
fn verified_file(
    entry: FileEntry,
    bundle: Option<&str>,
    malformed: &dyn Fn(String) -> ManifestError,
) -> Result<VerifiedFile, ManifestError> {
    let sha256 = parse_sha256(&entry.sha256)
        .ok_or_else(|| malformed(format!("sha256 of {:?} is not 64 hex digits", entry.path)))?;
    let block_signature = match entry.signature {
        None => None,
        Some(SignatureAt::Own) => Some(SignatureLocation {
            path: RelPath::new(&own_signature_path(&hex::encode(sha256)))?,
            offset: None,
        }),
        Some(SignatureAt::Bundle(offset)) => {
            let bundle = bundle.ok_or_else(|| {
                malformed(format!(
                    "{:?} points into a bundle the part does not name",
                    entry.path
                ))
            })?;
            Some(SignatureLocation {
                path: RelPath::new(&bundle_path(bundle))?,
                offset: Some(offset),
            })
        }
    };
    Ok(VerifiedFile {
        path: RelPath::new(&entry.path)?,
        size: entry.size,
        mtime: entry.mtime,
        sha256,
        block_signature,
    })
}

#[cfg(test)]
impl VerifiedManifest {
    /// A manifest for tests of the code that consumes one: `files` split into
    /// parts as the publisher splits them, signed with the test key and taken
    /// through the whole verification with every part added, so a test gets
    /// only what a real run could.
    pub(crate) fn for_tests(version: u64, files: Vec<FileEntry>) -> VerifiedManifest {
        use super::sign::{SigningKey, test_key_pair};
        let pair = test_key_pair();
        let signer = SigningKey::from_pkcs8_pem(&pair.private_pem).expect("test key");
        let key = PinnedKey::from_pem(&pair.public_pem).expect("test key");
        let (manifest, parts) = tests::encode(version, files);
        let timestamp = tests::timestamp_for(version, &manifest, u64::MAX);
        let sign = |bytes: &[u8]| signer.sign(bytes).expect("signature");
        let timestamp = verify_timestamp(&key, &timestamp, &sign(&timestamp), None, 1)
            .expect("test timestamp verifies");
        let mut verified = verify_manifest(&key, &timestamp, &manifest, &sign(&manifest))
            .expect("test manifest verifies");
        verified
            .add_parts(&parts.into_iter().enumerate().collect::<Vec<_>>())
            .expect("test parts verify");
        verified
    }
}

/// Checks `timestamp.json` in the order of DESIGN "Trust": signature first, then
/// what it says.
pub(crate) fn verify_timestamp(
    key: &PinnedKey,
    bytes: &[u8],
    signature: &[u8],
    last_accepted: Option<Accepted>,
    now_unix: u64,
) -> Result<VerifiedTimestamp, ManifestError> {
    let (record, manifest_sha256) = signed_timestamp(key, bytes, signature)?;
    if let Some(accepted) = last_accepted {
        // Rollback: version must not go down.
        if record.version < accepted.version {
            return Err(ManifestError::Rollback {
                offered: record.version,
                accepted: accepted.version,
            });
        }
        // Replay: an equal version must name the manifest accepted under it.
        if record.version == accepted.version
            && accepted
                .manifest_sha256
                .is_some_and(|known| known != manifest_sha256)
        {
            return Err(ManifestError::Replay {
                version: record.version,
            });
        }
    }
    // Freeze: a record past its expiry is no longer vouched for.
    if now_unix >= record.expires {
        return Err(ManifestError::Expired {
            version: record.version,
            expires: record.expires,
        });
    }
    Ok(VerifiedTimestamp {
        record,
        manifest_sha256,
    })
}

/// The version of a timestamp record the publisher signed: what `publish`
/// goes up from. Signature and format are checked, expiry is not (an expired
/// record still holds the last version given out).
pub(crate) fn verify_published_version(
    key: &PinnedKey,
    bytes: &[u8],
    signature: &[u8],
) -> Result<u64, ManifestError> {
    signed_timestamp(key, bytes, signature).map(|(record, _)| record.version)
}

/// The timestamp record after its signature over the exact bytes (before the
/// JSON parser sees them), its format and the manifest hash it names.
fn signed_timestamp(
    key: &PinnedKey,
    bytes: &[u8],
    signature: &[u8],
) -> Result<(Timestamp, [u8; 32]), ManifestError> {
    let name = TIMESTAMP_FILE;
    if !key.verifies(bytes, signature) {
        return Err(ManifestError::BadSignature { name: name.into() });
    }
    let record: Timestamp = parse(name, bytes)?;
    check_format(name, record.format)?;
    let manifest_sha256 =
        parse_sha256(&record.manifest_sha256).ok_or_else(|| ManifestError::Malformed {
            name: name.into(),
            why: "manifest_sha256 is not 64 hex digits".into(),
        })?;
    Ok((record, manifest_sha256))
}

/// Checks `manifest.json` against the verified timestamp, then its own
/// signature, then the parts it names. No part is added yet.
pub(crate) fn verify_manifest(
    key: &PinnedKey,
    timestamp: &VerifiedTimestamp,
    bytes: &[u8],
    signature: &[u8],
) -> Result<VerifiedManifest, ManifestError> {
    let name = MANIFEST_FILE;
    // The timestamp names these exact bytes.
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    if bytes.len() as u64 != timestamp.record.manifest_size || digest != timestamp.manifest_sha256 {
        return Err(ManifestError::ManifestMismatch);
    }
    // And the publisher signed them.
    if !key.verifies(bytes, signature) {
        return Err(ManifestError::BadSignature { name: name.into() });
    }
    let record: Manifest = parse(name, bytes)?;
    check_format(name, record.format)?;
    let malformed = |why: String| ManifestError::Malformed {
        name: name.into(),
        why,
    };
    if record.version != timestamp.record.version {
        return Err(malformed(format!(
            "version {} differs from {TIMESTAMP_FILE} version {}",
            record.version, timestamp.record.version
        )));
    }
    let mut parts = Vec::with_capacity(record.parts.len());
    let mut folders = HashSet::new();
    for (index, part) in record.parts.into_iter().enumerate() {
        let label = part.folder.as_deref().unwrap_or("the top level").to_owned();
        let sha256 = parse_sha256(&part.sha256).ok_or_else(|| {
            malformed(format!(
                "sha256 of the part of {label} is not 64 hex digits"
            ))
        })?;
        if part.size > PART_MAX_BYTES {
            return Err(malformed(format!(
                "the part of {label} is larger than {PART_MAX_BYTES} bytes"
            )));
        }
        match &part.folder {
            // The part without a folder comes first, and only there.
            None if index == 0 => {}
            None => return Err(malformed("more than one part without a folder".into())),
            Some(_) if index == 0 => return Err(malformed("no part without a folder".into())),
            Some(folder) => {
                let path = RelPath::new(&format!("{PACKAGES_DIR}/{folder}"))?;
                if folder.contains('/') || !folders.insert(path.fold_key()) {
                    return Err(malformed(format!(
                        "package folder {folder:?} is not one folder name, or named twice"
                    )));
                }
            }
        }
        parts.push(PartInfo {
            folder: part.folder,
            sha256,
            size: part.size,
            loaded: false,
        });
    }
    if parts.is_empty() {
        return Err(malformed("no part without a folder".into()));
    }
    Ok(VerifiedManifest {
        version: record.version,
        sha256: digest,
        parts,
        files: Vec::new(),
    })
}

/// A file and a folder of one name cannot both exist in the store: every path
/// is looked up among the folders that all paths need, in the letter case NTFS
/// folds to. Sorting alone cannot find them (`a`, `a.txt`, `a/b` sort with
/// `a.txt` between the two).
fn check_file_folder_conflicts(files: &[VerifiedFile]) -> Result<(), ManifestError> {
    let folded: Vec<String> = files.iter().map(|f| f.path.fold_key()).collect();
    let folders: HashSet<&str> = folded
        .iter()
        .flat_map(|path| path.match_indices('/').map(|(end, _)| &path[..end]))
        .collect();
    match files
        .iter()
        .zip(&folded)
        .find(|(_, path)| folders.contains(path.as_str()))
    {
        Some((file, _)) => Err(ManifestError::Malformed {
            name: MANIFEST_FILE.into(),
            why: format!("{:?} is both a file and a folder", file.path.as_str()),
        }),
        None => Ok(()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, ManifestError> {
    serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed {
        name: name.into(),
        why: e.to_string(),
    })
}

fn check_format(name: &str, format: u32) -> Result<(), ManifestError> {
    if format == FORMAT {
        Ok(())
    } else {
        Err(ManifestError::Malformed {
            name: name.into(),
            why: format!("format {format} is not supported (expected {FORMAT})"),
        })
    }
}

/// Parses 64 lowercase or uppercase hex digits.
pub(crate) fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::format::{PartRef, group_into_parts};
    use rsa::RsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    use std::sync::OnceLock;

    const NOW: u64 = 1_800_000_000;

    /// The crate's one test key pair, generated once per test binary.
    fn private_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            use rsa::pkcs8::DecodePrivateKey;
            RsaPrivateKey::from_pkcs8_pem(&super::super::sign::test_key_pair().private_pem).unwrap()
        })
    }

    fn public_key() -> PinnedKey {
        let pem = private_key()
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        PinnedKey::from_pem(&pem).unwrap()
    }

    fn sign(bytes: &[u8]) -> Vec<u8> {
        rsa::pkcs1v15::SigningKey::<Sha256>::new(private_key().clone())
            .sign(bytes)
            .to_vec()
    }

    /// The manifest and the parts of `files`, split as the publisher splits
    /// them, in the manifest's order.
    pub(super) fn encode(version: u64, files: Vec<FileEntry>) -> (Vec<u8>, Vec<Vec<u8>>) {
        hand_made(version, group_into_parts(files, |f| &f.path))
    }

    /// The manifest of `parts` (folder, files) as given, each part encoded
    /// as is, with the parts' bytes in the same order.
    fn hand_made(
        version: u64,
        parts: Vec<(Option<String>, Vec<FileEntry>)>,
    ) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut refs = Vec::new();
        let mut encoded = Vec::new();
        for (folder, files) in parts {
            let bytes = serde_json::to_vec(&Part {
                format: FORMAT,
                bundle: None,
                files,
            })
            .unwrap();
            refs.push(PartRef {
                folder,
                sha256: hex::encode(Sha256::digest(&bytes)),
                size: bytes.len() as u64,
            });
            encoded.push(bytes);
        }
        let manifest = serde_json::to_vec(&Manifest {
            format: FORMAT,
            version,
            parts: refs,
        })
        .unwrap();
        (manifest, encoded)
    }

    pub(super) fn timestamp_for(version: u64, manifest: &[u8], expires: u64) -> Vec<u8> {
        serde_json::to_vec(&Timestamp {
            format: FORMAT,
            version,
            manifest_sha256: hex::encode(Sha256::digest(manifest)),
            manifest_size: manifest.len() as u64,
            published: NOW - 10,
            expires,
        })
        .unwrap()
    }

    fn entries(paths: &[&str]) -> Vec<FileEntry> {
        paths
            .iter()
            .map(|p| FileEntry {
                path: (*p).into(),
                size: 1,
                mtime: 0,
                sha256: "00".repeat(32),
                signature: None,
            })
            .collect()
    }

    fn manifest_bytes(version: u64, paths: &[&str]) -> Vec<u8> {
        encode(version, entries(paths)).0
    }

    fn timestamp_bytes(version: u64, manifest: &[u8], expires: u64) -> Vec<u8> {
        timestamp_for(version, manifest, expires)
    }

    /// The manifest of `paths` verified, with every part added.
    fn chain(version: u64, paths: &[&str]) -> Result<VerifiedManifest, ManifestError> {
        let (manifest, parts) = encode(version, entries(paths));
        let mut verified = top(version, &manifest)?;
        verified.add_parts(&parts.into_iter().enumerate().collect::<Vec<_>>())?;
        Ok(verified)
    }

    /// `manifest` verified under a timestamp of `version`, no part added.
    fn top(version: u64, manifest: &[u8]) -> Result<VerifiedManifest, ManifestError> {
        let key = public_key();
        let ts = timestamp_bytes(version, manifest, NOW + 100);
        let verified = verify_timestamp(&key, &ts, &sign(&ts), None, NOW)?;
        verify_manifest(&key, &verified, manifest, &sign(manifest))
    }

    #[test]
    fn a_good_chain_verifies() {
        let manifest = chain(7, &["b.txt", "a/x.msi"]).unwrap();
        assert_eq!(manifest.version(), 7);
        let paths: Vec<_> = manifest.files().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a/x.msi", "b.txt"]);
    }

    #[test]
    fn pss_signatures_verify_too() {
        let key = public_key();
        let signer = rsa::pss::SigningKey::<Sha256>::new(private_key().clone());
        let sig = signer
            .sign_with_rng(&mut rand::thread_rng(), b"abc")
            .to_vec();
        assert!(key.verifies(b"abc", &sig));
        assert!(!key.verifies(b"abd", &sig));
    }

    #[test]
    fn a_changed_byte_breaks_the_timestamp_signature() {
        let key = public_key();
        let manifest = manifest_bytes(1, &["a"]);
        let ts = timestamp_bytes(1, &manifest, NOW + 100);
        let sig = sign(&ts);
        let mut tampered = ts.clone();
        tampered[5] ^= 1;
        let err = verify_timestamp(&key, &tampered, &sig, None, NOW).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
        assert_eq!(err.kind(), ManifestErrorKind::Invalid);
    }

    #[test]
    fn a_manifest_other_than_the_one_named_is_refused() {
        let key = public_key();
        let manifest = manifest_bytes(1, &["a"]);
        let ts = timestamp_bytes(1, &manifest, NOW + 100);
        let verified = verify_timestamp(&key, &ts, &sign(&ts), None, NOW).unwrap();
        // Correctly signed, but not the manifest the timestamp vouches for.
        let other = manifest_bytes(1, &["b"]);
        let err = verify_manifest(&key, &verified, &other, &sign(&other)).unwrap_err();
        assert!(matches!(err, ManifestError::ManifestMismatch), "{err}");
    }

    #[test]
    fn a_bad_manifest_signature_is_refused() {
        let key = public_key();
        let manifest = manifest_bytes(1, &["a"]);
        let ts = timestamp_bytes(1, &manifest, NOW + 100);
        let verified = verify_timestamp(&key, &ts, &sign(&ts), None, NOW).unwrap();
        let err = verify_manifest(&key, &verified, &manifest, &sign(b"other")).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn rollback_is_refused() {
        let key = public_key();
        let manifest = manifest_bytes(5, &["a"]);
        let ts = timestamp_bytes(5, &manifest, NOW + 100);
        let err =
            verify_timestamp(&key, &ts, &sign(&ts), Some(Accepted::version(6)), NOW).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::Rollback {
                offered: 5,
                accepted: 6
            }
        ));
        assert_eq!(err.kind(), ManifestErrorKind::Stale);
        assert!(verify_timestamp(&key, &ts, &sign(&ts), Some(Accepted::version(5)), NOW).is_ok());
    }

    #[test]
    fn another_manifest_under_the_accepted_version_is_a_replay() {
        let key = public_key();
        let accepted_manifest = manifest_bytes(5, &["a"]);
        let accepted = Accepted {
            version: 5,
            manifest_sha256: Some(Sha256::digest(&accepted_manifest).into()),
        };
        // Signed by the publisher, same version, other files.
        let other = manifest_bytes(5, &["b"]);
        let ts = timestamp_bytes(5, &other, NOW + 100);
        let err = verify_timestamp(&key, &ts, &sign(&ts), Some(accepted), NOW).unwrap_err();
        assert!(matches!(err, ManifestError::Replay { version: 5 }), "{err}");
        assert_eq!(err.kind(), ManifestErrorKind::Stale);

        // The accepted manifest itself comes again: a run with nothing to do.
        let same = timestamp_bytes(5, &accepted_manifest, NOW + 100);
        let verified = verify_timestamp(&key, &same, &sign(&same), Some(accepted), NOW).unwrap();
        let manifest = verify_manifest(
            &key,
            &verified,
            &accepted_manifest,
            &sign(&accepted_manifest),
        )
        .unwrap();
        assert_eq!(Some(*manifest.sha256()), accepted.manifest_sha256);
        // An unknown manifest (an older state) or a newer version passes.
        assert!(verify_timestamp(&key, &ts, &sign(&ts), Some(Accepted::version(5)), NOW).is_ok());
        let newer = timestamp_bytes(6, &other, NOW + 100);
        assert!(verify_timestamp(&key, &newer, &sign(&newer), Some(accepted), NOW).is_ok());
    }

    #[test]
    fn the_published_version_is_read_only_from_a_signed_record() {
        let key = public_key();
        let manifest = manifest_bytes(9, &["a"]);
        // Expired long ago: still the last version given out.
        let ts = timestamp_bytes(9, &manifest, 1);
        assert_eq!(verify_published_version(&key, &ts, &sign(&ts)).unwrap(), 9);

        let forged = timestamp_bytes(u64::MAX - 1, &manifest, 1);
        let err = verify_published_version(&key, &forged, &sign(&ts)).unwrap_err();
        assert!(matches!(err, ManifestError::BadSignature { .. }), "{err}");
        let err = verify_published_version(&key, b"garbage", &sign(b"garbage")).unwrap_err();
        assert!(matches!(err, ManifestError::Malformed { .. }), "{err}");
    }

    #[test]
    fn expired_timestamp_is_refused() {
        let key = public_key();
        let manifest = manifest_bytes(5, &["a"]);
        let ts = timestamp_bytes(5, &manifest, NOW);
        let err = verify_timestamp(&key, &ts, &sign(&ts), None, NOW).unwrap_err();
        assert!(matches!(err, ManifestError::Expired { .. }));
        assert_eq!(err.kind(), ManifestErrorKind::Stale);
    }

    #[test]
    fn hostile_paths_refuse_the_whole_manifest() {
        for path in ["../x", "/etc/x", "C:/x", "a:b", "CON", "x "] {
            let err = chain(1, &["ok.txt", path]).unwrap_err();
            assert!(
                matches!(err, ManifestError::HostilePath(_)),
                "{path}: {err}"
            );
        }
        let err = chain(1, &["A.txt", "a.txt"]).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::HostilePath(PathError::CaseDuplicate(..))
        ));
    }

    #[test]
    fn a_path_that_is_file_and_folder_is_refused() {
        for paths in [
            &["a", "a/b"][..],
            // Sorted, `a.txt` lies between the file and the folder's content.
            &["a", "a.txt", "a/b"],
            &["x/a", "x/a-b", "x/a.txt", "x/a/b/c"],
            // NTFS folds letter case: `A` and `a/b` clash too.
            &["A", "a.txt", "a/b"],
            &["dir/Sub", "dir/sub/deeper/x.msi"],
        ] {
            let err = chain(1, paths).unwrap_err();
            assert!(
                matches!(&err, ManifestError::Malformed { why, .. } if why.contains("both a file and a folder")),
                "{paths:?}: {err}"
            );
        }
        assert!(chain(1, &["a.txt", "a/b", "ab"]).is_ok());
    }

    #[test]
    fn a_temporary_file_name_is_refused() {
        let err = chain(1, &["x/y", "x/.wpkgsync-tmp-y"]).unwrap_err();
        assert!(
            matches!(err, ManifestError::HostilePath(PathError::TempName(_))),
            "{err}"
        );
    }

    #[test]
    fn a_key_a_few_bits_short_is_refused() {
        let short = RsaPrivateKey::new(&mut rand::thread_rng(), 3070).unwrap();
        // Rounded up to bytes it would look like a 3072-bit key.
        assert_eq!(short.size() * 8, 3072);
        let pem = short
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let err = PinnedKey::from_pem(&pem).unwrap_err();
        assert!(err.contains("3070-bit"), "{err}");
        // A full 3072-bit modulus passes.
        assert_eq!(private_key().n().bits(), 3072);
        let pem = private_key()
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        assert!(PinnedKey::from_pem(&pem).is_ok());
    }

    /// [`hand_made`] with folder names as text.
    fn parts_of(parts: Vec<(Option<&str>, Vec<FileEntry>)>) -> (Vec<u8>, Vec<Vec<u8>>) {
        hand_made(
            1,
            parts
                .into_iter()
                .map(|(folder, files)| (folder.map(str::to_owned), files))
                .collect(),
        )
    }

    #[test]
    fn parts_are_added_only_as_the_manifest_names_them() {
        let (manifest, parts) = encode(
            1,
            entries(&[
                "config.xml",
                "packages/a.xml",
                "packages/a/x.msi",
                "packages/b/y.msi",
            ]),
        );
        let mut verified = top(1, &manifest).unwrap();
        let folders: Vec<_> = verified.parts().iter().map(|p| p.folder()).collect();
        assert_eq!(folders, [None, Some("a"), Some("b")]);
        assert!(verified.files().is_empty());

        // A part's bytes must be the ones named: another part's are refused.
        let err = verified.add_parts(&[(1, parts[2].clone())]).unwrap_err();
        assert!(
            matches!(&err, ManifestError::PartMismatch(f) if f == "a"),
            "{err}"
        );
        let mut tampered = parts[1].clone();
        tampered[20] ^= 1;
        assert!(matches!(
            verified.add_parts(&[(1, tampered)]),
            Err(ManifestError::PartMismatch(_))
        ));

        verified
            .add_parts(&[(0, parts[0].clone()), (2, parts[2].clone())])
            .unwrap();
        let paths: Vec<_> = verified.files().iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["config.xml", "packages/a.xml", "packages/b/y.msi"]);
        assert!(!verified.parts()[1].is_loaded() && verified.parts()[2].is_loaded());
    }

    #[test]
    fn a_part_may_list_only_its_own_folder() {
        let file = |p: &str| entries(&[p]).remove(0);
        for (parts, why) in [
            (
                vec![(None, vec![file("packages/a/x")]), (Some("a"), vec![])],
                "belongs to another part",
            ),
            (
                vec![(None, vec![]), (Some("a"), vec![file("packages/b/x")])],
                "belongs to another part",
            ),
            (
                vec![(None, vec![]), (Some("a"), vec![file("packages/a")])],
                "belongs to another part",
            ),
            // A file of the top-level part named like a package folder whose
            // part this client may never load.
            (
                vec![(None, vec![file("Packages/A")]), (Some("a"), vec![])],
                "both a file and a folder",
            ),
            (
                vec![(None, vec![file("packages")]), (Some("a"), vec![])],
                "both a file and a folder",
            ),
        ] {
            let (manifest, encoded) = parts_of(parts);
            let mut verified = top(1, &manifest).unwrap();
            let err = verified
                .add_parts(&encoded.into_iter().enumerate().collect::<Vec<_>>())
                .unwrap_err();
            assert!(err.to_string().contains(why), "{err}");
        }
    }

    #[test]
    fn the_list_of_parts_is_checked() {
        for (parts, why) in [
            (vec![], "no part without a folder"),
            (vec![(Some("a"), vec![])], "no part without a folder"),
            (
                vec![(None, vec![]), (None, vec![])],
                "more than one part without a folder",
            ),
            (
                vec![(None, vec![]), (Some("a"), vec![]), (Some("A"), vec![])],
                "named twice",
            ),
            (
                vec![(None, vec![]), (Some("a/b"), vec![])],
                "not one folder name",
            ),
        ] {
            let (manifest, _) = parts_of(parts);
            let err = top(1, &manifest).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        let (manifest, _) = parts_of(vec![(None, vec![]), (Some(".."), vec![])]);
        assert!(matches!(
            top(1, &manifest),
            Err(ManifestError::HostilePath(_))
        ));
    }

    #[test]
    fn an_unknown_format_is_named() {
        let mut record: Manifest = serde_json::from_slice(&manifest_bytes(1, &["a"])).unwrap();
        record.format = 1;
        let manifest = serde_json::to_vec(&record).unwrap();
        let err = top(1, &manifest).unwrap_err();
        assert_eq!(err.kind(), ManifestErrorKind::Invalid);
        assert!(
            err.to_string()
                .contains("format 1 is not supported (expected 2)"),
            "{err}"
        );
    }

    #[test]
    fn small_keys_are_refused() {
        let small = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        let pem = small
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        assert!(PinnedKey::from_pem(&pem).unwrap_err().contains("1024-bit"));
    }
}
