//! The only way to a [`VerifiedManifest`]: the newest timestamp the run's
//! sources serve, then the manifest it names, then the parts a run needs,
//! each read bounded from the sources and verified. A record that changed since the copy the state folder keeps is
//! fetched as a patch against that copy when the server has one; one that did
//! not change is not fetched at all.

use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

use super::compress::{self, DecodeError};
use super::format::{
    MANIFEST_FILE, MANIFEST_MAX_BYTES, META_DIR, SIGNATURE_MAX_BYTES, TIMESTAMP_FILE,
    TIMESTAMP_MAX_BYTES, compressed_limit, delta_path, part_path, signature_of,
};
use super::verify::{
    Accepted, ManifestError, PinnedKey, VerifiedManifest, VerifiedTimestamp, verify_manifest,
    verify_timestamp,
};
use crate::clock::now_unix;
use crate::error::Error;
use crate::gossip::pulse::SignedRecord;
use crate::store::manifest_cache;
use crate::store::state_dir::StateDir;
use crate::transport::{Source, Sources, TransportError, TransportErrorKind};

/// Parts fetched at once: each is a few requests, so several overlap.
const PARTS_IN_FLIGHT: usize = 8;

/// The timestamp a run follows, and the sources it found behind.
pub(crate) struct Newest {
    /// The highest version any source serves whose signature and expiry verify.
    pub timestamp: VerifiedTimestamp,
    /// Sources that serve an older version, as the log names them.
    pub behind: Vec<String>,
}

/// Reads the timestamp from every source of the run at once and follows the
/// highest version that verifies: sources that serve another are left out
/// of the run (an older one is named as behind), so a frozen mirror cannot
/// hold a client back while another source is current. Fails with the
/// remote's error when no source serves a timestamp that verifies. With
/// `keep` (not in a dry run), the record is kept in `state_dir` for the
/// gossip pulse.
pub(crate) async fn newest_timestamp(
    sources: &Sources,
    key: &PinnedKey,
    accepted: Option<Accepted>,
    state_dir: &StateDir,
    keep: bool,
) -> Result<Newest, Error> {
    let kept = SignedRecord::kept(state_dir);
    let now = now_unix();
    let mut answers = futures::future::join_all((0..sources.len()).map(|index| {
        let kept = kept.as_ref();
        async move {
            let record = timestamp_from(sources, index, kept).await?;
            let verified = verify_timestamp(key, &record.record, &record.signature, accepted, now)?;
            Ok::<_, Error>((verified, record))
        }
    }))
    .await;
    let chosen = answers
        .iter()
        .enumerate()
        .filter_map(|(index, answer)| answer.as_ref().ok().map(|(t, _)| (index, t.version())))
        .max_by_key(|&(index, version)| (version, std::cmp::Reverse(index)))
        .map(|(index, _)| index);
    let Some(chosen) = chosen else {
        // Nothing verifies: the remote's own reason is the run's.
        return Err(answers.pop().and_then(Result::err).unwrap_or_else(|| {
            Error::Manifest(ManifestError::Missing {
                name: TIMESTAMP_FILE.into(),
            })
        }));
    };
    let Ok((newest, _)) = &answers[chosen] else {
        unreachable!("the chosen answer verified")
    };
    let (version, manifest) = (newest.version(), *newest.manifest_sha256());
    let mut found = None;
    let mut behind = Vec::new();
    for (index, answer) in answers.into_iter().enumerate() {
        let label = sources.label(index).to_owned();
        match answer {
            Ok(answer) if index == chosen => found = Some(answer),
            Ok((other, _)) if other.version() < version => {
                let why = format!(
                    "it is behind: version {}, while {} serves {version}",
                    other.version(),
                    sources.label(chosen),
                );
                sources.leave_out(index, why);
                behind.push(label);
            }
            Ok((other, _)) if *other.manifest_sha256() != manifest => {
                let why = format!("it serves another manifest for version {version}");
                sources.leave_out(index, why);
            }
            Ok(_) => {}
            Err(e) => {
                if matches!(e, Error::Manifest(ManifestError::Rollback { .. })) {
                    behind.push(label);
                }
                sources.leave_out(index, e.to_string());
            }
        }
    }
    let (newest, record) = found.expect("the chosen answer is among them");
    if keep {
        // The pulse after the run and a listener's answers carry it as published.
        record.keep(state_dir)?;
    }
    Ok(Newest {
        timestamp: newest,
        behind,
    })
}

