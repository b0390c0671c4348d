//! `publish`: walks the WPKG tree, hashes every file and writes the signed
//! `manifest.json` and `timestamp.json` (with their `.sig`) into `.wpkgsync/`.
//!
//! Files the client would refuse are skipped with a warning by the walk
//! (`walk.rs`) rather than failing the whole publish; the warnings go back in
//! [`PublishSummary`] for the caller to print. The publisher-only hash cache
//! (`hash_cache.rs`) spares re-reading unchanged files, and large contents get
//! their block signature from `block_signatures.rs`. This file keeps the order
//! of a publish and the signed records: the previous version, the manifest and
//! timestamp, and the order in which they replace the previous ones.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rsa::pkcs8::der::zeroize::Zeroizing;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::block_signatures;
use super::error::PublishError;
use super::hash_cache::{CACHE_FILE, CachedHash, HashCache, hash_candidate, read_cache, reusable};
use super::imp;
use super::parallel::in_parallel;
use super::parts::{self, Previous};
use super::staged::Staged;
use super::version;
use super::walk::{self, Candidate};
use crate::clock::checked_now_unix;
use crate::delta;
use crate::manifest::format::{
    FORMAT, FileEntry, MANIFEST_FILE, META_DIR, Manifest, PartRef, SignatureAt, TIMESTAMP_FILE,
    Timestamp, signature_of,
};
use crate::manifest::sign::SigningKey;

/// Seconds in the days of `expires_days`.
const SECONDS_PER_DAY: u64 = 86_400;

/// What one publish did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublishSummary {
    /// Version of the records just written.
    pub version: u64,
    /// Files listed in the manifest.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Files read and hashed in this run.
    pub hashed: usize,
    /// Files whose hash came from the cache without reading them.
    pub reused: usize,
    /// Files skipped and other things the administrator should know, one line each.
    pub warnings: Vec<String>,
}

/// Publishes the tree at `repo`, signing with the PKCS#8 PEM private key at
/// `key`; the records expire `expires_days` days from now (0: at once).
pub(crate) fn publish(
    repo: &Path,
    key: &Path,
    expires_days: u64,
) -> Result<PublishSummary, PublishError> {
    let root = canonical_folder(repo)?;
    // Loaded before the walk, so a bad key fails at once rather than after
    // hashing the whole tree.
    let signer = load_key(key, &root)?;
    let meta_dir = root.join(META_DIR);
    // Versions only go up, from a version the key vouched for: checked before
    // anything is written, so a refusal leaves the repository as it was.
    let now = checked_now_unix().ok_or(PublishError::Clock)?;
    let version = version::next_version(&meta_dir, &signer, now)?;
    let mut warnings = Vec::new();

    let candidates = walk::candidates(&root, &mut warnings)?;
    create_meta_dir(&meta_dir)?;
    let mut listing = list_files(&meta_dir, candidates, &mut warnings)?;
    let files = listing.entries.len();
    let previous = Previous::read(&meta_dir);
    let mut parts = parts::write(
        &meta_dir,
        listing.entries,
        &previous,
        &mut listing.cache.parts,
    )?;
    // Written before the signed records, so the hashing work survives a failure
    // further on.
    write_cache(&meta_dir, &listing.cache)?;
    let records = Records::sign(&signer, &meta_dir, version, now, expires_days, parts.refs)?;
    if let Some(patch) = parts::write_manifest_patch(&meta_dir, &previous, &records.manifest)? {
        parts.keep.insert(patch);
    }
    records.write(&meta_dir)?;
    // Only now, with the new records in place, may what no longer serves the
    // new version or the one before go.
    parts.keep.extend(listing.referenced);
    parts::prune(&meta_dir, &parts.keep, &mut warnings);

    Ok(PublishSummary {
        version,
        files,
        bytes: listing.bytes,
        hashed: listing.hashed,
        reused: listing.reused,
        warnings,
    })
}

/// The canonical path of the repository, which must be a folder.
fn canonical_folder(repo: &Path) -> Result<PathBuf, PublishError> {
    let root = fs::canonicalize(repo).map_err(|source| PublishError::List {
        path: repo.to_path_buf(),
        source,
    })?;
    if !root.is_dir() {
        return Err(PublishError::NotAFolder {
            path: repo.to_path_buf(),
        });
    }
    Ok(root)
}

/// Creates `.wpkgsync/` if needed and makes it readable by the account that
/// serves it.
fn create_meta_dir(meta_dir: &Path) -> Result<(), PublishError> {
    fs::create_dir_all(meta_dir).map_err(|source| PublishError::CreateDir {
        path: meta_dir.to_path_buf(),
        source,
    })?;
    imp::share_dir(meta_dir).map_err(|source| PublishError::Permissions {
        path: meta_dir.to_path_buf(),
        source,
    })
}