/// The signed timestamp of source `index`. Over HTTPS an unchanged
/// timestamp (answered `304`) that is the record kept from the last run
/// reuses the kept signature, so a no-op costs that one request.
async fn timestamp_from(
    sources: &Sources,
    index: usize,
    kept: Option<&SignedRecord>,
) -> Result<SignedRecord, Error> {
    let path = format!("{META_DIR}/{TIMESTAMP_FILE}");
    let record = sources
        .read_record_from(index, &path, TIMESTAMP_MAX_BYTES)
        .await
        .map_err(|e| record_error(e, &path, TIMESTAMP_MAX_BYTES))?;
    if record.unchanged
        && let Some(kept) = kept.filter(|kept| kept.record == record.bytes)
    {
        return Ok(kept.clone());
    }
    let signature_path = format!("{META_DIR}/{}", signature_of(TIMESTAMP_FILE));
    let signature = sources
        .read_record_from(index, &signature_path, SIGNATURE_MAX_BYTES)
        .await
        .map_err(|e| record_error(e, &signature_path, SIGNATURE_MAX_BYTES))?;
    Ok(SignedRecord {
        record: record.bytes,
        signature: signature.bytes,
    })
}

/// Reads the manifest `timestamp` names and the part of the files outside
/// the package folders (the top level and the package definitions, which
/// the selection reads), each verified. With `keep` (not in a dry run), what
/// was downloaded is cached in `state_dir` for the next run.
pub(crate) async fn load<S: Source>(
    source: &S,
    key: &PinnedKey,
    timestamp: &VerifiedTimestamp,
    state_dir: &StateDir,
    keep: bool,
) -> Result<VerifiedManifest, Error> {
    let cached = manifest_cache::load(state_dir);
    let unchanged = cached
        .as_ref()
        .filter(|(bytes, _)| sha256(bytes) == *timestamp.manifest_sha256())
        .and_then(|(bytes, signature)| verify_manifest(key, timestamp, bytes, signature).ok());
    let mut manifest = match unchanged {
        Some(manifest) => manifest,
        None => {
            let base = cached.as_ref().map(|(bytes, _)| bytes.as_slice());
            let (bytes, signature) = download_manifest(source, key, timestamp, base).await?;
            let verified = verify_manifest(key, timestamp, &bytes, &signature)?;
            if keep {
                manifest_cache::save(state_dir, &bytes, &signature)?;
            }
            verified
        }
    };
    load_parts(
        source,
        &mut manifest,
        |folder| folder.is_none(),
        state_dir,
        keep,
    )
    .await?;
    Ok(manifest)
}

/// The manifest the timestamp names and its signature, from a patch against
/// `base` (the cached manifest) when the server has one, else whole. A
/// source whose manifest or signature does not verify is rejected and the
/// next one asked.
async fn download_manifest<S: Source>(
    source: &S,
    key: &PinnedKey,
    timestamp: &VerifiedTimestamp,
    base: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let size = timestamp.manifest_size().min(MANIFEST_MAX_BYTES);
    let expected = timestamp.manifest_sha256();
    let bytes = match patched(source, expected, size, base).await? {
        Some(bytes) => bytes,
        None => {
            let path = format!("{META_DIR}/{MANIFEST_FILE}");
            read_bounded(source, &path, size, |bytes| sha256(bytes) == *expected).await?
        }
    };
    let path = format!("{META_DIR}/{}", signature_of(MANIFEST_FILE));
    let signature = read_bounded(source, &path, SIGNATURE_MAX_BYTES, |signature| {
        verify_manifest(key, timestamp, &bytes, signature).is_ok()
    })
    .await?;
    Ok((bytes, signature))
}