/// The files of the new manifest, and what it took to list them.
struct Listing {
    /// One entry per candidate, in candidate order (sorted by path), with the
    /// file it was read from.
    entries: Vec<(FileEntry, PathBuf)>,
    /// The hash cache for the next publish: exactly the files listed, and the
    /// parts of the previous publish (replaced as the parts are written).
    cache: HashCache,
    /// Block signatures the entries name, repository-relative.
    referenced: HashSet<String>,
    /// Files read and hashed.
    hashed: usize,
    /// Files whose hash came from the previous cache.
    reused: usize,
    /// Total size of the listed files.
    bytes: u64,
}

/// Hashes every candidate, reusing the previous cache where it still holds,
/// and makes sure each content of [`delta::signature::BUNDLED_BELOW`] bytes
/// or more has its block signature. Files are read on every core.
fn list_files(
    meta_dir: &Path,
    candidates: Vec<Candidate>,
    warnings: &mut Vec<String>,
) -> Result<Listing, PublishError> {
    let mut previous = read_cache(meta_dir, warnings);
    let listed = in_parallel(&candidates, |candidate| {
        list_one(meta_dir, &previous, candidate)
    })?;
    let mut cache = HashCache::new();
    cache.parts = std::mem::take(&mut previous.parts);
    let mut listing = Listing {
        entries: Vec::with_capacity(candidates.len()),
        cache,
        referenced: HashSet::new(),
        hashed: 0,
        reused: 0,
        bytes: 0,
    };
    for (candidate, one) in candidates.into_iter().zip(listed) {
        let Listed {
            hash,
            reused,
            signature,
            warnings: more,
        } = one;
        warnings.extend(more);
        if reused {
            listing.reused += 1;
        } else {
            listing.hashed += 1;
        }
        listing.bytes += hash.size;
        let entry = FileEntry {
            path: candidate.path.to_string(),
            size: hash.size,
            mtime: hash.mtime,
            sha256: hash.sha256.clone(),
            signature: signature.as_ref().map(|_| SignatureAt::Own),
        };
        listing.referenced.extend(signature);
        listing.cache.insert(candidate.path.to_string(), hash);
        listing.entries.push((entry, candidate.source));
    }
    Ok(listing)
}

/// What listing one candidate found.
struct Listed {
    hash: CachedHash,
    /// The hash came from the previous cache.
    reused: bool,
    /// Its block signature's repository-relative path.
    signature: Option<String>,
    warnings: Vec<String>,
}

fn list_one(
    meta_dir: &Path,
    previous: &HashCache,
    candidate: &Candidate,
) -> Result<Listed, PublishError> {
    let mut warnings = Vec::new();
    let (hash, reused) = match reusable(previous, candidate)? {
        Some(hash) => (hash, true),
        None => (hash_candidate(candidate, &mut warnings)?, false),
    };
    let signature = block_signature(meta_dir, candidate, &hash)?;
    Ok(Listed {
        hash,
        reused,
        signature,
        warnings,
    })
}

/// The block signature of a content large enough for a file of its own,
/// written if it is not there yet; `None` for smaller files, whose signatures
/// their part bundles.
fn block_signature(
    meta_dir: &Path,
    candidate: &Candidate,
    hash: &CachedHash,
) -> Result<Option<String>, PublishError> {
    if hash.size < delta::signature::BUNDLED_BELOW {
        return Ok(None);
    }
    block_signatures::ensure(meta_dir, &candidate.source, hash.size, &hash.sha256).map(Some)
}

/// Replaces the hash cache with the one of this publish.
fn write_cache(meta_dir: &Path, cache: &HashCache) -> Result<(), PublishError> {
    let bytes = to_json(cache, &meta_dir.join(CACHE_FILE))?;
    Staged::new(meta_dir, CACHE_FILE, &bytes)?.persist()
}

/// The two signed records of one publish and their signatures, encoded but not
/// yet written.
struct Records {
    /// `manifest.json`.
    manifest: Vec<u8>,
    /// `manifest.json.sig`.
    manifest_sig: Vec<u8>,
    /// `timestamp.json`.
    timestamp: Vec<u8>,
    /// `timestamp.json.sig`.
    timestamp_sig: Vec<u8>,
}