/// Adds to `manifest` the parts of the package folders `wanted` accepts
/// (`wanted(Some(folder))`; `wanted(None)` is the part of every other file),
/// each from the state folder's cache when it holds those exact bytes, else
/// from `source`. With `keep`, fetched parts are cached and cached parts of
/// folders the manifest no longer names are removed.
pub(crate) async fn load_parts<S: Source>(
    source: &S,
    manifest: &mut VerifiedManifest,
    wanted: impl Fn(Option<&str>) -> bool,
    state_dir: &StateDir,
    keep: bool,
) -> Result<(), Error> {
    let needed: Vec<usize> = (0..manifest.parts().len())
        .filter(|&i| {
            let part = &manifest.parts()[i];
            !part.is_loaded() && wanted(part.folder())
        })
        .collect();
    let parts = manifest.parts();
    let loaded: Vec<(usize, Vec<u8>, bool)> = stream::iter(needed)
        .map(|index| async move {
            let part = &parts[index];
            let cached = manifest_cache::part(state_dir, part.folder());
            if let Some(bytes) = &cached
                && sha256(bytes) == *part.sha256()
            {
                return Ok((index, cached.expect("matched above"), false));
            }
            let bytes = match patched(source, part.sha256(), part.size(), cached.as_deref()).await?
            {
                Some(bytes) => bytes,
                None => whole_part(source, part.sha256(), part.size()).await?,
            };
            Ok::<_, Error>((index, bytes, true))
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let (loaded, fetched): (Vec<(usize, Vec<u8>)>, Vec<bool>) = loaded
        .into_iter()
        .map(|(index, bytes, fetched)| ((index, bytes), fetched))
        .unzip();
    manifest.add_parts(&loaded)?;
    if keep {
        for ((index, bytes), _) in loaded.iter().zip(fetched).filter(|(_, fetched)| *fetched) {
            manifest_cache::save_part(state_dir, manifest.parts()[*index].folder(), bytes)?;
        }
        manifest_cache::prune_parts(state_dir, manifest.parts().iter().map(|p| p.folder()));
    }
    Ok(())
}

/// The record of sha256 `sha256` and `size` bytes made from `base` by the
/// server's patch, when the server has one for that base and it yields those
/// exact bytes. A patch is unsigned: one that fails is ignored, and the caller
/// fetches the whole record.
async fn patched<S: Source>(
    source: &S,
    sha256: &[u8; 32],
    size: u64,
    base: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(base) = base else {
        return Ok(None);
    };
    let path = delta_path(&hex::encode(sha256), &hex::encode(self::sha256(base)));
    let data = match source.read_limited(&path, compressed_limit(size)).await {
        Ok(data) => data,
        Err(e)
            if matches!(
                e.kind(),
                TransportErrorKind::Unreachable | TransportErrorKind::Timeout
            ) =>
        {
            return Err(Error::Transport(e));
        }
        Err(_) => return Ok(None),
    };
    Ok(compress::apply_patch(base, &data, size)
        .ok()
        .filter(|bytes| self::sha256(bytes) == *sha256))
}

/// The compressed part of sha256 `sha256`, decompressed to at most `size`
/// bytes; a source whose part does not decompress to those exact bytes is
/// rejected and the next one asked. The caller checks them against the
/// manifest.
async fn whole_part<S: Source>(source: &S, sha256: &[u8; 32], size: u64) -> Result<Vec<u8>, Error> {
    let path = part_path(&hex::encode(sha256));
    let decoded = |data: &[u8]| compress::decompress(data, size);
    let data = read_bounded(source, &path, compressed_limit(size), |data| {
        decoded(data).is_ok_and(|bytes| self::sha256(&bytes) == *sha256)
    })
    .await?;
    decoded(&data).map_err(|e| {
        Error::Manifest(match e {
            DecodeError::TooLarge(limit) => ManifestError::TooLarge { name: path, limit },
            DecodeError::Invalid(_) => ManifestError::Malformed {
                name: path,
                why: e.to_string(),
            },
        })
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads the repository-relative `path` whole, asking the next source for
/// bytes that fail `check`; a missing or oversized file is a manifest error
/// (204), a lost connection stays a transport error.
async fn read_bounded<S: Source>(
    source: &S,
    path: &str,
    limit: u64,
    check: impl Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, Error> {
    source
        .read_checked(path, limit, check)
        .await
        .map_err(|e| record_error(e, path, limit))
}

/// A record that could not be read: missing or oversized is a manifest
/// error (204), anything else stays a transport error.
fn record_error(e: TransportError, path: &str, limit: u64) -> Error {
    match e.kind() {
        TransportErrorKind::NotFound => Error::Manifest(ManifestError::Missing {
            name: path.to_owned(),
        }),
        TransportErrorKind::TooLarge => Error::Manifest(ManifestError::TooLarge {
            name: path.to_owned(),
            limit,
        }),
        _ => Error::Transport(e),
    }
}