impl Records {
    /// Encodes the manifest of `parts` and the timestamp naming it, published
    /// `now` and expiring `expires_days` days later, and signs both.
    fn sign(
        signer: &SigningKey,
        meta_dir: &Path,
        version: u64,
        now: u64,
        expires_days: u64,
        parts: Vec<PartRef>,
    ) -> Result<Records, PublishError> {
        let manifest = Manifest {
            format: FORMAT,
            version,
            parts,
        };
        let manifest_bytes = to_json(&manifest, &meta_dir.join(MANIFEST_FILE))?;
        let timestamp = Timestamp {
            format: FORMAT,
            version,
            manifest_sha256: hex::encode(Sha256::digest(&manifest_bytes)),
            manifest_size: manifest_bytes.len() as u64,
            published: now,
            expires: now.saturating_add(expires_days.saturating_mul(SECONDS_PER_DAY)),
        };
        let timestamp_bytes = to_json(&timestamp, &meta_dir.join(TIMESTAMP_FILE))?;
        let manifest_sig = sign(signer, meta_dir, MANIFEST_FILE, &manifest_bytes)?;
        let timestamp_sig = sign(signer, meta_dir, TIMESTAMP_FILE, &timestamp_bytes)?;
        Ok(Records {
            manifest: manifest_bytes,
            manifest_sig,
            timestamp: timestamp_bytes,
            timestamp_sig,
        })
    }

    /// Puts the records in place, in the order that keeps clients safe.
    fn write(&self, meta_dir: &Path) -> Result<(), PublishError> {
        // Everything is staged (written and flushed under temporary names) before the
        // first rename, so the renames follow each other closely. Clients read the
        // timestamp first, then the manifest it names by sha256, then the manifest's
        // signature; so the timestamp goes last. In the short window between renames
        // a client may see a new manifest under an old timestamp, or a new signature
        // beside an old record: the hash or the signature then fails to match, the
        // client stops with 204 and retries on its next run. It never accepts a mix,
        // because every step is chained to the signed timestamp.
        let staged = [
            Staged::new(meta_dir, MANIFEST_FILE, &self.manifest)?,
            Staged::new(meta_dir, &signature_of(MANIFEST_FILE), &self.manifest_sig)?,
            Staged::new(meta_dir, &signature_of(TIMESTAMP_FILE), &self.timestamp_sig)?,
            Staged::new(meta_dir, TIMESTAMP_FILE, &self.timestamp)?,
        ];
        for file in staged {
            file.persist()?;
        }
        imp::sync_dir(meta_dir).map_err(|source| PublishError::Write {
            path: meta_dir.to_path_buf(),
            source,
        })
    }
}

/// Reads the private key, refusing one that clients could download.
fn load_key(key: &Path, root: &Path) -> Result<SigningKey, PublishError> {
    let read_error = |source| PublishError::KeyRead {
        path: key.to_path_buf(),
        source,
    };
    let real = fs::canonicalize(key).map_err(read_error)?;
    if real.starts_with(root) {
        return Err(PublishError::KeyInRepository {
            key: key.to_path_buf(),
            repo: root.to_path_buf(),
        });
    }
    let pem = Zeroizing::new(fs::read_to_string(&real).map_err(read_error)?);
    SigningKey::from_pkcs8_pem(&pem).map_err(|source| PublishError::Key {
        path: key.to_path_buf(),
        source,
    })
}

/// Signs one record's exact bytes.
fn sign(
    signer: &SigningKey,
    meta_dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, PublishError> {
    signer.sign(bytes).map_err(|source| PublishError::Sign {
        path: meta_dir.join(name),
        source,
    })
}

/// Pretty JSON with a trailing newline, as every record is written.
fn to_json<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, PublishError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| PublishError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::unix_time;
    use crate::manifest::format::{bundle_path, delta_path, own_signature_path, part_path};
    use crate::manifest::sign::test_key_pair;
    use rsa::RsaPublicKey;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use std::collections::BTreeMap;
    use std::fs::File;
    use std::time::{Duration, SystemTime};

    /// A repository and, outside it, the shared test key.
    struct Fixture {
        _dir: tempfile::TempDir,
        repo: PathBuf,
        key: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let repo = dir.path().join("updates");
            fs::create_dir(&repo).expect("repo");
            let key = dir.path().join("publisher-private.pem");
            fs::write(&key, test_key_pair().private_pem.as_bytes()).expect("key");
            Fixture {
                _dir: dir,
                repo,
                key,
            }
        }

        /// Writes a file with an mtime an hour ago, so its hash may be cached.
        fn write(&self, path: &str, content: &[u8]) -> PathBuf {
            let full = self.repo.join(path);
            fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            fs::write(&full, content).expect("write");
            set_mtime(&full, SystemTime::now() - Duration::from_secs(3600));
            full
        }

        fn publish(&self, expires_days: u64) -> PublishSummary {
            publish(&self.repo, &self.key, expires_days).expect("publish")
        }

        fn meta(&self, name: &str) -> Vec<u8> {
            fs::read(self.repo.join(META_DIR).join(name)).expect("record")
        }

        fn manifest(&self) -> Manifest {
            serde_json::from_slice(&self.meta(MANIFEST_FILE)).expect("manifest json")
        }

        fn timestamp(&self) -> Timestamp {
            serde_json::from_slice(&self.meta(TIMESTAMP_FILE)).expect("timestamp json")
        }

        /// Writes `timestamp` as the previous record, signed with the key.
        fn sign_timestamp(&self, timestamp: &Timestamp) {
            let meta_dir = self.repo.join(META_DIR);
            let bytes = to_json(timestamp, &meta_dir).expect("json");
            let signer = SigningKey::from_pkcs8_pem(&test_key_pair().private_pem).expect("key");
            let signature = signer.sign(&bytes).expect("sign");
            fs::write(meta_dir.join(TIMESTAMP_FILE), bytes).expect("write");
            fs::write(meta_dir.join(signature_of(TIMESTAMP_FILE)), signature).expect("write");
        }

        /// The parts the manifest names, decompressed, in its order.
        fn parts(&self) -> Vec<crate::manifest::format::Part> {
            self.manifest()
                .parts
                .iter()
                .map(|part| {
                    let data = fs::read(self.repo.join(part_path(&part.sha256))).expect("part");
                    let bytes = crate::manifest::compress::decompress(&data, part.size).unwrap();
                    assert_eq!(sha256_hex(&bytes), part.sha256);
                    serde_json::from_slice(&bytes).expect("part json")
                })
                .collect()
        }

        /// Every file the parts list, sorted by path.
        fn files(&self) -> Vec<FileEntry> {
            let mut files: Vec<FileEntry> =
                self.parts().into_iter().flat_map(|p| p.files).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            files
        }

        fn paths(&self) -> Vec<String> {
            self.files().into_iter().map(|f| f.path).collect()
        }
    }

    fn set_mtime(path: &Path, time: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(time)
            .expect("set mtime");
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn lists_every_file_with_size_sha256_and_mtime_sorted_without_meta_dir() {
        let fx = Fixture::new();
        fx.write("profiles.xml", b"<profiles/>");
        fx.write("packages/b/setup.exe", &[7u8; 100_000]);
        fx.write("packages/a.xml", b"<packages/>");
        fx.write("packages/B.txt", b"capital");
        fx.write(".wpkgsync/stale.txt", b"publisher only");
        fx.write(
            "sub/.wpkgsync/kept.txt",
            b"only the top-level one is excluded",
        );

        let summary = fx.publish(30);
        let files = fx.files();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "packages/B.txt",
                "packages/a.xml",
                "packages/b/setup.exe",
                "profiles.xml",
                "sub/.wpkgsync/kept.txt"
            ]
        );
        let exe = &files[2];
        assert_eq!(exe.size, 100_000);
        assert_eq!(exe.sha256, sha256_hex(&[7u8; 100_000]));
        let meta = fs::metadata(fx.repo.join("packages/b/setup.exe")).expect("meta");
        assert_eq!(exe.mtime, unix_time(meta.modified().expect("mtime")).0);
        // At or above 64 KiB a file gets a block signature of its own.
        assert_eq!(exe.signature, Some(SignatureAt::Own));
        assert_eq!(files[3].sha256, sha256_hex(b"<profiles/>"));
        // One part without a folder, one for packages/b.
        let folders: Vec<_> = fx.manifest().parts.into_iter().map(|p| p.folder).collect();
        assert_eq!(folders, [None, Some("b".to_owned())]);

        assert_eq!(summary.files, 5);
        assert_eq!(summary.bytes, files.iter().map(|f| f.size).sum::<u64>());
        assert_eq!((summary.hashed, summary.reused), (5, 0));
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
        assert!(fx.repo.join(META_DIR).join(CACHE_FILE).is_file());
    }

    #[test]
    fn signatures_verify_and_timestamp_names_the_exact_manifest() {
        let fx = Fixture::new();
        fx.write("config.xml", b"<config/>");
        let summary = fx.publish(7);

        let public =
            RsaPublicKey::from_public_key_pem(&test_key_pair().public_pem).expect("public");
        let verifier = VerifyingKey::<Sha256>::new(public);
        for name in [TIMESTAMP_FILE, MANIFEST_FILE] {
            let bytes = fx.meta(name);
            assert!(bytes.ends_with(b"}\n"), "{name} ends with a newline");
            let raw = fx.meta(&signature_of(name));
            let signature = Signature::try_from(raw.as_slice()).expect("signature");
            verifier.verify(&bytes, &signature).expect(name);
        }

        let manifest_bytes = fx.meta(MANIFEST_FILE);
        let timestamp = fx.timestamp();
        assert_eq!(timestamp.format, FORMAT);
        assert_eq!(timestamp.version, summary.version);
        assert_eq!(timestamp.manifest_sha256, sha256_hex(&manifest_bytes));
        assert_eq!(timestamp.manifest_size, manifest_bytes.len() as u64);
        assert_eq!(timestamp.expires, timestamp.published + 7 * SECONDS_PER_DAY);
        assert_eq!(fx.manifest().version, summary.version);

        let leftovers: Vec<_> = fs::read_dir(fx.repo.join(META_DIR))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn versions_go_up_and_zero_days_expire_at_once() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");
        let first = fx.publish(0);
        let timestamp = fx.timestamp();
        assert_eq!(timestamp.expires, timestamp.published);
        assert!(first.version >= timestamp.published);

        let second = fx.publish(0);
        assert!(second.version > first.version);

        // A signed previous version ahead of the clock still goes up by one.
        let mut ahead = fx.timestamp();
        ahead.version += 1_000_000;
        fx.sign_timestamp(&ahead);
        assert_eq!(fx.publish(1).version, ahead.version + 1);
    }

    /// Everything in the repository's records folder, to see it unchanged.
    fn records(fx: &Fixture) -> BTreeMap<String, Vec<u8>> {
        let mut all = BTreeMap::new();
        for entry in fs::read_dir(fx.repo.join(META_DIR)).expect("list") {
            let entry = entry.expect("entry");
            if entry.file_type().expect("type").is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                all.insert(name, fs::read(entry.path()).expect("read"));
            }
        }
        all
    }

    #[test]
    fn an_unsigned_edit_of_the_previous_version_is_refused() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");
        fx.publish(1);
        fx.write("b.txt", b"new file");

        // Someone without the key moves the version to the end of the range.
        let mut edited = fx.timestamp();
        edited.version = u64::MAX - 1;
        let path = fx.repo.join(META_DIR).join(TIMESTAMP_FILE);
        fs::write(&path, serde_json::to_vec_pretty(&edited).expect("json")).expect("write");
        let before = records(&fx);
        let err = publish(&fx.repo, &fx.key, 1).expect_err("unsigned edit");
        assert!(
            matches!(&err, PublishError::PreviousRecord { path: p, .. } if *p == path),
            "{err:?}"
        );
        let line = err.to_string();
        assert!(line.contains("timestamp.json"), "{line}");
        assert!(line.contains("does not verify"), "{line}");
        assert_eq!(records(&fx), before, "the refusal wrote something");

        // Damaged, or gone beside the manifest: refused as well.
        fs::write(&path, "garbage").expect("write");
        let err = publish(&fx.repo, &fx.key, 1).expect_err("garbage");
        assert!(
            matches!(err, PublishError::PreviousRecord { .. }),
            "{err:?}"
        );
        fs::remove_file(&path).expect("remove");
        let err = publish(&fx.repo, &fx.key, 1).expect_err("missing");
        assert!(
            err.to_string().contains("timestamp.json is missing"),
            "{err}"
        );
        let signature = fx.repo.join(META_DIR).join(signature_of(TIMESTAMP_FILE));
        fs::remove_file(&signature).expect("remove");
        let err = publish(&fx.repo, &fx.key, 1).expect_err("missing beside");
        assert!(
            err.to_string().contains("is missing beside manifest.json"),
            "{err}"
        );

        // Removing every record starts again from the clock.
        for name in [MANIFEST_FILE.to_string(), signature_of(MANIFEST_FILE)] {
            fs::remove_file(fx.repo.join(META_DIR).join(name)).expect("remove");
        }
        assert!(fx.publish(1).version >= edited.published);
    }

    #[test]
    fn a_record_signed_with_another_key_is_refused() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");
        fx.publish(1);
        let other = crate::manifest::sign::generate_key_pair(3072).expect("other key");
        let other_key = fx.repo.parent().expect("parent").join("other.pem");
        fs::write(&other_key, other.private_pem.as_bytes()).expect("write");
        let err = publish(&fx.repo, &other_key, 1).expect_err("another key");
        assert!(
            matches!(err, PublishError::PreviousRecord { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn the_last_version_there_is_cannot_go_up() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");
        fx.publish(1);
        let mut last = fx.timestamp();
        last.version = u64::MAX;
        fx.sign_timestamp(&last);
        let before = records(&fx);
        let err = publish(&fx.repo, &fx.key, 1).expect_err("exhausted");
        assert!(
            matches!(
                err,
                PublishError::VersionExhausted {
                    version: u64::MAX,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot go up"), "{err}");
        assert_eq!(records(&fx), before, "the refusal wrote something");
    }

    #[test]
    fn large_files_get_one_block_signature_per_content() {
        let fixture = Fixture::new();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        fixture.write("packages/a/big.msi", &big);
        fixture.write("packages/a/small.txt", b"small");
        fixture.publish(30);
        let entry = |path: &str| {
            fixture
                .files()
                .into_iter()
                .find(|f| f.path == path)
                .expect("listed")
        };
        assert_eq!(
            entry("packages/a/big.msi").signature,
            Some(SignatureAt::Own)
        );
        let sig = fixture.repo.join(own_signature_path(&sha256_hex(&big)));
        let expected = crate::delta::signature::calculate(&big[..], big.len() as u64).unwrap();
        assert_eq!(fs::read(&sig).unwrap(), expected);
        assert_eq!(entry("packages/a/small.txt").signature, None);

        // Republishing reuses it; a copy under another name shares it.
        let written = fs::metadata(&sig).unwrap().modified().unwrap();
        fixture.write("packages/b/copy.msi", &big);
        fixture.publish(30);
        assert_eq!(fs::metadata(&sig).unwrap().modified().unwrap(), written);
        assert_eq!(
            entry("packages/b/copy.msi").signature,
            Some(SignatureAt::Own)
        );

        // Content no longer listed loses its signature.
        fs::remove_file(fixture.repo.join("packages/a/big.msi")).unwrap();
        fs::remove_file(fixture.repo.join("packages/b/copy.msi")).unwrap();
        fixture.publish(30);
        assert!(!sig.exists(), "unused signature kept");
    }

    #[test]
    fn parts_change_only_with_their_folder_and_come_with_a_patch() {
        let fx = Fixture::new();
        fx.write("config.xml", b"<config/>");
        fx.write("packages/a/x.bin", b"a one");
        fx.write("packages/b/y.bin", b"b one");
        fx.publish(1);
        let first = fx.manifest().parts;
        let first_manifest = fx.meta(MANIFEST_FILE);

        fx.write("packages/b/y.bin", b"b two");
        fx.publish(1);
        let second = fx.manifest().parts;
        assert_eq!(first[0], second[0], "the top level did not change");
        assert_eq!(first[1], second[1], "packages/a did not change");
        assert_ne!(first[2].sha256, second[2].sha256);
        // The patch from b's previous part makes exactly the new one.
        let patch = fs::read(
            fx.repo
                .join(delta_path(&second[2].sha256, &first[2].sha256)),
        )
        .unwrap();
        let old = fs::read(fx.repo.join(part_path(&first[2].sha256))).unwrap();
        let old = crate::manifest::compress::decompress(&old, first[2].size).unwrap();
        let new = crate::manifest::compress::apply_patch(&old, &patch, second[2].size).unwrap();
        assert_eq!(sha256_hex(&new), second[2].sha256);
        // And the manifest's patch makes the new manifest.
        let manifest = fx.meta(MANIFEST_FILE);
        let patch = fs::read(fx.repo.join(delta_path(
            &sha256_hex(&manifest),
            &sha256_hex(&first_manifest),
        )))
        .unwrap();
        let made =
            crate::manifest::compress::apply_patch(&first_manifest, &patch, manifest.len() as u64)
                .unwrap();
        assert_eq!(made, manifest);

        // The previous version's part stays for one more publish, then goes
        // with its patch.
        assert!(fx.repo.join(part_path(&first[2].sha256)).is_file());
        fx.write("packages/b/y.bin", b"b three");
        fx.publish(1);
        assert!(!fx.repo.join(part_path(&first[2].sha256)).exists());
        assert!(fx.repo.join(part_path(&second[2].sha256)).is_file());
        assert!(
            !fx.repo
                .join(delta_path(&second[2].sha256, &first[2].sha256))
                .exists()
        );
    }

    #[test]
    fn small_files_have_their_signatures_in_the_parts_bundle() {
        let fx = Fixture::new();
        let small: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let smaller: Vec<u8> = (0..5_000u32).map(|i| (i % 241) as u8).collect();
        fx.write("packages/a/small.bin", &small);
        fx.write("packages/a/smaller.bin", &smaller);
        fx.write("packages/a/tiny.txt", b"below 4 KiB: no signature");
        fx.publish(1);
        let part = fx.parts().remove(1);
        let bundle = fs::read(
            fx.repo
                .join(bundle_path(part.bundle.as_deref().expect("bundle"))),
        )
        .unwrap();
        for (file, content) in part.files.iter().zip([&small, &smaller]) {
            let Some(SignatureAt::Bundle(offset)) = file.signature else {
                panic!("{} has no bundled signature", file.path);
            };
            let expected =
                crate::delta::signature::calculate(&content[..], content.len() as u64).unwrap();
            let at = offset as usize;
            assert_eq!(
                &bundle[at..at + expected.len()],
                &expected[..],
                "{}",
                file.path
            );
        }
        assert_eq!(part.files[2].signature, None);

        // A file added before them leaves their signatures where they were,
        // so the part's patch carries only the new entry.
        fx.write("packages/a/added.bin", &[3u8; 6000]);
        fx.publish(1);
        let again = fx.parts().remove(1);
        let offset = |part: &crate::manifest::format::Part, path: &str| {
            part.files
                .iter()
                .find(|f| f.path == path)
                .unwrap()
                .signature
        };
        for path in ["packages/a/small.bin", "packages/a/smaller.bin"] {
            assert_eq!(offset(&part, path), offset(&again, path), "{path}");
        }
        let bundle = fs::read(fx.repo.join(bundle_path(again.bundle.as_deref().unwrap()))).unwrap();
        let Some(SignatureAt::Bundle(at)) = offset(&again, "packages/a/added.bin") else {
            panic!("the added file has no bundled signature");
        };
        let expected = crate::delta::signature::calculate(&[3u8; 6000][..], 6000).unwrap();
        assert_eq!(&bundle[at as usize..], &expected[..]);
    }

    #[test]
    fn cache_spares_reading_unchanged_files() {
        let fx = Fixture::new();
        for i in 0..10 {
            fx.write(
                &format!("packages/p{i}/file.bin"),
                format!("content {i}").as_bytes(),
            );
        }
        let first = fx.publish(1);
        assert_eq!((first.hashed, first.reused), (10, 0));

        let second = fx.publish(1);
        assert_eq!((second.hashed, second.reused), (0, 10));
        assert_eq!(second.files, 10);
        let cache = fx.meta(CACHE_FILE);
        assert!(!fx.paths().iter().any(|p| p.contains(CACHE_FILE)));

        // Only the mtime moves (touch): read again.
        set_mtime(
            &fx.repo.join("packages/p5/file.bin"),
            SystemTime::now() - Duration::from_secs(7200),
        );
        let third = fx.publish(1);
        assert_eq!((third.hashed, third.reused), (1, 9));
        assert_ne!(cache, fx.meta(CACHE_FILE));

        // New content, same size, fresh mtime: read again.
        fs::write(fx.repo.join("packages/p3/file.bin"), b"content X").expect("write");
        let fourth = fx.publish(1);
        assert_eq!((fourth.hashed, fourth.reused), (1, 9));
        let entry = fx
            .files()
            .into_iter()
            .find(|f| f.path == "packages/p3/file.bin")
            .expect("entry");
        assert_eq!(entry.sha256, sha256_hex(b"content X"));
    }

    #[test]
    fn fresh_files_are_hashed_again_until_they_settle() {
        let fx = Fixture::new();
        fs::write(fx.repo.join("fresh.txt"), b"just written").expect("write");
        fx.write("old.txt", b"old");
        fx.publish(1);
        let again = fx.publish(1);
        assert_eq!((again.hashed, again.reused), (1, 1));
    }

    #[test]
    fn broken_cache_is_ignored_with_a_warning() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");
        fx.publish(1);
        fs::write(fx.repo.join(META_DIR).join(CACHE_FILE), "{").expect("write");
        let summary = fx.publish(1);
        assert_eq!(summary.hashed, 1);
        assert!(
            summary.warnings.iter().any(|w| w.contains("hash cache")),
            "{:?}",
            summary.warnings
        );
        assert_eq!(fx.publish(1).reused, 1);
    }

    #[test]
    fn case_duplicates_and_file_folder_clashes_are_skipped() {
        let fx = Fixture::new();
        fx.write("Readme.txt", b"1");
        fx.write("README.txt", b"2");
        fx.write("Tools/x.exe", b"x");
        fx.write("tools", b"a file named like the folder");
        let summary = fx.publish(1);
        assert_eq!(fx.paths(), ["README.txt", "Tools/x.exe"]);
        let warnings = summary.warnings.join("\n");
        assert!(
            warnings.contains("skipped Readme.txt: same path as README.txt"),
            "{warnings}"
        );
        assert!(
            warnings.contains("skipped tools: a folder of Tools/x.exe"),
            "{warnings}"
        );
    }

    #[test]
    fn bad_keys_are_refused_before_anything_is_written() {
        let fx = Fixture::new();
        fx.write("a.txt", b"a");

        let inside = fx.repo.join("key.pem");
        fs::copy(&fx.key, &inside).expect("copy");
        let err = publish(&fx.repo, &inside, 1).expect_err("key inside");
        assert!(
            matches!(err, PublishError::KeyInRepository { .. }),
            "{err:?}"
        );

        let missing = fx.repo.parent().expect("parent").join("missing.pem");
        let err = publish(&fx.repo, &missing, 1).expect_err("missing");
        assert!(matches!(err, PublishError::KeyRead { .. }), "{err:?}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        fs::write(&fx.key, test_key_pair().public_pem.as_bytes()).expect("write");
        let err = publish(&fx.repo, &fx.key, 1).expect_err("not private");
        assert!(matches!(err, PublishError::Key { .. }), "{err:?}");

        let small = crate::manifest::sign::generate_key_pair(2048).expect("small key");
        fs::write(&fx.key, small.private_pem.as_bytes()).expect("write");
        let err = publish(&fx.repo, &fx.key, 1).expect_err("small");
        assert!(
            matches!(
                err,
                PublishError::Key {
                    source: crate::manifest::sign::SignError::KeyTooSmall { bits: 2048 },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!fx.repo.join(META_DIR).exists());
    }

    #[test]
    fn missing_repository_is_an_error() {
        let fx = Fixture::new();
        let err = publish(&fx.repo.join("nope"), &fx.key, 1).expect_err("missing");
        assert!(matches!(err, PublishError::List { .. }), "{err:?}");
        let file = fx.write("file", b"not a folder");
        let err = publish(&file, &fx.key, 1).expect_err("file");
        assert!(matches!(err, PublishError::NotAFolder { .. }), "{err:?}");
    }

    #[cfg(unix)]
    mod unix {
        use super::*;
        use std::ffi::CString;
        use std::io;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::{PermissionsExt, symlink};

        fn mode(path: &Path) -> u32 {
            fs::metadata(path).expect("metadata").permissions().mode() & 0o777
        }

        #[test]
        fn reserved_and_invalid_names_are_skipped() {
            let fx = Fixture::new();
            fx.write("ok.txt", b"ok");
            fx.write("nul.txt", b"device");
            fx.write("packages/CON/setup.exe", b"in a device folder");
            fx.write("trailing.", b"dot");
            fx.write("a:b", b"stream");
            fx.write("back\\slash", b"separator");
            let summary = fx.publish(1);
            assert_eq!(fx.paths(), ["ok.txt"]);
            let warnings = summary.warnings.join("\n");
            for path in ["nul.txt", "packages/CON", "trailing.", "a:b", "back\\slash"] {
                assert!(
                    warnings.contains(&format!("skipped {path}: ")),
                    "{path}: {warnings}"
                );
            }
            assert_eq!(summary.warnings.len(), 5, "{warnings}");
        }

        #[test]
        fn links_inside_are_followed_and_links_outside_skipped() {
            let fx = Fixture::new();
            fx.write("real/file.txt", b"inside");
            let outside = fx.repo.parent().expect("parent").join("secret.txt");
            fs::write(&outside, b"outside").expect("write");
            symlink("real/file.txt", fx.repo.join("file-link.txt")).expect("link");
            symlink("real", fx.repo.join("dir-link")).expect("link");
            symlink(&outside, fx.repo.join("leak.txt")).expect("link");
            symlink("nowhere", fx.repo.join("dangling")).expect("link");
            symlink("..", fx.repo.join("real/up")).expect("link");
            fx.write(".wpkgsync/notes.txt", b"publisher only");
            symlink(".wpkgsync/notes.txt", fx.repo.join("meta-link")).expect("link");

            let summary = fx.publish(1);
            assert_eq!(
                fx.paths(),
                ["dir-link/file.txt", "file-link.txt", "real/file.txt"]
            );
            let files = fx.files();
            assert!(files.iter().all(|f| f.sha256 == sha256_hex(b"inside")));
            let warnings = summary.warnings.join("\n");
            assert!(
                warnings.contains("skipped leak.txt: symbolic link leaves the repository"),
                "{warnings}"
            );
            assert!(warnings.contains("skipped dangling: "), "{warnings}");
            assert!(
                warnings.contains("skipped real/up: symbolic link loops"),
                "{warnings}"
            );
            assert!(
                warnings.contains("skipped dir-link/up: symbolic link loops"),
                "{warnings}"
            );
            assert!(
                warnings.contains("skipped meta-link: symbolic link points into .wpkgsync"),
                "{warnings}"
            );
            assert_eq!(summary.warnings.len(), 5, "{warnings}");
        }

        #[test]
        fn fifo_is_skipped_with_a_warning() {
            let fx = Fixture::new();
            fx.write("a.txt", b"a");
            let fifo = fx.repo.join("pipe");
            let c_path = CString::new(fifo.as_os_str().as_bytes()).expect("c path");
            // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
            let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
            assert_eq!(rc, 0, "mkfifo: {}", io::Error::last_os_error());
            let summary = fx.publish(1);
            assert_eq!(fx.paths(), ["a.txt"]);
            assert_eq!(
                summary.warnings,
                ["skipped pipe: not a regular file (fifo)"]
            );
        }

        #[test]
        fn records_are_world_readable() {
            let fx = Fixture::new();
            fx.write("a.txt", b"a");
            fs::create_dir(fx.repo.join(META_DIR)).expect("mkdir");
            fs::set_permissions(fx.repo.join(META_DIR), fs::Permissions::from_mode(0o700))
                .expect("chmod");
            fx.publish(1);
            let meta_dir = fx.repo.join(META_DIR);
            assert_eq!(mode(&meta_dir), 0o755);
            for name in [
                MANIFEST_FILE,
                "manifest.json.sig",
                TIMESTAMP_FILE,
                "timestamp.json.sig",
                CACHE_FILE,
            ] {
                assert_eq!(mode(&meta_dir.join(name)), 0o644, "{name}");
            }
        }
    }
}
